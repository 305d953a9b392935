// mint/backend/functors.hpp -- pointwise math written once, called by the CPU loops and the CUDA
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

// Max pooling's scan: does v replace the best so far? The first maximum in scan order wins; a NaN wins (the last
// NaN if several), torch's CPU rule. (v != v is the NaN test, host and device.)
struct MaxPoolPick {
  MINT_HOST_DEVICE bool operator()(float v, float best) const { return v > best || v != v; }
};

// 1 / sqrt(var + eps) in double, rounded to float: batch norm's rstd from a variance.
MINT_HOST_DEVICE inline float inv_std(double var, float eps) { return static_cast<float>(1.0 / std::sqrt(var + eps)); }

// A running statistic's update: (1 - momentum) old + momentum value (torch's BatchNorm buffers).
struct RunningAverage {
  float momentum;
  MINT_HOST_DEVICE float operator()(float old, float value) const {
    return (1.0f - momentum) * old + momentum * value;
  }
};

// Batch norm's forward per channel: y = (x - mean) rstd gamma + beta, as x * scale + shift.
struct BatchNormAffine {
  float scale, shift;
  MINT_HOST_DEVICE BatchNormAffine(float mean, float rstd, float gamma, float beta)
      : scale(rstd * gamma), shift(beta - mean * (rstd * gamma)) {}
  MINT_HOST_DEVICE float operator()(float x) const { return x * scale + shift; }
};

// Batch norm's input gradient per channel (mint/nn/batchnorm.hpp): dx = k (dy - a - (x - mean) rstd b) with
// k = gamma rstd, and a = sum(dy) / M, b = sum(dy xhat) / M in training mode (0 in eval mode).
struct BatchNormGrad {
  float k, a, b, mean, rstd;
  MINT_HOST_DEVICE float operator()(float dy, float x) const { return k * (dy - a - (x - mean) * rstd * b); }
};

// The gradient of (mean, biased variance) of a channel at one value: dmean / M + 2 dvar (x - mean) / M, as
// a + b (x - mean) with a = dmean / M, b = 2 dvar / M.
struct ChannelStatsGrad {
  float a, b, mean;
  MINT_HOST_DEVICE float operator()(float x) const { return a + b * (x - mean); }
};

// One class of the temperature KL of knowledge distillation (mint/nn/losses.hpp, SMI Eq. 6), from the teacher's
// and the student's log-probabilities at temperature tau (double): the term p_t (log p_t - log p_s) and the
// derivative of the row's KL by the student's logit z_s / tau, p_s - p_t.
struct KlDivTerm {
  MINT_HOST_DEVICE double value(double log_pt, double log_ps) const { return std::exp(log_pt) * (log_pt - log_ps); }
  MINT_HOST_DEVICE double grad(double log_pt, double log_ps) const { return std::exp(log_ps) - std::exp(log_pt); }
};

// The L2 image prior (mint/nn/image_priors.hpp) at one value: x^2 (in double) and its gradient k x.
struct L2Term {
  MINT_HOST_DEVICE double value(float x) const { return static_cast<double>(x) * x; }
  MINT_HOST_DEVICE float grad(float x, float k) const { return k * x; }
};

}  // namespace mint::fn
