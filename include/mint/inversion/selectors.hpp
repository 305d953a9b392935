// mint/inversion/selectors.hpp -- PatchSelector policies: rank an image's active patches, most important
// first. Schedules prune from the end of the ranking (SMI) and detach from its front (PRI).
#pragma once

#include <algorithm>
#include <numeric>
#include <vector>

#include "mint/core/rng.hpp"
#include "mint/inversion/concepts.hpp"

namespace mint {

namespace detail {
inline std::vector<std::int32_t> order_by(const RankInput& in, bool descending) {
  check(in.attention.size() == in.active.size(), "selector: ", in.attention.size(), " attention values for ",
        in.active.size(), " active patches");
  std::vector<std::size_t> idx(in.active.size());
  std::iota(idx.begin(), idx.end(), 0);
  // stable: ties keep token order, so rankings are deterministic
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
    return descending ? in.attention[a] > in.attention[b] : in.attention[a] < in.attention[b];
  });
  std::vector<std::int32_t> out(idx.size());
  for (std::size_t i = 0; i < idx.size(); ++i) out[i] = in.active[idx[i]];
  return out;
}
}  // namespace detail

// Highest last-block CLS attention first (SMI's semantic patch identification; PRI's default).
struct HighAttention {
  std::vector<std::int32_t> rank(const RankInput& in) const { return detail::order_by(in, true); }
};

// Lowest attention first (PRI's ablation: detach the least attended patches first).
struct LowAttention {
  std::vector<std::int32_t> rank(const RankInput& in) const { return detail::order_by(in, false); }
};

// A seeded random permutation, a pure function of (seed, image, iteration): Philox keys per draw.
struct Random {
  std::vector<std::int32_t> rank(const RankInput& in) const {
    std::vector<std::int32_t> out(in.active.begin(), in.active.end());
    const std::uint32_t stream = 0x5e1ec7u ^ static_cast<std::uint32_t>(in.image * 7919 + in.iteration);
    for (std::size_t i = out.size(); i > 1; --i) {  // Fisher-Yates
      const auto u = philox_uniform(in.seed, stream, i);
      const std::size_t j = std::min(i - 1, static_cast<std::size_t>(u * static_cast<float>(i)));
      std::swap(out[i - 1], out[j]);
    }
    return out;
  }
};

// Raster order: patches from the top of the image first (PRI's fixed top-region baseline).
struct TopRegion {
  std::vector<std::int32_t> rank(const RankInput& in) const {
    std::vector<std::int32_t> out(in.active.begin(), in.active.end());
    std::sort(out.begin(), out.end());
    return out;
  }
};

}  // namespace mint
