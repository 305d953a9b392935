// mint/backend/functors.hpp -- pointwise math written once, called by the CPU loops and the CUDA
// kernels alike, so the CPU tests cover the GPU math too. Each functor is a MINT_HOST_DEVICE struct. The ones
// that need no Eigen (pooling, batch norm, KL, L2) are in functors_plain.hpp, included here, so the nn headers
// that use only those do not parse Eigen's special functions.
#pragma once

#include <cmath>

#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>

#include "mint/backend/functors_plain.hpp"
#include "mint/core/device.hpp"

namespace mint::fn {

// GELU, exact erf form (timm's nn.GELU default): y = x * Phi(x). erf is Eigen's float erf (a branch-free
// rational polynomial, a couple of ulp on [-4, 4], host and device), the same polynomial Eigen's vectorised
// Array::erf() runs, which the CPU loops in mint/nn/activation.hpp use.
struct Gelu {
  MINT_HOST_DEVICE float operator()(float x) const {
    return 0.5f * x * (1.0f + Eigen::numext::erf(x * 0.70710678118654752f));
  }
  // dy/dx = Phi(x) + x * phi(x)
  MINT_HOST_DEVICE float grad(float x) const {
    const float cdf = 0.5f * (1.0f + Eigen::numext::erf(x * 0.70710678118654752f));
    const float pdf = 0.39894228040143268f * std::exp(-0.5f * x * x);
    return cdf + x * pdf;
  }
};

// ReLU: y = max(x, 0). As in torch: the gradient at x = 0 is 0 (threshold_backward zeroes dy where x <= 0), and
// a NaN input gives NaN and lets dy through (NaN <= 0 is false).
struct Relu {
  MINT_HOST_DEVICE float operator()(float x) const { return x > 0.0f ? x : (x == x ? 0.0f : x); }
  MINT_HOST_DEVICE float grad(float x) const { return x <= 0.0f ? 0.0f : 1.0f; }
};

// Adam's per-element update (used by the inversion engine and by mint/optim/adam.hpp).
//   weight decay (optional, see below), then
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;  p -= lr (m / bias1) / (sqrt(v / bias2) + eps)
// which is torch.optim.Adam's rule (eps added to the bias-corrected sqrt(v)). weight_decay = 0 (the default,
// so `AdamStep{lr, beta1, beta2, eps, bias1, bias2}` is plain Adam) skips decay. With weight_decay != 0:
//   decoupled (AdamW, torch.optim.AdamW):  p *= 1 - lr * weight_decay  before the update
//   coupled   (Adam's L2, torch.optim.Adam): g += weight_decay * p     before the moments
struct AdamStep {
  float lr, beta1, beta2, eps, bias1, bias2;  // bias_k = 1 - beta_k^t
  float weight_decay = 0.0f;
  bool decoupled = true;
  MINT_HOST_DEVICE void operator()(float& p, float g, float& m, float& v) const {
    if (weight_decay != 0.0f) {
      if (decoupled)
        p *= 1.0f - lr * weight_decay;
      else
        g += weight_decay * p;
    }
    m = beta1 * m + (1.0f - beta1) * g;
    v = beta2 * v + (1.0f - beta2) * g * g;
    p -= lr * (m / bias1) / (std::sqrt(v / bias2) + eps);
  }
};

}  // namespace mint::fn
