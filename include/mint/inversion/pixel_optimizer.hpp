// mint/inversion/pixel_optimizer.hpp -- the one optimiser of pixels that every image-space method uses (the
// inversion engine, inverter.hpp, and GradViT's attack, mint/tasks/gradvit.hpp): the start (seeded Gaussian noise
// or given images, optionally clipped), Adam with torch's bias correction 1 - beta^t (computed in adam_at() only),
// the step on the pixels of the active patches or on every pixel, the clip of channel c to its valid range after
// the step (SMI's synthesis/smi.py clip_images), and the finiteness check of the loss.
// The CUDA masked step (same arithmetic, one thread per pixel) is in mint/inversion/inverter_cuda.cuh.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>

#include "mint/backend/cpu/parallel.hpp"
#include "mint/backend/functors.hpp"
#include "mint/core/rng.hpp"
#include "mint/inversion/clip_range.hpp"
#include "mint/nn/tokens.hpp"

namespace mint {

// Adam on the pixels of the active patches only, then clip channel ch to [range.lo[ch], range.hi[ch]] (the CPU
// kernel; the CUDA overload is in mint/inversion/inverter_cuda.cuh, found by argument-dependent lookup).
// requires: x, g, m, v [B, C, H, W]; active a keep set for (B, (H/p)*(W/p)); range.channels == C.
inline void masked_adam_step(const fn::AdamStep& step, Tensor<Cpu>& x, const Tensor<Cpu>& g, Tensor<Cpu>& m,
                             Tensor<Cpu>& v, const nn::TokenIndex& active, std::int64_t p, const ClipRange& range) {
  const std::int64_t c = x.dim(1), h = x.dim(2), w = x.dim(3), gw = w / p;
  check(range.channels == c, "masked_adam_step: a clip range for ", range.channels, " channels, images have ", c);
  cpu::parallel_for(active.batch * active.count, [&](std::int64_t bk) {
    const std::int64_t i = bk / active.count;
    const std::int32_t patch = active.index[static_cast<std::size_t>(bk)];
    const std::int64_t y0 = (patch / gw) * p, x0 = (patch % gw) * p;
    for (std::int64_t ch = 0; ch < c; ++ch) {
      const float lo = range.lo[ch], hi = range.hi[ch];
      for (std::int64_t y = y0; y < y0 + p; ++y)
        for (std::int64_t xx = x0; xx < x0 + p; ++xx) {
          const std::int64_t o = ((i * c + ch) * h + y) * w + xx;
          step(x[o], g[o], m[o], v[o]);
          x[o] = std::clamp(x[o], lo, hi);
        }
    }
  });
}
// Clips channel ch of every image of x [B, C, H, W] to [range.lo[ch], range.hi[ch]] in place (CPU).
// requires: range.channels == C.
inline void clip_images(Tensor<Cpu>& x, const ClipRange& range) {
  const std::int64_t hw = x.dim(2) * x.dim(3), c = x.dim(1);
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    const std::int64_t ch = (i / hw) % c;
    x[i] = std::clamp(x[i], range.lo[ch], range.hi[ch]);
  }
}
// The scalar range [lo, hi] for every channel.
template <class D>
void masked_adam_step(const fn::AdamStep& step, Tensor<D>& x, const Tensor<D>& g, Tensor<D>& m, Tensor<D>& v,
                      const nn::TokenIndex& active, std::int64_t p, float lo, float hi) {
  masked_adam_step(step, x, g, m, v, active, p, ClipRange::uniform(x.dim(1), lo, hi));
}

// Adam's hyperparameters; at(t, lr) is the step of iteration t (1-based) with bias corrections 1 - beta_k^t.
struct PixelAdam {
  float lr = 0.25f, beta1 = 0.5f, beta2 = 0.99f, eps = 1e-8f;
  [[nodiscard]] fn::AdamStep at(int t) const { return at(t, lr); }
  [[nodiscard]] fn::AdamStep at(int t, float rate) const {
    return {rate, beta1, beta2, eps, 1.0f - static_cast<float>(std::pow(beta1, t)),
            1.0f - static_cast<float>(std::pow(beta2, t))};
  }
};

// The images, their Adam moments and the clip range of one optimisation, on backend Device.
template <class Device>
class PixelOptimizer {
 public:
  using TensorD = Tensor<Device>;

