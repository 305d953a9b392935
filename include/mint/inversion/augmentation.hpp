// mint/inversion/augmentation.hpp -- per-iteration random transforms of the images the model sees
// (DeepInversion's and SMI's reference code: random roll ("jitter") + horizontal flip).
//
// Choice (docs/inversion.md): the roll moves whole patches, so an active patch stays one patch of the
// transformed grid and the active set follows the content exactly. The maximum roll is H/8 pixels rounded to
// the nearest whole patch, at least one patch (the 28 px / 4 px teacher: 1 patch; 224 / 16: 2 patches).
#pragma once

#include <algorithm>
#include <cmath>

#include "mint/core/rng.hpp"
#include "mint/inversion/concepts.hpp"

namespace mint {

struct NoAugmentation {
  PatchTransform sample(int, std::int64_t, std::uint64_t, int) const { return {}; }
};

struct JitterFlip {
  bool flip = true;
  bool jitter = true;
  PatchTransform sample(int iteration, std::int64_t image, std::uint64_t seed, int grid) const {
    const int max_shift = std::max(1, static_cast<int>(std::lround(grid / 8.0)));
    const auto stream = 0xa11ce000u ^ static_cast<std::uint32_t>(image);
    const auto base = static_cast<std::uint64_t>(iteration) * 3;
    PatchTransform t;
    if (flip) t.flip = philox_uniform(seed, stream, base) < 0.5f;
    if (jitter) {
      const int span = 2 * max_shift + 1;
      t.shift_y = std::min(span - 1, static_cast<int>(philox_uniform(seed, stream, base + 1) * span)) - max_shift;
      t.shift_x = std::min(span - 1, static_cast<int>(philox_uniform(seed, stream, base + 2) * span)) - max_shift;
    }
    return t;
  }
};

namespace detail {
inline int wrap(int v, int n) { return ((v % n) + n) % n; }
}  // namespace detail

// The patch (r, c) of the original grid lands at this patch number of the transformed grid.
inline std::int32_t transform_patch(const PatchTransform& t, std::int32_t p, int grid) {
  const int r = p / grid, c = p % grid;
  const int c2 = t.flip ? grid - 1 - c : c;
  return detail::wrap(r + t.shift_y, grid) * grid + detail::wrap(c2 + t.shift_x, grid);
}

// Writes image b of `src` transformed into image b of `dst` ([B, C, H, W], patch size p), or, with
// inverse = true, the inverse transform (used to bring d_images back to the original frame).
inline void apply_transform(const PatchTransform& t, const Tensor<Cpu>& src, Tensor<Cpu>& dst, std::int64_t b, int p,
                            bool inverse) {
  const std::int64_t c = src.dim(1), h = src.dim(2), w = src.dim(3);
  for (std::int64_t ch = 0; ch < c; ++ch)
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int64_t x = 0; x < w; ++x) {
        const std::int64_t y2 = detail::wrap(static_cast<int>(y + t.shift_y * p), static_cast<int>(h));
        const std::int64_t x2 = detail::wrap(static_cast<int>((t.flip ? w - 1 - x : x) + t.shift_x * p), static_cast<int>(w));
        const std::int64_t from = ((b * c + ch) * h + y) * w + x, to = ((b * c + ch) * h + y2) * w + x2;
        if (inverse) dst[from] = src[to];
        else dst[to] = src[from];
      }
}

}  // namespace mint
