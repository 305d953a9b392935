// mint/backend/functors.hpp -- pointwise math written once, called by the CPU loops and (later) the CUDA
// kernels alike, so the CPU tests cover the GPU math too. Each functor is a MINT_HOST_DEVICE struct.
#pragma once

#include <cmath>

#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>

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

// Adam's per-element update (used by the inversion engine and the trainers).
struct AdamStep {
  float lr, beta1, beta2, eps, bias1, bias2;  // bias_k = 1 - beta_k^t
  MINT_HOST_DEVICE void operator()(float& p, float g, float& m, float& v) const {
    m = beta1 * m + (1.0f - beta1) * g;
    v = beta2 * v + (1.0f - beta2) * g * g;
    p -= lr * (m / bias1) / (std::sqrt(v / bias2) + eps);
  }
};

}  // namespace mint::fn