  // Starts from x0 [B, C, H, W] (host, model space), clipped to `range` first when `clip` (the moments start at 0).
  // requires: x0 finite (checked, naming `what` and the first bad index); range.channels == C.
  PixelOptimizer(Tensor<Cpu> x0, const PixelAdam& adam, const ClipRange& range, bool clip, const std::string& what)
      : adam_(adam), range_(range) {
    check(x0.rank() == 4 && range.channels == x0.dim(1), what, ": a clip range for ", range.channels,
          " channels, images ", x0.shape().str());
    for (std::int64_t i = 0; i < x0.numel(); ++i)
      check(std::isfinite(x0[i]), what, "[", i, "] = ", x0[i], " is not finite");
    if (clip) clip_images(x0, range);
    if constexpr (std::is_same_v<Device, Cpu>) {
      x_ = x0;
    } else {
      x_ = to_backend<Device>(x0);
    }
    m_ = TensorD::zeros(x0.shape());
    v_ = TensorD::zeros(x0.shape());
  }

  // Seeded Gaussian noise N(0, std^2) of `shape` in model space, drawn on the host (the same numbers on every
  // backend): Philox stream (seed, 0).
  static Tensor<Cpu> noise(const Shape& shape, std::uint64_t seed, float std = 1.0f) {
    auto x = Tensor<Cpu>::empty(shape);
    fill_normal(x, seed, 0, 0.0f, std);
    return x;
  }

  [[nodiscard]] TensorD& images() { return x_; }
  [[nodiscard]] const TensorD& images() const { return x_; }
  [[nodiscard]] const ClipRange& range() const { return range_; }
  [[nodiscard]] const PixelAdam& adam() const { return adam_; }
  // Adam's first and second moments (what a resumed optimisation needs beside the images and t).
  [[nodiscard]] const TensorD& first_moment() const { return m_; }
  [[nodiscard]] const TensorD& second_moment() const { return v_; }

  // Continues from saved moments (CPU): m and v the shape of images(), finite, v >= 0 (checked, naming `what`).
  void restore_moments(const Tensor<Cpu>& m, const Tensor<Cpu>& v, const std::string& what) {
    static_assert(std::is_same_v<Device, Cpu>, "PixelOptimizer::restore_moments is the CPU path");
    check_shape(m, x_.shape(), (what + ": first moment").c_str());
    check_shape(v, x_.shape(), (what + ": second moment").c_str());
    for (std::int64_t i = 0; i < m.numel(); ++i) {
      check(std::isfinite(m[i]), what, ": first moment [", i, "] = ", m[i], " is not finite");
      check(std::isfinite(v[i]) && v[i] >= 0.0f, what, ": second moment [", i, "] = ", v[i],
            " is not a finite value >= 0");
    }
    m_ = m.clone();
    v_ = v.clone();
  }

  // Adam (from `step`: fn::AdamStep, or a device-side source such as a CUDA graph's) on the pixels of the active
  // patches of patch size p, then the clip. requires: g the shape of images().
  template <class StepSource>
  void step(const StepSource& step, const TensorD& g, const nn::TokenIndex& active, std::int64_t p) {
    masked_adam_step(step, x_, g, m_, v_, active, p, range_);  // ADL: the backend's kernel
  }

  // Adam on every pixel, then the clip (CPU).
  void step(const fn::AdamStep& step, const Tensor<Cpu>& g) {
    static_assert(std::is_same_v<Device, Cpu>, "PixelOptimizer::step without a keep set is the CPU loop");
    check_shape(g, x_.shape(), "PixelOptimizer::step: gradient");
    const std::int64_t hw = x_.dim(2) * x_.dim(3), c = x_.dim(1);
    for (std::int64_t i = 0; i < x_.numel(); ++i) {
      step(x_[i], g[i], m_[i], v_[i]);
      const std::int64_t ch = (i / hw) % c;
      x_[i] = std::clamp(x_[i], range_.lo[ch], range_.hi[ch]);
    }
  }

  // The finiteness check every method makes on its loss after an iteration: throws naming `who`, the value, the
  // iteration and `where` (e.g. " (seed 2)").
  static void check_loss(double loss, int t, const char* who, const std::string& where = {}) {
    check(std::isfinite(loss), who, ": the loss became ", loss, " at iteration ", t, where);
  }

 private:
  PixelAdam adam_;
  ClipRange range_;
  TensorD x_, m_, v_;
};

}  // namespace mint
