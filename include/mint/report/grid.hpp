// mint/report/grid.hpp -- a grid of inverted images a person can read: each image denormalised with the model's
// per-channel normalisation (mint::Normalization), upscaled by an integer factor with nearest neighbour (a 28 px
// image becomes 112 px: every model pixel stays a visible square), with spacing and a caption of up to two lines
// under it (class name, the teacher's confidence), set in a real font (report/font.hpp). Masked patches (absent
// from a sparse image) are drawn as a grey checkerboard, the usual sign for "no pixels here", so they cannot be
// mistaken for black or white image content.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "mint/core/error.hpp"
#include "mint/core/normalization.hpp"
#include "mint/inversion/sparse_image.hpp"
#include "mint/io/image.hpp"
#include "mint/report/canvas.hpp"
#include "mint/report/font.hpp"

namespace mint::report {

struct Caption {
  std::string title;   // first line, e.g. the class name
  std::string detail;  // second line, e.g. "p = 0.93"
};

struct GridOptions {
  int cols = 10;        // images per row (fewer when there are fewer images)
  int min_tile = 112;   // the upscale factor is the smallest integer making the larger side >= min_tile pixels
  int spacing = 12;     // pixels between tiles and around the grid
  float font_px = 13.0f;
  std::string font_path = kDefaultFontPath;
  Rgb background{255, 255, 255}, text{24, 24, 24}, detail{90, 90, 90}, border{150, 150, 150};
  Rgb checker_a{190, 190, 190}, checker_b{235, 235, 235};  // masked patches
};

namespace detail {

// The validated image geometry shared by the grid and the image-folder export: every image [C, H, W] alike,
// C = 1 or 3 and equal to the normalisation's channel count after broadcasting, masks of (H/patch)*(W/patch).
struct ImageGeometry {
  std::int64_t c = 0, h = 0, w = 0, patch = 0, gw = 0;
  Normalization norm;
};

inline ImageGeometry image_geometry(std::span<const SparseImage> images, const Normalization& norm,
                                    std::int64_t patch, const char* what) {
  check(!images.empty(), what, ": no images");
  norm.validate(what);
  const Shape px = images.front().pixels.shape();
  check(px.rank() == 3 && (px[0] == 1 || px[0] == 3) && px[1] >= 1 && px[2] >= 1, what,
        ": images must be [C, H, W] with C = 1 or 3, got ", px.str());
  check(patch >= 1 && px[1] % patch == 0 && px[2] % patch == 0, what, ": patch size ", patch,
        " does not tile images of ", px[1], "x", px[2]);
  ImageGeometry g{px[0], px[1], px[2], patch, px[2] / patch, norm.for_channels(px[0], what)};
  const Shape mask{(px[1] / patch) * g.gw};
  for (std::size_t i = 0; i < images.size(); ++i) {
    check(images[i].pixels.shape() == px, what, ": image ", i, " is ", images[i].pixels.shape().str(),
          ", image 0 is ", px.str());
    check(images[i].mask.shape() == mask, what, ": image ", i, " has a mask of ", images[i].mask.shape().str(),
          ", expected ", mask.str(), " (patch ", patch, ")");
  }
  return g;
}

// The byte of model-space value x in channel ch: round(clamp(x * std + mean, 0, 1) * 255), NaN -> 0.
inline std::uint8_t unit_byte(const ImageGeometry& g, float x, std::int64_t ch) {
  return io::detail::to_byte(x, io::PixelRange{g.norm.lo(ch), g.norm.hi(ch)});
}

inline bool patch_kept(const ImageGeometry& g, const SparseImage& s, std::int64_t y, std::int64_t x) {
  return s.mask[(y / g.patch) * g.gw + x / g.patch] >= 0.5f;
}

}  // namespace detail

// requires: images as detail::image_geometry checks; captions empty or one per image; cols, min_tile >= 1,
// spacing >= 0; the font file readable. ensures: an RGB canvas of ceil(B / cols) rows. Throws mint::Error naming
// the bad argument before drawing anything.
inline Canvas labelled_grid(std::span<const SparseImage> images, std::span<const Caption> captions,
                            const Normalization& norm, std::int64_t patch, const GridOptions& opt = {}) {
  const auto g = detail::image_geometry(images, norm, patch, "labelled_grid");
  check(captions.empty() || captions.size() == images.size(), "labelled_grid: ", captions.size(),
        " captions for ", images.size(), " images (give none or one per image)");
  check(opt.cols >= 1 && opt.min_tile >= 1 && opt.min_tile <= 4096 && opt.spacing >= 0 && opt.spacing <= 1024,
        "labelled_grid: need cols >= 1, min_tile in 1..4096, spacing in 0..1024, got cols ", opt.cols, ", min_tile ",
        opt.min_tile, ", spacing ", opt.spacing);
  const Font font = Font::load(opt.font_path);
  const std::int64_t scale = std::max<std::int64_t>(1, (opt.min_tile + std::max(g.h, g.w) - 1) / std::max(g.h, g.w));
  const std::int64_t tw = g.w * scale, th = g.h * scale;
  const int line = font.line_height(opt.font_px);
  const std::int64_t caption_h = captions.empty() ? 0 : 2 * line + 4;
  const auto b = static_cast<std::int64_t>(images.size());
  const std::int64_t cols = std::min<std::int64_t>(opt.cols, b), rows = (b + cols - 1) / cols;
  Canvas canvas(cols * tw + (cols + 1) * opt.spacing, rows * (th + caption_h) + (rows + 1) * opt.spacing,
                opt.background);
  const std::int64_t checker = std::max<std::int64_t>(2, g.patch * scale / 2);  // 2 x 2 squares per patch
  for (std::int64_t k = 0; k < b; ++k) {
    const SparseImage& s = images[static_cast<std::size_t>(k)];
    const std::int64_t x0 = opt.spacing + (k % cols) * (tw + opt.spacing);
    const std::int64_t y0 = opt.spacing + (k / cols) * (th + caption_h + opt.spacing);
    for (std::int64_t y = 0; y < th; ++y)
      for (std::int64_t x = 0; x < tw; ++x) {
        const std::int64_t iy = y / scale, ix = x / scale;
        Rgb c;
        if (!detail::patch_kept(g, s, iy, ix)) {
          c = ((y / checker + x / checker) % 2 == 0) ? opt.checker_a : opt.checker_b;
        } else {
          auto px = [&](std::int64_t ch) { return detail::unit_byte(g, s.pixels[(ch * g.h + iy) * g.w + ix], ch); };
          const std::uint8_t r = px(0);
          c = g.c == 1 ? Rgb{r, r, r} : Rgb{r, px(1), px(2)};
        }
        canvas.set(x0 + x, y0 + y, c);
      }
    if (opt.spacing > 0) canvas.outline_rect(x0, y0, tw, th, opt.border);
    if (captions.empty()) continue;
    const Caption& cap = captions[static_cast<std::size_t>(k)];
    const auto lines = {std::pair{&cap.title, opt.text}, std::pair{&cap.detail, opt.detail}};
    std::int64_t ty = y0 + th + 3;
    for (const auto& [text, colour] : lines) {
      const std::string fitted = font.fit(*text, opt.font_px, static_cast<int>(tw));
      font.draw(canvas, x0 + (tw - font.text_width(fitted, opt.font_px)) / 2, ty, fitted, opt.font_px, colour);
      ty += line;
    }
  }
  return canvas;
}

}  // namespace mint::report
