// mint/inversion/clip_range.hpp -- the per-channel valid pixel range the inversion engine clips to after every
// Adam step (SMI's synthesis/smi.py clip_images: channel c to [-m_c / s_c, (1 - m_c) / s_c]). A plain value type
// (fixed arrays, no heap), so the CUDA masked-Adam kernel takes it by value, CUDA graphs included.
#pragma once

#include <cstdint>

#include "mint/core/error.hpp"
#include "mint/core/normalization.hpp"

namespace mint {

struct ClipRange {
  static constexpr int kMaxChannels = 16;
  int channels = 0;
  float lo[kMaxChannels] = {}, hi[kMaxChannels] = {};

  // One range [lo, hi] for each of `c` channels.
  // requires: 1 <= c <= kMaxChannels, lo <= hi.
  static ClipRange uniform(std::int64_t c, float lo, float hi) {
    check(c >= 1 && c <= kMaxChannels, "ClipRange: ", c, " channels, supported 1..", kMaxChannels);
    check(!(hi < lo), "ClipRange: pixel_lo ", lo, " > pixel_hi ", hi);
    ClipRange r;
    r.channels = static_cast<int>(c);
    for (int ch = 0; ch < kMaxChannels && ch < r.channels; ++ch) r.lo[ch] = lo, r.hi[ch] = hi;
    return r;
  }
  // Channel c to [norm.lo(c), norm.hi(c)], the model-space image of unit intensities [0, 1]; a one-channel
  // normalisation broadcasts to `c` channels. requires: norm valid, 1 <= c <= kMaxChannels.
  static ClipRange of(const Normalization& norm, std::int64_t c) {
    norm.validate("InversionOptions::normalization");
    const Normalization n = norm.for_channels(c, "InversionOptions::normalization");
    ClipRange r = uniform(c, 0.0f, 0.0f);
    for (int ch = 0; ch < kMaxChannels && ch < r.channels; ++ch) r.lo[ch] = n.lo(ch), r.hi[ch] = n.hi(ch);
    return r;
  }
};

}  // namespace mint
