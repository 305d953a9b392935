// mint/report/html.hpp -- a self-contained HTML page per run: pictures inline as base64 PNG data: URIs
// (io/base64.hpp), curves as inline SVG, tables of settings and figures. Nothing is fetched from anywhere: the
// file can be mailed, archived or opened offline. Every piece of text is escaped (escape_html), so a class name,
// a path or a command line cannot inject markup.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "mint/core/error.hpp"
#include "mint/io/base64.hpp"

namespace mint::report {

// `text` with & < > " ' replaced by their character references: safe as element content and in quoted attributes.
inline std::string escape_html(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// The command line as a POSIX shell would take it back: arguments made only of safe characters stay bare,
// others are single-quoted (a ' inside written as '\'').
inline std::string command_line(int argc, const char* const* argv) {
  std::string out;
  for (int i = 0; i < argc; ++i) {
    const std::string_view a = argv[i] != nullptr ? argv[i] : "";
    const bool bare = !a.empty() && a.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                        "0123456789-_./=,:+@%") == std::string_view::npos;
    if (i > 0) out += ' ';
    if (bare) {
      out += a;
      continue;
    }
    out += '\'';
    for (const char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    out += '\'';
  }
  return out;
}

struct Figure {
  std::string title;
  std::string png;  // the PNG file's bytes
  std::int64_t width = 0, height = 0;
  std::string alt;
};

struct Curve {
  std::string title, x_label, y_label;
  std::vector<double> x, y;  // same length; non-finite points are left out of the line
};

struct Table {
  std::string title;
  std::vector<std::pair<std::string, std::string>> rows;
};

struct HtmlReport {
  std::string title;
  std::string command_line;
  std::vector<Table> tables;
  std::vector<Figure> figures;
  std::vector<Curve> curves;
};

// The scalar entries of a JSON object as table rows (numbers as %.6g, strings as they are, arrays and objects
// as compact JSON when short, else as "(N entries)").
inline std::vector<std::pair<std::string, std::string>> json_rows(const nlohmann::json& object) {
  std::vector<std::pair<std::string, std::string>> rows;
  if (!object.is_object()) return rows;
  for (const auto& [key, v] : object.items()) {
    std::string text;
    if (v.is_string()) {
      text = v.get<std::string>();
    } else if (v.is_number_float()) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.6g", v.get<double>());
      text = buf;
    } else if (v.is_structured() && v.dump().size() > 120) {
      text = "(" + std::to_string(v.size()) + " entries)";
    } else {
      text = v.dump();
    }
    rows.emplace_back(key, std::move(text));
  }
  return rows;
}

namespace detail {

inline std::string fmt(double v, const char* f = "%.2f") {
  char buf[48];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// A "nice" tick step (1, 2 or 5 times a power of ten) giving about `target` intervals over `span` > 0.
inline double tick_step(double span, int target = 5) {
  const double raw = span / target, mag = std::pow(10.0, std::floor(std::log10(raw))), r = raw / mag;
  return (r < 1.5 ? 1.0 : r < 3.5 ? 2.0 : r < 7.5 ? 5.0 : 10.0) * mag;
}

}  // namespace detail

// An inline SVG line chart of `c` (axes with ticks and labels, one polyline), `width` x `height` pixels. A curve
// without a finite point draws its frame and "no data". requires: c.x.size() == c.y.size().
inline std::string svg_line_chart(const Curve& c, int width = 640, int height = 240) {
  check(c.x.size() == c.y.size(), "svg_line_chart: '", c.title, "' has ", c.x.size(), " x values and ", c.y.size(),
        " y values");
  check(width >= 100 && height >= 80 && width <= 10000 && height <= 10000, "svg_line_chart: size ", width, "x",
        height, " outside 100x80 .. 10000x10000");
  const double left = 64, right = 16, top = 28, bottom = 40, pw = width - left - right, ph = height - top - bottom;
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (std::size_t i = 0; i < c.x.size(); ++i)
    if (std::isfinite(c.x[i]) && std::isfinite(c.y[i]))
      x0 = std::min(x0, c.x[i]), x1 = std::max(x1, c.x[i]), y0 = std::min(y0, c.y[i]), y1 = std::max(y1, c.y[i]);
  const bool any = std::isfinite(x0) && std::isfinite(x1 - x0) && std::isfinite(y1 - y0);  // no overflowing span
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"" + std::to_string(width) +
                  "\" height=\"" + std::to_string(height) + "\" viewBox=\"0 0 " + std::to_string(width) + " " +
                  std::to_string(height) + "\" role=\"img\" aria-label=\"" + escape_html(c.title) + "\">\n";
  s += "<text x=\"" + detail::fmt(left) + "\" y=\"18\" class=\"chart-title\">" + escape_html(c.title) + "</text>\n";
  s += "<rect x=\"" + detail::fmt(left) + "\" y=\"" + detail::fmt(top) + "\" width=\"" + detail::fmt(pw) +
       "\" height=\"" + detail::fmt(ph) + "\" fill=\"none\" stroke=\"#999\"/>\n";
  if (!any) {
    s += "<text x=\"" + detail::fmt(left + pw / 2) + "\" y=\"" + detail::fmt(top + ph / 2) +
         "\" text-anchor=\"middle\">no data</text>\n</svg>\n";
    return s;
  }
  if (x1 == x0) x0 -= 0.5, x1 += 0.5;
  if (y1 == y0) y0 -= 0.5 * std::max(1.0, std::abs(y0)), y1 += 0.5 * std::max(1.0, std::abs(y1));
  const double ys = detail::tick_step(y1 - y0), xs = detail::tick_step(x1 - x0);
  y0 = std::floor(y0 / ys) * ys, y1 = std::ceil(y1 / ys) * ys;
  auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return top + (y1 - y) / (y1 - y0) * ph; };
  // Ticks by count, not by repeated addition: with a span tiny against the values, t += step would not move.
  const auto y_ticks = static_cast<int>(std::min(50.0, std::round((y1 - y0) / ys)));
  for (int k = 0; k <= y_ticks; ++k) {
    const double t = y0 + k * ys;
    s += "<line x1=\"" + detail::fmt(left - 4) + "\" x2=\"" + detail::fmt(left + pw) + "\" y1=\"" + detail::fmt(py(t)) +
         "\" y2=\"" + detail::fmt(py(t)) + "\" stroke=\"#e4e4e4\"/>";
    s += "<text x=\"" + detail::fmt(left - 7) + "\" y=\"" + detail::fmt(py(t) + 4) + "\" text-anchor=\"end\">" +
         detail::fmt(std::abs(t) < ys * 1e-9 ? 0.0 : t, "%g") + "</text>\n";
  }
  const double xt0 = std::ceil(x0 / xs) * xs;
  const auto x_ticks = static_cast<int>(std::min(50.0, std::floor((x1 - xt0) / xs + 1e-9)));
  for (int k = 0; k <= x_ticks; ++k) {
    const double t = xt0 + k * xs;
    s += "<text x=\"" + detail::fmt(px(t)) + "\" y=\"" + detail::fmt(top + ph + 16) + "\" text-anchor=\"middle\">" +
         detail::fmt(t, "%g") + "</text>\n";
  }
  s += "<text x=\"" + detail::fmt(left + pw / 2) + "\" y=\"" + std::to_string(height - 6) +
       "\" text-anchor=\"middle\">" + escape_html(c.x_label) + "</text>\n";
  s += "<text transform=\"translate(14 " + detail::fmt(top + ph / 2) + ") rotate(-90)\" text-anchor=\"middle\">" +
       escape_html(c.y_label) + "</text>\n";
  // At most ~2 points per horizontal pixel: a 100k-iteration history stays a small file.
  const std::size_t stride = std::max<std::size_t>(1, c.x.size() / static_cast<std::size_t>(2 * pw));
  s += "<polyline fill=\"none\" stroke=\"#1f5fa8\" stroke-width=\"1.5\" points=\"";
  for (std::size_t i = 0; i < c.x.size(); ++i) {
    if ((i % stride != 0 && i + 1 != c.x.size()) || !std::isfinite(c.x[i]) || !std::isfinite(c.y[i])) continue;
    s += detail::fmt(px(c.x[i])) + "," + detail::fmt(py(c.y[i])) + " ";
  }
  s += "\"/>\n</svg>\n";
  return s;
}

// The whole page. requires: every figure has png bytes and width, height >= 1.
inline std::string render_html(const HtmlReport& r) {
  for (const auto& f : r.figures)
    check(!f.png.empty() && f.width >= 1 && f.height >= 1, "render_html: figure '", f.title,
          "' has no picture or no size");
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
                  escape_html(r.title) + "</title>\n<style>\n"
                  "body{font-family:'DejaVu Sans',sans-serif;margin:24px;color:#222;max-width:1400px}\n"
                  "h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em}\n"
                  "pre{background:#f4f4f4;padding:8px;white-space:pre-wrap;word-break:break-all}\n"
                  "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}\n"
                  "img{max-width:100%;height:auto;image-rendering:pixelated;border:1px solid #ddd}\n"
                  ".chart text{font-size:11px;fill:#333}.chart .chart-title{font-size:13px;font-weight:bold}\n"
                  ".tables{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}\n"
                  "</style>\n</head>\n<body>\n<h1>" + escape_html(r.title) + "</h1>\n";
  if (!r.command_line.empty()) h += "<h2>Command</h2>\n<pre>" + escape_html(r.command_line) + "</pre>\n";
  for (const auto& f : r.figures) {
    h += "<h2>" + escape_html(f.title) + "</h2>\n<img src=\"data:image/png;base64," + io::base64_encode(f.png) +
         "\" width=\"" + std::to_string(f.width) + "\" height=\"" + std::to_string(f.height) + "\" alt=\"" +
         escape_html(f.alt) + "\">\n";
  }
  if (!r.curves.empty()) {
    h += "<h2>Curves</h2>\n<div>\n";
    for (const auto& c : r.curves) h += svg_line_chart(c);
    h += "</div>\n";
  }
  h += "<div class=\"tables\">\n";
  for (const auto& t : r.tables) {
    h += "<div><h2>" + escape_html(t.title) + "</h2>\n<table>\n";
    for (const auto& [k, v] : t.rows) h += "<tr><th>" + escape_html(k) + "</th><td>" + escape_html(v) + "</td></tr>\n";
    h += "</table></div>\n";
  }
  h += "</div>\n</body>\n</html>\n";
  return h;
}

}  // namespace mint::report
