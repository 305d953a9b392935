// mint/inversion/cost.hpp -- what an inversion costs: the FLOPs mint really executes per iteration (counted
// from the actual token counts), and PRI's analytic cost model (Theorem 1, Appendix F).
#pragma once

#include <cstdint>

#include "mint/models/vit_config.hpp"

namespace mint {

// GEMM FLOPs (2 per multiply-add) of one inversion iteration of mint's ViT: forward plus input-only backward
// for `batch` images with `kept` active patches each. Exact for what runs: the patch embedding on kept patches,
// L-1 full blocks on T = E + kept tokens, the last block with every token's LN1/qkv but attention queries,
// projection and MLP on the E CLS/distillation rows only, and the head. Backward repeats each linear GEMM once
// (d_input only: no weight gradients) and runs four attention GEMMs per head. Elementwise work (LayerNorm,
// GELU, softmax, priors, Adam) is not counted.
inline double inversion_iteration_flops(const ViTConfig& c, std::int64_t batch, std::int64_t kept) {
  const double b = static_cast<double>(batch), e = c.extra_tokens(), t = e + static_cast<double>(kept);
  const double d = c.dim, f = c.mlp_hidden, pf = static_cast<double>(c.in_chans) * c.patch * c.patch;
  auto linear = [&](double rows, double in, double out) { return 2.0 * rows * in * out * 2.0; };  // fwd + d_input
  // attention per image: q query rows over t keys, all heads together: QK^T + PV forward, dP dS dV dK dQ backward
  auto attn = [&](double q) { return 2.0 * (2.0 * q * t * d) + 2.0 * (4.0 * q * t * d); };
  const auto block = [&](double q) {
    return linear(t, d, 3 * d) + attn(q) + linear(q, d, d) + linear(q, d, f) + linear(q, f, d);
  };
  const double blocks = (c.depth - 1) * block(t) + block(e);
  return b * (linear(static_cast<double>(kept), pf, d) + blocks + linear(e, d, c.classes));
}

// PRI Theorem 1: per-layer SA cost 4Nd^2 + 2N^2d and FFN cost 8Nd^2 (Chen et al. 2023), totalled over L
// layers, T iterations and I output images.
struct Theorem1 {
  double layers, dim, patches;  // L, d, N

  [[nodiscard]] double sa(double n) const { return 4.0 * n * dim * dim + 2.0 * n * n * dim; }
  [[nodiscard]] double ffn(double n) const { return 8.0 * n * dim * dim; }
  // DMI: all N patches for all T iterations (Eqs. 3-4).
  [[nodiscard]] double dmi(double images, double iterations) const {
    return layers * (sa(patches) + ffn(patches)) * images * iterations;
  }
  // SMI*: idealised SMI that starts with N/v patches (the same final sparsity as PRI with divisor v).
  [[nodiscard]] double smi_ideal(double images, double iterations, double v) const {
    return layers * (sa(patches / v) + ffn(patches / v)) * images * iterations;
  }
  // PRI: stage k of v runs T/v iterations on N_k = N (1 - (k-1)/v) patches; each trajectory yields v images,
  // so I output images need I/v trajectories.
  [[nodiscard]] double pri(double images, double iterations, double v) const {
    double total = 0.0;
    for (int k = 1; k <= static_cast<int>(v); ++k) {
      const double nk = patches * (1.0 - (k - 1) / v);
      total += layers * (sa(nk) + ffn(nk)) * (images / v) * (iterations / v);
    }
    return total;
  }
};

}  // namespace mint
