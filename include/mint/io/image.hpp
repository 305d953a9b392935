// mint/io/image.hpp -- PNG output (and input, for tests and round trips) of image tensors, plus a grid layout
// that draws masked ViT patches black: how inverted images and their token masks are looked at.
//
// stb does the encoding; files go through the atomic writer (io/atomic_file.hpp). Debian's libstb-dev compiles
// the implementations into libstb.so, which mint::mint links, so this header includes the declarations only
// (never STB_IMAGE[_WRITE]_IMPLEMENTATION, which would define them a second time).
#pragma once

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <stb_image.h>
#include <stb_image_write.h>

#include "mint/core/error.hpp"
#include "mint/core/normalization.hpp"
#include "mint/core/shape.hpp"
#include "mint/core/tensor.hpp"
#include "mint/io/atomic_file.hpp"

namespace mint::io {

// The float interval that maps onto bytes 0..255; `lo` is also the value of "black" in grids.
struct PixelRange {
  float lo = 0.f, hi = 1.f;
};

namespace detail {

inline void check_range(PixelRange r, const char* what) {
  check(std::isfinite(r.lo) && std::isfinite(r.hi) && r.hi > r.lo, what, ": PixelRange needs finite lo < hi, got [",
        r.lo, ", ", r.hi, "]");
}

// clamp((x - lo) / (hi - lo), 0, 1) * 255 rounded. NaN maps to 0: converting a NaN to an integer is undefined.
inline std::uint8_t to_byte(float x, PixelRange r) {
  float t = (x - r.lo) / (r.hi - r.lo);
  if (!(t > 0.f)) t = 0.f;
  if (t > 1.f) t = 1.f;
  return static_cast<std::uint8_t>(t * 255.f + 0.5f);
}

inline void check_chw(const Tensor<Cpu>& t, const char* what) {
  check(t.rank() == 3 && (t.dim(0) == 1 || t.dim(0) == 3) && t.dim(1) >= 1 && t.dim(2) >= 1, what,
        ": expected an image of shape [C, H, W] with C = 1 or 3 and H, W >= 1, got ", t.shape().str());
}

}  // namespace detail

// The PNG file (its bytes) of 8-bit interleaved pixels: `channels` = 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA,
// rows of width * channels bytes. requires: pixels.size() == width * height * channels, width, height >= 1.
inline std::string encode_png(const std::vector<std::uint8_t>& pixels, std::int64_t width, std::int64_t height,
                              int channels) {
  check(channels >= 1 && channels <= 4, "encode_png: channels must be 1..4, got ", channels);
  check(width >= 1 && height >= 1 && width * channels <= INT_MAX && height <= INT_MAX, "encode_png: image ", width,
        "x", height, " is empty or too large for stb");
  check(static_cast<std::int64_t>(pixels.size()) == width * height * channels, "encode_png: ", pixels.size(),
        " bytes for a ", width, "x", height, "x", channels, " image");
  std::string png;
  auto append = [](void* ctx, void* data, int size) {
    static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), static_cast<std::size_t>(size));
  };
  const int ok = stbi_write_png_to_func(append, &png, static_cast<int>(width), static_cast<int>(height), channels,
                                        pixels.data(), static_cast<int>(width * channels));
  check(ok != 0 && !png.empty(), "encode_png: stb failed to encode a ", width, "x", height, " image");
  return png;
}

// Writes one image [C, H, W] (C = 1 grey or 3 RGB) as an 8-bit PNG, mapping [r.lo, r.hi] onto 0..255 and
// clamping outside it, atomically (write_atomically: a failed or killed write leaves any previous file as it was).
// Throws mint::Error for a bad shape or range, or naming `path` if the write fails.
inline void write_png(const std::string& path, const Tensor<Cpu>& image_chw, PixelRange r = {}) {
  detail::check_chw(image_chw, "write_png");
  detail::check_range(r, "write_png");
  const std::int64_t c = image_chw.dim(0), h = image_chw.dim(1), w = image_chw.dim(2);
  // stb wants interleaved rows (HWC); the tensor is planar (CHW).
  std::vector<std::uint8_t> pixels(static_cast<std::size_t>(c * h * w));
  const float* src = image_chw.data();
  for (std::int64_t ch = 0; ch < c; ++ch)
    for (std::int64_t i = 0; i < h * w; ++i)
      pixels[static_cast<std::size_t>(i * c + ch)] = detail::to_byte(src[ch * h * w + i], r);
  const std::string png = encode_png(pixels, w, h, static_cast<int>(c));
  try {
    write_file_atomically(path, png);
  } catch (const Error& e) {
    throw Error(mint::detail::concat("write_png: failed to write '", path, "': ", e.what()));
  }
}

