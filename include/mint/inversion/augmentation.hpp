// mint/inversion/augmentation.hpp -- per-iteration random transforms of the images the model sees
// (DeepInversion's and SMI's reference code: random roll ("jitter") + horizontal flip).
//
// JitterFlip (mint's choice, docs/inversion.md): the roll moves whole patches, so an active patch stays one patch
// of the transformed grid and the active set follows the content exactly. The maximum roll is H/8 pixels rounded
// to the nearest whole patch, at least one patch (the 28 px / 4 px teacher: 1 patch; 224 / 16: 2 patches).
// JitterFlipOfficial: SMI's synthesis/smi.py jitter_and_flip + jitter_and_flip_index, as that code runs them.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "mint/backend/functors_plain.hpp"
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
// Python's floor division and modulo (the divisor is positive).
inline int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
}  // namespace detail

// One iteration's draw of SMI's jitter_and_flip: a roll by (dy, dx) pixels along (H, W), then the flip.
struct JitterDraw {
  int dy = 0, dx = 0;
  bool flip = false;
};

// SMI's official jitter (synthesis/smi.py jitter_and_flip, lim = 1/8; jitter_and_flip_index): one draw for the
// whole batch per iteration, a roll by dy, dx in [-int(H/8), int(H/8)] pixels (random.randint, inclusive), then a
// horizontal flip with probability 1/2. The keep set is remapped by jitter_and_flip_index's rule: roll by
// floor(d / P) patches, plus one more when (d mod P) / P >= 0.5 (Python's floor and mod), then flip the columns.
// No jitter in the ranking iteration of a schedule event and the one after it (skips_schedule_events), and the
// keep set stays in raster order while every patch is active (keeps_full_keep_set).
// `draws` (when not empty) gives the draw of iteration t as draws[t - 1], so a test can feed the rolls another
// implementation made; otherwise they come from Philox keyed by (seed, iteration).
struct JitterFlipOfficial {
  bool flip = true;
  bool jitter = true;
  std::vector<JitterDraw> draws;
  static constexpr bool skips_schedule_events = true;
  static constexpr bool keeps_full_keep_set = true;

  [[nodiscard]] JitterDraw draw(int iteration, std::uint64_t seed, int size) const {
    if (!draws.empty()) {
      check(iteration >= 1 && static_cast<std::size_t>(iteration) <= draws.size(), "JitterFlipOfficial: ",
            draws.size(), " draws given, none for iteration ", iteration);
      return draws[static_cast<std::size_t>(iteration - 1)];
    }
    const int lim = size / 8, span = 2 * lim + 1;
    const auto base = static_cast<std::uint64_t>(iteration) * 3;
    constexpr std::uint32_t stream = 0x5a11e000u;  // one draw per batch: the stream does not depend on the image
    JitterDraw d;
    d.dy = std::min(span - 1, static_cast<int>(philox_uniform(seed, stream, base) * span)) - lim;
    d.dx = std::min(span - 1, static_cast<int>(philox_uniform(seed, stream, base + 1) * span)) - lim;
    d.flip = philox_uniform(seed, stream, base + 2) < 0.5f;
    return d;
  }

  PatchTransform sample(int iteration, std::int64_t, std::uint64_t seed, int grid, int patch) const {
    const JitterDraw d = draw(iteration, seed, grid * patch);
    const int dy = jitter ? d.dy : 0, dx = jitter ? d.dx : 0;
    const bool f = flip && d.flip;
    // jitter_and_flip_index: whole-patch roll, one more when the remainder is at least half a patch
    auto patches = [patch](int px) {
      return detail::floor_div(px, patch) + (2 * (px - detail::floor_div(px, patch) * patch) >= patch ? 1 : 0);
    };
    // smi.py rolls, then flips; PatchTransform flips, then rolls: a roll by d after the flip is a roll by -d before
    PatchTransform t;
    t.flip = f;
    t.shift_y = patches(dy);
    t.shift_x = f ? -patches(dx) : patches(dx);
    t.pixel_roll = true;
    t.roll_y = dy;
    t.roll_x = f ? -dx : dx;
    return t;
  }
};

// The augmentation's transform of image `image` at `iteration` (either form of Augmentation::sample).
template <Augmentation A>
PatchTransform sample_transform(const A& a, int iteration, std::int64_t image, std::uint64_t seed, int grid,
                                int patch) {
  if constexpr (requires { a.sample(iteration, image, seed, grid, patch); }) {
    return a.sample(iteration, image, seed, grid, patch);
  } else {
    return a.sample(iteration, image, seed, grid);
  }
}

// The patch (r, c) of the original grid lands at this patch number of the transformed grid.
inline std::int32_t transform_patch(const PatchTransform& t, std::int32_t p, int grid) {
  const int r = p / grid, c = p % grid;
  const int c2 = t.flip ? grid - 1 - c : c;
  return detail::wrap(r + t.shift_y, grid) * grid + detail::wrap(c2 + t.shift_x, grid);
}

// The pixel map of transform t on [C, H, W] images of patch size p: the pixels roll by the patch shift times p,
// or by (roll_y, roll_x) with pixel_roll, after the flip.
inline fn::RollFlip pixel_map(const PatchTransform& t, std::int64_t h, std::int64_t w, int p) {
  const std::int64_t ry = t.pixel_roll ? t.roll_y : std::int64_t{t.shift_y} * p;
  const std::int64_t rx = t.pixel_roll ? t.roll_x : std::int64_t{t.shift_x} * p;
  return fn::RollFlip{h, w, ry, rx, t.flip};
}

// What both apply_transform overloads (this one and the CUDA one, inverter_cuda.cuh) need: the shapes checked,
// transform t's pixel map, and image b's pixels in `src` and `dst` (host or device pointers, by the tensors'
// backend).
namespace detail {
struct TransformedImage {
  fn::RollFlip map;
  const float* src;
  float* dst;
  std::int64_t pixels;  // C * H * W
};
template <class D>
TransformedImage transformed_image(const PatchTransform& t, const Tensor<D>& src, Tensor<D>& dst, std::int64_t b,
                                   int p) {
  check_rank(src, 4, "apply_transform: source");
  check_shape(dst, src.shape(), "apply_transform: destination");
  const std::int64_t per = src.dim(1) * src.dim(2) * src.dim(3);
  return {pixel_map(t, src.dim(2), src.dim(3), p), src.data() + b * per, dst.data() + b * per, per};
}
}  // namespace detail

// Writes image b of `src` transformed into image b of `dst` ([B, C, H, W], patch size p), or, with inverse = true,
// the inverse transform (used to bring d_images back to the original frame). The CUDA overload (inverter_cuda.cuh)
// runs the same fn::RollFlip map.
inline void apply_transform(const PatchTransform& t, const Tensor<Cpu>& src, Tensor<Cpu>& dst, std::int64_t b, int p,
                            bool inverse) {
  const detail::TransformedImage im = detail::transformed_image(t, src, dst, b, p);
  for (std::int64_t from = 0; from < im.pixels; ++from) {
    const std::int64_t to = im.map(from);
    if (inverse) im.dst[from] = im.src[to];
    else im.dst[to] = im.src[from];
  }
}

}  // namespace mint
