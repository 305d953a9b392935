// mint/report/canvas.hpp -- an 8-bit RGB picture that the report layer draws into (grids, captions) and encodes
// as PNG (io::encode_png, stb). Drawing clips to the canvas: nothing outside it is touched.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "mint/core/error.hpp"
#include "mint/io/image.hpp"

namespace mint::report {

struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
  friend bool operator==(const Rgb&, const Rgb&) = default;
};

class Canvas {
 public:
  // requires: 1 <= width, height and width * height <= 2^28 pixels (1 GiB of RGB: a guard against a layout bug).
  Canvas(std::int64_t width, std::int64_t height, Rgb background) : width_(width), height_(height) {
    check(width >= 1 && height >= 1 && width * height <= (std::int64_t{1} << 28), "Canvas: size ", width, "x",
          height, " is empty or larger than 2^28 pixels");
    rgb_.resize(static_cast<std::size_t>(width * height * 3));
    for (std::size_t i = 0; i < rgb_.size(); i += 3) rgb_[i] = background.r, rgb_[i + 1] = background.g,
                                                     rgb_[i + 2] = background.b;
  }
  [[nodiscard]] std::int64_t width() const { return width_; }
  [[nodiscard]] std::int64_t height() const { return height_; }
  [[nodiscard]] const std::vector<std::uint8_t>& bytes() const { return rgb_; }

  [[nodiscard]] Rgb at(std::int64_t x, std::int64_t y) const {
    check(x >= 0 && y >= 0 && x < width_ && y < height_, "Canvas::at: (", x, ", ", y, ") outside ", width_, "x",
          height_);
    const std::size_t i = index(x, y);
    return {rgb_[i], rgb_[i + 1], rgb_[i + 2]};
  }
  void set(std::int64_t x, std::int64_t y, Rgb c) {
    if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
    const std::size_t i = index(x, y);
    rgb_[i] = c.r, rgb_[i + 1] = c.g, rgb_[i + 2] = c.b;
  }
  // Mixes `c` over the pixel with weight alpha / 255 (text coverage).
  void blend(std::int64_t x, std::int64_t y, Rgb c, std::uint8_t alpha) {
    if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
    const std::size_t i = index(x, y);
    auto mix = [alpha](std::uint8_t under, std::uint8_t over) {
      return static_cast<std::uint8_t>((under * (255 - alpha) + over * alpha + 127) / 255);
    };
    rgb_[i] = mix(rgb_[i], c.r), rgb_[i + 1] = mix(rgb_[i + 1], c.g), rgb_[i + 2] = mix(rgb_[i + 2], c.b);
  }
  void fill_rect(std::int64_t x0, std::int64_t y0, std::int64_t w, std::int64_t h, Rgb c) {
    for (std::int64_t y = std::max<std::int64_t>(y0, 0); y < std::min(y0 + h, height_); ++y)
      for (std::int64_t x = std::max<std::int64_t>(x0, 0); x < std::min(x0 + w, width_); ++x) set(x, y, c);
  }
  // A one-pixel outline just outside the rectangle [x0, x0 + w) x [y0, y0 + h).
  void outline_rect(std::int64_t x0, std::int64_t y0, std::int64_t w, std::int64_t h, Rgb c) {
    fill_rect(x0 - 1, y0 - 1, w + 2, 1, c), fill_rect(x0 - 1, y0 + h, w + 2, 1, c);
    fill_rect(x0 - 1, y0, 1, h, c), fill_rect(x0 + w, y0, 1, h, c);
  }
  // The PNG file of this canvas (8-bit RGB).
  [[nodiscard]] std::string png() const { return io::encode_png(rgb_, width_, height_, 3); }

 private:
  [[nodiscard]] std::size_t index(std::int64_t x, std::int64_t y) const {
    return static_cast<std::size_t>((y * width_ + x) * 3);
  }
  std::int64_t width_, height_;
  std::vector<std::uint8_t> rgb_;
};

}  // namespace mint::report