// Lays out `images` [B, C, H, W] (C = 1 or 3) as a grid of min(cols, B) columns with `pad` pixels of black
// (r.lo) between and around the images; returns [C, Hg, Wg] in the input's pixel units, ready for write_png.
// With `patch_mask` ([B, N] float, N = (H/patch)*(W/patch), patches in row-major order, 1 = kept, 0 = masked;
// anything below 0.5 counts as masked) the masked patches are drawn black too. Throws mint::Error for bad
// shapes (naming both), cols < 1, pad < 0, or H, W not divisible by `patch`.
inline Tensor<Cpu> image_grid(const Tensor<Cpu>& images, int cols, int pad = 2, const Tensor<Cpu>* patch_mask = nullptr,
                              int patch = 0, PixelRange r = {}) {
  check(images.rank() == 4 && (images.dim(1) == 1 || images.dim(1) == 3) && images.dim(0) >= 1 &&
            images.dim(2) >= 1 && images.dim(3) >= 1,
        "image_grid: expected images of shape [B, C, H, W] with B >= 1, C = 1 or 3, H, W >= 1, got ",
        images.shape().str());
  check(cols >= 1, "image_grid: cols must be >= 1, got ", cols);
  check(pad >= 0, "image_grid: pad must be >= 0, got ", pad);
  detail::check_range(r, "image_grid");
  const std::int64_t b = images.dim(0), c = images.dim(1), h = images.dim(2), w = images.dim(3);

  std::int64_t gh = 0, gw = 0;  // patches per column / row
  if (patch_mask != nullptr) {
    check(patch >= 1, "image_grid: a patch_mask needs patch >= 1, got patch = ", patch);
    check(h % patch == 0 && w % patch == 0, "image_grid: image size ", h, "x", w, " is not divisible by patch ",
          patch);
    gh = h / patch;
    gw = w / patch;
    check_shape(*patch_mask, Shape{b, gh * gw}, "image_grid: patch_mask (for images [B, C, H, W] with patch size)");
  }

  const std::int64_t ncols = std::min<std::int64_t>(cols, b);
  const std::int64_t nrows = (b + ncols - 1) / ncols;
  const std::int64_t hg = nrows * h + (nrows + 1) * pad, wg = ncols * w + (ncols + 1) * pad;
  Tensor<Cpu> grid = Tensor<Cpu>::full(Shape{c, hg, wg}, r.lo);
  const float* src = images.data();
  float* dst = grid.data();
  for (std::int64_t k = 0; k < b; ++k) {
    const std::int64_t y0 = pad + (k / ncols) * (h + pad), x0 = pad + (k % ncols) * (w + pad);
    for (std::int64_t ch = 0; ch < c; ++ch)
      for (std::int64_t y = 0; y < h; ++y)
        for (std::int64_t x = 0; x < w; ++x) {
          bool kept = true;
          if (patch_mask != nullptr) kept = (*patch_mask)[k * gh * gw + (y / patch) * gw + x / patch] >= 0.5f;
          dst[(ch * hg + y0 + y) * wg + x0 + x] = kept ? src[((k * c + ch) * h + y) * w + x] : r.lo;
        }
  }
  return grid;
}

// image_grid for images in a model's normalised space: each channel c goes back to unit intensity by `norm`
// (x * std_c + mean_c; a one-channel normalisation serves every channel) and [0, 1] maps onto 0..255, so each
// channel is shown over its own valid range (an ImageNet-normalised RGB model); masked patches and padding are 0.
// requires: as image_grid; norm valid with 1 or C channels. Throws mint::Error naming what is wrong.
inline Tensor<Cpu> image_grid(const Tensor<Cpu>& images, int cols, int pad, const Tensor<Cpu>* patch_mask, int patch,
                              const Normalization& norm) {
  check(images.rank() == 4, "image_grid: expected images of shape [B, C, H, W], got ", images.shape().str());
  norm.validate("image_grid: normalisation");
  const Normalization n = norm.for_channels(images.dim(1), "image_grid: normalisation");
  Tensor<Cpu> unit = images.clone();
  const std::int64_t c = images.dim(1), hw = images.dim(2) * images.dim(3);
  for (std::int64_t i = 0; i < unit.numel(); ++i) unit[i] = n.to_unit(unit[i], (i / hw) % c);
  return image_grid(unit, cols, pad, patch_mask, patch, PixelRange{0.0f, 1.0f});
}

// Reads a PNG (or any format stb_image decodes) as [channels, H, W] floats byte / 255 in [0, 1]; stb converts
// between grey, RGB and RGBA as asked. Throws mint::Error naming `path` and stb's reason on failure.
inline Tensor<Cpu> read_png(const std::string& path, int channels) {
  check(channels >= 1 && channels <= 4, "read_png: channels must be 1..4, got ", channels);
  int w = 0, h = 0, file_channels = 0;
  const std::unique_ptr<stbi_uc, void (*)(void*)> pixels(stbi_load(path.c_str(), &w, &h, &file_channels, channels),
                                                        &stbi_image_free);
  if (!pixels) {
    const char* reason = stbi_failure_reason();
    throw Error(mint::detail::concat("read_png: cannot read '", path, "': ", reason ? reason : "unknown error"));
  }
  const std::int64_t c = channels, hw = static_cast<std::int64_t>(h) * w;
  Tensor<Cpu> t = Tensor<Cpu>::empty(Shape{c, h, w});
  float* dst = t.data();
  for (std::int64_t ch = 0; ch < c; ++ch)
    for (std::int64_t i = 0; i < hw; ++i) dst[ch * hw + i] = static_cast<float>(pixels.get()[i * c + ch]) / 255.f;
  return t;
}

}  // namespace mint::io
