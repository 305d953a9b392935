// report/font.hpp: UTF-8 decoding, text metrics and drawing with stb_truetype and DejaVu Sans
// (fonts-dejavu-core), shortening with "...", and the errors for a missing or broken font file.
#include <catch2/catch.hpp>

#include <cstdint>
#include <fstream>
#include <string>

#include "mint/report/font.hpp"
#include "report_test_util.hpp"

using mint::report::Canvas;
using mint::report::Font;
using mint::report::Rgb;

TEST_CASE("utf8_code_points decodes UTF-8 and turns every bad byte into U+FFFD", "[report][font]") {
  using mint::report::detail::utf8_code_points;
  CHECK(utf8_code_points("A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80") ==
        std::vector<char32_t>{U'A', U'\u00e9', U'\u20ac', U'\U0001F600'});
  CHECK(utf8_code_points("\xff") == std::vector<char32_t>{U'\uFFFD'});
  CHECK(utf8_code_points("\xc0\x80") == std::vector<char32_t>{U'\uFFFD', U'\uFFFD'});           // overlong NUL
  CHECK(utf8_code_points("\xed\xa0\x80") == std::vector<char32_t>(3, U'\uFFFD'));                // a surrogate
  CHECK(utf8_code_points("\xe2\x82") == std::vector<char32_t>{U'\uFFFD', U'\uFFFD'});           // truncated
}

TEST_CASE("Font measures text: wider for more text and for larger sizes", "[report][font]") {
  const Font f = Font::load();
  CHECK(f.text_width("", 13.0f) == 0);
  const int a = f.text_width("A", 13.0f), ab = f.text_width("AB", 13.0f);
  CHECK(a > 0);
  CHECK(ab > a);
  // Scaling is linear in the pixel size; each width is rounded up, hence the 2 px slack.
  CHECK(std::abs(f.text_width("Ankle boot", 26.0f) - 2 * f.text_width("Ankle boot", 13.0f)) <= 2);
  CHECK(f.line_height(26.0f) > f.line_height(13.0f));
}

TEST_CASE("Font::draw inks pixels inside the text box only", "[report][font]") {
  const Font f = Font::load();
  const Rgb white{255, 255, 255};
  Canvas c(200, 60, white);
  const float px = 20.0f;
  f.draw(c, 10, 10, "Hg", px, Rgb{0, 0, 0});
  const std::int64_t x1 = 10 + f.text_width("Hg", px) + 2, y1 = 10 + f.line_height(px);
  int dark = 0, outside = 0;
  for (std::int64_t y = 0; y < c.height(); ++y)
    for (std::int64_t x = 0; x < c.width(); ++x)
      if (c.at(x, y) != white) {
        ++dark;
        if (x < 9 || x >= x1 || y < 10 || y >= y1) ++outside;
      }
  CHECK(dark > 30);  // two glyphs of ~14 px height leave far more than 30 inked pixels
  CHECK(outside == 0);
  // Clipping: text partly off the canvas draws what fits and nothing else.
  Canvas small(8, 8, white);
  f.draw(small, -5, -5, "W", px, Rgb{0, 0, 0});
  SUCCEED("drawing off the canvas does not write out of bounds");
}

TEST_CASE("Font::fit shortens with an ellipsis until the text fits", "[report][font]") {
  const Font f = Font::load();
  CHECK(f.fit("Bag", 13.0f, 200) == "Bag");
  const std::string s = f.fit("a very long class name indeed", 13.0f, 60);
  CHECK(s.size() > 3);
  CHECK(s.substr(s.size() - 3) == "...");
  CHECK(f.text_width(s, 13.0f) <= 60);
  CHECK(f.fit("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 13.0f, 30).find('\xc3') !=
        std::string::npos);  // whole code points are kept
}

TEST_CASE("Font::load names the file that is missing or is not a font", "[report][font]") {
  mint_report_test::TempDir dir;
  REQUIRE_THROWS_WITH(Font::load(dir.str("none.ttf")),
                      Catch::Contains(dir.str("none.ttf")) && Catch::Contains("fonts-dejavu-core"));
  std::ofstream(dir.str("text.ttf")) << "not a font at all";
  REQUIRE_THROWS_WITH(Font::load(dir.str("text.ttf")),
                      Catch::Contains(dir.str("text.ttf")) && Catch::Contains("not a TrueType font"));
  std::ofstream(dir.str("empty.ttf")).flush();
  REQUIRE_THROWS_WITH(Font::load(dir.str("empty.ttf")), Catch::Contains("0 bytes"));
  Canvas c(4, 4, Rgb{});
  REQUIRE_THROWS_WITH(Font::load().draw(c, 0, 0, "x", 0.0f, Rgb{}), Catch::Contains("pixel size"));
}
