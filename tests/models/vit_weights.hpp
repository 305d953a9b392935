// Deterministic ViT weights from the Philox stream: the rule tests/fixtures/make_fixtures.py uses, so the
// DeiT-Tiny-shaped fixture model (23 MB of weights) is regenerated here instead of committed.
// Rule: parameters in sorted-name order, parameter p uses stream p; ranges by name (README in fixtures/).
#pragma once

#include <cmath>
#include <map>
#include <string>

#include "mint/core/rng.hpp"
#include "mint/models/vit.hpp"

namespace mint::test {

inline bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

inline std::map<std::string, Tensor<>> philox_vit_weights(const ViTConfig& cfg, std::uint64_t seed) {
  ViT<> shapes(cfg);
  std::map<std::string, Tensor<>> out;
  std::uint32_t stream = 0;
  for (const auto& [name, p] : shapes.parameters()) {  // std::map: byte-wise sorted, as Python's sorted()
    float lo, hi;
    if (ends_with(name, "norm1.weight") || ends_with(name, "norm2.weight") || name == "norm.weight") {
      lo = 0.8f, hi = 1.2f;
    } else if (ends_with(name, ".bias")) {
      lo = -0.1f, hi = 0.1f;
    } else if (name == "cls_token" || name == "dist_token" || name == "pos_embed") {
      lo = -0.5f, hi = 0.5f;
    } else {
      const double fan_in = static_cast<double>(p.value.numel() / p.value.dim(0));
      hi = static_cast<float>(std::sqrt(3.0 / fan_in));
      lo = -hi;
    }
    auto t = Tensor<>::empty(p.value.shape());
    fill_uniform(t, seed, stream++, lo, hi);
    out[name] = t;
  }
  return out;
}

}  // namespace mint::test
