// report/html.hpp: escaping, the shell-quoted command line, SVG line charts (points, gaps, no data, long
// histories thinned), JSON rows, and the page: pictures inline as base64, all text escaped, nothing external.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "mint/io/base64.hpp"
#include "mint/report/html.hpp"

using mint::report::Curve;
using mint::report::svg_line_chart;

namespace mint_html_test {

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto at = s.find(what); at != std::string::npos; at = s.find(what, at + what.size())) ++n;
  return n;
}

// The number of "x,y" pairs in the chart's polyline.
std::size_t points(const std::string& svg) {
  const auto a = svg.find("points=\"");
  if (a == std::string::npos) return 0;
  return count(svg.substr(a, svg.find('"', a + 8) - a), ",");
}

}  // namespace mint_html_test

TEST_CASE("escape_html replaces the five markup characters", "[report][html]") {
  CHECK(mint::report::escape_html("<a href=\"x\">&'</a>") == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
  CHECK(mint::report::escape_html("T-shirt/top") == "T-shirt/top");
}

TEST_CASE("command_line quotes what a shell would split or expand", "[report][html]") {
  const char* argv[] = {"mint-invert", "--out", "a b", "it's", "", "--lr=0.25", "$HOME"};
  CHECK(mint::report::command_line(7, argv) == "mint-invert --out 'a b' 'it'\\''s' '' --lr=0.25 '$HOME'");
}

TEST_CASE("svg_line_chart draws one point per finite sample", "[report][html]") {
  const Curve c{"loss", "iteration", "loss", {1, 2, 3, 4, 5}, {3.0, 2.0, 1.5, 1.2, 1.1}};
  const std::string svg = svg_line_chart(c);
  CHECK(mint_html_test::points(svg) == 5);
  CHECK(svg.find("<svg") == 0);
  Curve gap = c;
  gap.y[2] = std::numeric_limits<double>::quiet_NaN();
  CHECK(mint_html_test::points(svg_line_chart(gap)) == 4);
  const Curve flat{"active", "iteration", "patches", {1, 2, 3}, {49, 49, 49}};
  CHECK(mint_html_test::points(svg_line_chart(flat)) == 3);
  const Curve none{"empty <b>", "x", "y", {}, {}};
  const std::string e = svg_line_chart(none);
  CHECK(e.find("no data") != std::string::npos);
  CHECK(e.find("empty &lt;b&gt;") != std::string::npos);
  const Curve huge{"huge", "x", "y", {1.0, 2.0}, {-1e308, 1e308}};  // the span overflows: drawn as no data
  CHECK(svg_line_chart(huge).find("no data") != std::string::npos);
  REQUIRE_THROWS_WITH(svg_line_chart(Curve{"bad", "x", "y", {1, 2}, {1}}),
                      Catch::Contains("'bad'") && Catch::Contains("2 x values and 1 y values"));
}

TEST_CASE("svg_line_chart thins a long history to about two points per pixel", "[report][html]") {
  Curve c{"loss", "iteration", "loss", {}, {}};
  for (int i = 0; i < 100000; ++i) c.x.push_back(i), c.y.push_back(std::exp(-i / 1e4));
  const std::size_t n = mint_html_test::points(svg_line_chart(c, 640, 240));
  CHECK(n >= 560);   // the plot is 640 - 80 = 560 px wide
  CHECK(n <= 1200);  // ~2 per pixel plus the last point
}

TEST_CASE("json_rows lists an object's entries as text", "[report][html]") {
  const auto rows = mint::report::json_rows({{"lr", 0.25}, {"method", "pri"}, {"v", 4}, {"prune", {50, 100}}});
  REQUIRE(rows.size() == 4);
  CHECK(rows[0] == std::pair<std::string, std::string>{"lr", "0.25"});
  CHECK(rows[1] == std::pair<std::string, std::string>{"method", "pri"});
  CHECK(rows[2] == std::pair<std::string, std::string>{"prune", "[50,100]"});
  CHECK(rows[3] == std::pair<std::string, std::string>{"v", "4"});
}

TEST_CASE("render_html inlines pictures and escapes every text", "[report][html]") {
  mint::report::HtmlReport r;
  r.title = "run <1> & \"two\"";
  r.command_line = "mint-invert --out '</pre><script>alert(1)</script>'";
  r.figures.push_back({"grid <g>", std::string("\x89PNG fake bytes", 15), 300, 120, "alt \"text\""});
  r.curves.push_back({"loss", "iteration", "loss", {1, 2}, {2, 1}});
  r.tables.push_back({"Model", {{"class <names>", "T-shirt/top & more"}}});
  const std::string h = mint::report::render_html(r);
  CHECK(h.find("<script") == std::string::npos);
  CHECK(h.find("&lt;/pre&gt;&lt;script&gt;") != std::string::npos);
  CHECK(h.find("<title>run &lt;1&gt; &amp; &quot;two&quot;</title>") != std::string::npos);
  CHECK(h.find("data:image/png;base64," + mint::io::base64_encode(r.figures[0].png) + "\"") != std::string::npos);
  CHECK(h.find("width=\"300\" height=\"120\" alt=\"alt &quot;text&quot;\"") != std::string::npos);
  CHECK(h.find("<th>class &lt;names&gt;</th><td>T-shirt/top &amp; more</td>") != std::string::npos);
  CHECK(mint_html_test::count(h, "<img ") == 1);
  CHECK(mint_html_test::count(h, "<polyline") == 1);
  CHECK(h.find("src=\"http") == std::string::npos);  // self-contained: no fetched resource
  CHECK(h.find("href=") == std::string::npos);
  r.figures[0].png.clear();
  REQUIRE_THROWS_WITH(mint::report::render_html(r), Catch::Contains("grid <g>") && Catch::Contains("no picture"));
}
