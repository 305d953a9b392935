// mint/models/init.hpp -- the weight initialisation of a ViT trained from scratch (the embedded teacher's
// recipe, examples/train_teacher.cpp, and a distillation student, mint/tasks/distill.hpp).
//
// timm-like, all from Philox: parameter p in sorted-name order draws from stream p of `seed`.
//   patch_embed.proj.weight   U(+-1/sqrt(fan_in))  (nn.Conv2d's default; timm does not re-initialise it)
//   *.bias                    0
//   LayerNorm weights         1
//   everything else           N(0, 0.02)  (Linear weights, head, cls_token, pos_embed, dist_token; timm's
//                             trunc_normal cut at +-2 is never reached at std 0.02 in float32 Box-Muller)
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "mint/core/rng.hpp"
#include "mint/models/resnet.hpp"
#include "mint/models/vit.hpp"

namespace mint {

// ensures: every parameter of `model` is overwritten as above; the result depends on (seed, config) only.
inline void init_timm_like(ViT<>& model, std::uint64_t seed) {
  std::uint32_t stream = 0;
  for (auto& entry : model.parameters()) {
    // A plain reference, not a structured binding: C++20 lets a lambda capture a structured binding, but
    // clang 14 does not implement that yet (P1091/P1381).
    const std::string& name = entry.first;
    auto& t = entry.second.value;
    const auto ends = [&](const char* s) {
      const std::string suf(s);
      return name.size() >= suf.size() && name.compare(name.size() - suf.size(), suf.size(), suf) == 0;
    };
    if (name == "patch_embed.proj.weight") {
      const float bound = 1.0f / std::sqrt(static_cast<float>(t.numel() / t.dim(0)));
      fill_uniform(t, seed, stream, -bound, bound);
    } else if (ends(".bias")) {
      t.fill(0.0f);
    } else if (ends("norm1.weight") || ends("norm2.weight") || name == "norm.weight") {
      t.fill(1.0f);
    } else {
      fill_normal(t, seed, stream, 0.0f, 0.02f);
    }
    ++stream;
  }
}

// Re-initialises the classification head(s) only, with the same rule and streams as init_timm_like
// (head.weight / head_dist.weight N(0, 0.02), biases 0): a backbone reused for new classes.
inline void reinit_head(ViT<>& model, std::uint64_t seed) {
  std::uint32_t stream = 0;
  for (auto& [name, p] : model.parameters()) {
    if (name == "head.weight" || name == "head_dist.weight") fill_normal(p.value, seed, stream, 0.0f, 0.02f);
    if (name == "head.bias" || name == "head_dist.bias") p.value.fill(0.0f);
    ++stream;
  }
}

// torchvision's ResNet initialisation, from Philox (parameter p in sorted-name order on stream p of `seed`):
//   conv weights   kaiming_normal_(mode="fan_out", nonlinearity="relu"): N(0, sqrt(2 / (Cout kh kw)))
//   BN weight 1, BN bias 0, running statistics (0, 1), num_batches_tracked 0
//   fc.weight, fc.bias   nn.Linear's default U(+-1/sqrt(in_features))
inline void init_torchvision_like(ResNet<>& model, std::uint64_t seed) {
  std::uint32_t stream = 0;
  for (auto& [name, p] : model.parameters()) {
    auto& t = p.value;
    if (name == "fc.weight" || name == "fc.bias") {
      const float bound = 1.0f / std::sqrt(static_cast<float>(model.config().channels(4)));
      fill_uniform(t, seed, stream, -bound, bound);
    } else if (t.rank() == 4) {
      fill_normal(t, seed, stream, 0.0f, std::sqrt(2.0f / static_cast<float>(t.dim(0) * t.dim(2) * t.dim(3))));
    } else {
      const bool is_weight = name.size() >= 7 && name.compare(name.size() - 7, 7, ".weight") == 0;
      t.fill(is_weight ? 1.0f : 0.0f);
    }
    ++stream;
  }
  const std::string rv = ".running_var";
  for (auto& [name, b] : model.buffers())
    b.fill(name.size() >= rv.size() && name.compare(name.size() - rv.size(), rv.size(), rv) == 0 ? 1.0f : 0.0f);
}

}  // namespace mint
