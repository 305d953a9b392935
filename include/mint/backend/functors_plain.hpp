// mint/backend/functors_plain.hpp -- the fn:: functors that need only <cmath> (pooling, batch norm, the KL of
// distillation, the L2 prior): MINT_HOST_DEVICE math called by the CPU loops and the CUDA kernels alike.
// mint/backend/functors.hpp includes this header and adds the ones built on Eigen (GELU's erf) and Adam.
#pragma once

#include <cmath>
#include <cstdint>

#include "mint/core/device.hpp"

namespace mint::fn {

// The pixel map of the augmentations' roll + horizontal flip of one [C, H, W] image (mint/inversion/
// augmentation.hpp, apply_transform): pixel (ch, y, x), at element `from` = (ch H + y) W + x, lands at element
// (ch H + y') W + x' with y' = (y + ry) mod H and x' = ((flip ? W - 1 - x : x) + rx) mod W. A bijection, so the
// inverse transform reads where the forward one writes. The CPU loop and the CUDA kernel both call it.
// requires: h, w >= 1 (the roll may be any integer, negative too).
struct RollFlip {
  std::int64_t h, w, ry, rx;
  bool flip;
  MINT_HOST_DEVICE static std::int64_t wrap(std::int64_t v, std::int64_t n) { return ((v % n) + n) % n; }
  MINT_HOST_DEVICE std::int64_t operator()(std::int64_t from) const {
    const std::int64_t x = from % w, rest = from / w, y = rest % h, ch = rest / h;
    return (ch * h + wrap(y + ry, h)) * w + wrap((flip ? w - 1 - x : x) + rx, w);
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

// The next three are templates on the value type: float on the device, and on the CPU also an Eigen array of a
// channel's values, so the CPU loop stays one vectorised Eigen expression of the same formula.

// Batch norm's forward per channel: y = (x - mean) rstd gamma + beta, as x * scale + shift.
struct BatchNormAffine {
  float scale, shift;
  MINT_HOST_DEVICE BatchNormAffine(float mean, float rstd, float gamma, float beta)
      : scale(rstd * gamma), shift(beta - mean * (rstd * gamma)) {}
  template <class T>
  MINT_HOST_DEVICE auto operator()(const T& x) const {
    return x * scale + shift;
  }
};

// Batch norm's input gradient per channel (mint/nn/batchnorm.hpp): dx = k (dy - a - (x - mean) rstd b) with
// k = gamma rstd, and a = sum(dy) / M, b = sum(dy xhat) / M in training mode (0 in eval mode).
struct BatchNormGrad {
  float k, a, b, mean, rstd;
  template <class T>
  MINT_HOST_DEVICE auto operator()(const T& dy, const T& x) const {
    return k * (dy - a - (x - mean) * rstd * b);
  }
};

// The gradient of (mean, biased variance) of a channel at one value: dmean / M + 2 dvar (x - mean) / M, as
// a + b (x - mean) with a = dmean / M, b = 2 dvar / M.
struct ChannelStatsGrad {
  float a, b, mean;
  template <class T>
  MINT_HOST_DEVICE auto operator()(const T& x) const {
    return a + b * (x - mean);
  }
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
