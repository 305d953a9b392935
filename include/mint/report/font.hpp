// mint/report/font.hpp -- text in pictures: a TrueType font rendered with stb_truetype (Debian's libstb-dev,
// whose libstb.so holds the implementation) for the captions under grid images. The default face is DejaVu Sans
// from Debian's fonts-dejavu-core. Text is UTF-8; a byte sequence that is not UTF-8 draws as U+FFFD.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <stb_truetype.h>

#include "mint/core/error.hpp"
#include "mint/io/safetensors.hpp"
#include "mint/report/canvas.hpp"

namespace mint::report {

// Where Debian's fonts-dejavu-core puts DejaVu Sans.
inline constexpr const char* kDefaultFontPath = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

namespace detail {

// The code points of UTF-8 `text`; malformed, overlong or surrogate sequences become U+FFFD, one per bad byte.
inline std::vector<char32_t> utf8_code_points(std::string_view text) {
  std::vector<char32_t> out;
  for (std::size_t i = 0; i < text.size();) {
    const auto b0 = static_cast<unsigned char>(text[i]);
    const int len = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
    char32_t cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1Fu) : len == 3 ? (b0 & 0x0Fu) : (b0 & 0x07u);
    bool ok = len > 0 && i + static_cast<std::size_t>(len) <= text.size();
    for (int k = 1; ok && k < len; ++k) {
      const auto b = static_cast<unsigned char>(text[i + static_cast<std::size_t>(k)]);
      ok = (b >> 6) == 0x2;
      cp = (cp << 6) | (b & 0x3Fu);
    }
    static constexpr char32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    ok = ok && cp >= kMin[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    out.push_back(ok ? cp : U'\uFFFD');
    i += ok ? static_cast<std::size_t>(len) : 1;
  }
  return out;
}

}  // namespace detail

class Font {
 public:
  // Reads and checks a TrueType file. Throws mint::Error naming `path` if it is missing, empty, over 64 MiB or
  // not a font stb_truetype accepts.
  static Font load(const std::string& path = kDefaultFontPath) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    check(!ec, "Font: cannot read the font file '", path, "' (", ec.message(),
          "; Debian: apt-get install fonts-dejavu-core)");
    check(size > 0 && size <= (std::uintmax_t{64} << 20), "Font: '", path, "' has ", size,
          " bytes, not a font file (expected 1 byte .. 64 MiB)");
    Font f;
    f.data_ = std::make_shared<std::vector<unsigned char>>(io::detail::read_file_bytes(path, "Font"));
    const int offset = stbtt_GetFontOffsetForIndex(f.data_->data(), 0);
    check(offset >= 0 && stbtt_InitFont(&f.info_, f.data_->data(), offset) != 0, "Font: '", path,
          "' is not a TrueType font stb_truetype can read");
    return f;
  }

  // Height of a line of text at pixel size `px` (ascent - descent + line gap), in pixels, rounded up.
  [[nodiscard]] int line_height(float px) const {
    int ascent = 0, descent = 0, gap = 0;
    stbtt_GetFontVMetrics(&info_, &ascent, &descent, &gap);
    return static_cast<int>(std::ceil(static_cast<float>(ascent - descent + gap) * scale(px)));
  }
  // Advance width of `text` at pixel size `px` (with kerning), in pixels, rounded up.
  [[nodiscard]] int text_width(std::string_view text, float px) const {
    const auto cps = detail::utf8_code_points(text);
    float x = 0.0f;
    for (std::size_t i = 0; i < cps.size(); ++i) x += advance(cps, i, px);
    return static_cast<int>(std::ceil(x));
  }
  // `text` shortened with "..." at its end until it is at most `max_width` pixels wide (whole code points);
  // returns it unchanged if it fits.
  [[nodiscard]] std::string fit(const std::string& text, float px, int max_width) const {
    if (text_width(text, px) <= max_width) return text;
    auto cps = detail::utf8_code_points(text);
    std::string s;
    while (!cps.empty()) {
      cps.pop_back();
      s = encode(cps) + "...";
      if (text_width(s, px) <= max_width) return s;
    }
    return "...";
  }
  // Draws `text` with its line's top at y_top and its left edge at x, anti-aliased in `color`; clipped to the
  // canvas. requires: px > 0.
  void draw(Canvas& canvas, std::int64_t x, std::int64_t y_top, std::string_view text, float px, Rgb color) const {
    check(px > 0.0f && px < 1000.0f, "Font::draw: pixel size must be in (0, 1000), got ", px);
    int ascent = 0, descent = 0, gap = 0;
    stbtt_GetFontVMetrics(&info_, &ascent, &descent, &gap);
    const float s = scale(px);
    const auto baseline = static_cast<std::int64_t>(std::lround(static_cast<float>(ascent) * s));
    const auto cps = detail::utf8_code_points(text);
    float pen = 0.0f;
    std::vector<unsigned char> glyph;
    for (std::size_t i = 0; i < cps.size(); ++i) {
      const int cp = static_cast<int>(cps[i]);
      int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
      stbtt_GetCodepointBitmapBox(&info_, cp, s, s, &x0, &y0, &x1, &y1);
      const int w = x1 - x0, h = y1 - y0;
      if (w > 0 && h > 0) {
        glyph.assign(static_cast<std::size_t>(w) * static_cast<std::size_t>(h), 0);
        stbtt_MakeCodepointBitmap(&info_, glyph.data(), w, h, w, s, s, cp);
        const std::int64_t gx = x + static_cast<std::int64_t>(std::lround(pen)) + x0, gy = y_top + baseline + y0;
        for (int yy = 0; yy < h; ++yy)
          for (int xx = 0; xx < w; ++xx)
            canvas.blend(gx + xx, gy + yy, color, glyph[static_cast<std::size_t>(yy * w + xx)]);
      }
      pen += advance(cps, i, px);
    }
  }

 private:
  Font() = default;
  [[nodiscard]] float scale(float px) const { return stbtt_ScaleForPixelHeight(&info_, px); }
  [[nodiscard]] float advance(const std::vector<char32_t>& cps, std::size_t i, float px) const {
    int adv = 0, lsb = 0;
    stbtt_GetCodepointHMetrics(&info_, static_cast<int>(cps[i]), &adv, &lsb);
    const int kern = i + 1 < cps.size()
                         ? stbtt_GetCodepointKernAdvance(&info_, static_cast<int>(cps[i]), static_cast<int>(cps[i + 1]))
                         : 0;
    return static_cast<float>(adv + kern) * scale(px);
  }
  static std::string encode(const std::vector<char32_t>& cps) {
    std::string s;
    for (const char32_t c : cps) {
      if (c < 0x80) {
        s += static_cast<char>(c);
      } else if (c < 0x800) {
        s += static_cast<char>(0xC0 | (c >> 6)), s += static_cast<char>(0x80 | (c & 0x3F));
      } else if (c < 0x10000) {
        s += static_cast<char>(0xE0 | (c >> 12)), s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (c & 0x3F));
      } else {
        s += static_cast<char>(0xF0 | (c >> 18)), s += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
        s += static_cast<char>(0x80 | ((c >> 6) & 0x3F)), s += static_cast<char>(0x80 | (c & 0x3F));
      }
    }
    return s;
  }
  std::shared_ptr<std::vector<unsigned char>> data_;  // stbtt_fontinfo points into it: shared, never moved
  stbtt_fontinfo info_{};
};

}  // namespace mint::report
