// mint/nn/layernorm.hpp -- LayerNorm over the last axis (timm ViTs use eps = 1e-6).
#pragma once

#include <cmath>
#include <vector>

#include "mint/backend/cpu/parallel.hpp"
#include "mint/core/tensor.hpp"

namespace mint::nn {

// What the backward needs, per backend (the CUDA op fills LayerNormSavedT<Cuda>).
template <class Device = Cpu>
struct LayerNormSavedT {
  Tensor<Device> mean, rstd;  // [rows]
};
using LayerNormSaved = LayerNormSavedT<Cpu>;

namespace detail {
// Rows per thread below which the row loops run serially (the fused ops of mint/nn/fused.hpp use it too).
inline constexpr std::int64_t kLayerNormGrain = 16;

struct RowStats {
  float mean, rstd;
};

// One row of layernorm: y[0, d) from x[0, d) (y may be x); returns the row's mean and 1/std. The one LayerNorm
// arithmetic of the CPU: layernorm and the fused residual + LayerNorm (mint/nn/fused.hpp) call it.
inline RowStats layernorm_row(const float* xr, float* yr, std::int64_t d, const float* g, const float* bt, float eps) {
  double s = 0.0;  // two-pass in double: activations of deep ViTs have large means
  for (std::int64_t j = 0; j < d; ++j) s += xr[j];
  const float mean = static_cast<float>(s / static_cast<double>(d));
  double v = 0.0;
  for (std::int64_t j = 0; j < d; ++j) {
    const double c = xr[j] - mean;
    v += c * c;
  }
  const float rstd = static_cast<float>(1.0 / std::sqrt(v / static_cast<double>(d) + eps));
  for (std::int64_t j = 0; j < d; ++j) yr[j] = (xr[j] - mean) * rstd * g[j] + bt[j];
  return {mean, rstd};
}

// One row of layernorm_backward's input gradient: dxr[j] += rstd * (g dy - mean(g dy) - xhat mean(g dy xhat)).
inline void layernorm_backward_row(const float* dr, const float* xr, const float* g, float mean, float rstd,
                                   std::int64_t d, float* dxr) {
  float a = 0.0f, b = 0.0f;
  for (std::int64_t j = 0; j < d; ++j) {
    const float gd = g[j] * dr[j];
    a += gd;
    b += gd * (xr[j] - mean) * rstd;
  }
  a /= static_cast<float>(d);
  b /= static_cast<float>(d);
  for (std::int64_t j = 0; j < d; ++j) dxr[j] += rstd * (g[j] * dr[j] - a - (xr[j] - mean) * rstd * b);
}
}  // namespace detail

// requires: x [..., D], gamma [D], beta [D].
// ensures:  y = (x - mean) / sqrt(var + eps) * gamma + beta (biased variance), saved mean and 1/std.
inline Tensor<Cpu> layernorm(const Tensor<Cpu>& x, const Tensor<Cpu>& gamma, const Tensor<Cpu>& beta, float eps,
                             LayerNormSaved* saved) {
  const std::int64_t d = x.dim(-1), rows = x.numel() / d;
  check_shape(gamma, Shape{d}, "layernorm: weight");
  check_shape(beta, Shape{d}, "layernorm: bias");
  auto y = Tensor<Cpu>::empty(x.shape());
  if (saved) {
    saved->mean = Tensor<Cpu>::empty(Shape{rows});
    saved->rstd = Tensor<Cpu>::empty(Shape{rows});
  }
  const float *xp = x.data(), *g = gamma.data(), *bt = beta.data();
  float* yp = y.data();
  cpu::parallel_for(rows, [&](std::int64_t r) {
    const auto [mean, rstd] = detail::layernorm_row(xp + r * d, yp + r * d, d, g, bt, eps);
    if (saved) {
      saved->mean[r] = mean;
      saved->rstd[r] = rstd;
    }
  }, detail::kLayerNormGrain);
  return y;
}

// backward of <y, dy>: dx += rstd * (g*dy - mean(g*dy) - xhat * mean(g*dy*xhat)); dgamma += sum dy*xhat;
// dbeta += sum dy. nullptr skips (InputOnly passes nullptr for dgamma, dbeta).
inline void layernorm_backward(const Tensor<Cpu>& dy, const Tensor<Cpu>& x, const Tensor<Cpu>& gamma,
                               const LayerNormSaved& saved, Tensor<Cpu>* dx, Tensor<Cpu>* dgamma, Tensor<Cpu>* dbeta) {
  const std::int64_t d = x.dim(-1), rows = x.numel() / d;
  check_shape(dy, x.shape(), "layernorm_backward: d_output");
  if (dx) check_shape(*dx, x.shape(), "layernorm_backward: d_input");
  const float *xp = x.data(), *dyp = dy.data(), *g = gamma.data();
  if (dx) {
    float* dxp = dx->data();
    cpu::parallel_for(rows, [&](std::int64_t r) {
      detail::layernorm_backward_row(dyp + r * d, xp + r * d, g, saved.mean[r], saved.rstd[r], d, dxp + r * d);
    }, detail::kLayerNormGrain);
  }
  if (dgamma || dbeta) {
    if (dgamma) check_shape(*dgamma, Shape{d}, "layernorm_backward: d_weight");
    if (dbeta) check_shape(*dbeta, Shape{d}, "layernorm_backward: d_bias");
    const int nt = cpu::num_threads();
    std::vector<float> part(static_cast<std::size_t>(nt) * 2 * d, 0.0f);
#pragma omp parallel num_threads(nt)
    {
#if defined(_OPENMP)
      float* pg = part.data() + static_cast<std::size_t>(omp_get_thread_num()) * 2 * d;
#else
      float* pg = part.data();
#endif
      float* pb = pg + d;
#pragma omp for schedule(static)
      for (std::int64_t r = 0; r < rows; ++r) {
        const float mean = saved.mean[r], rstd = saved.rstd[r];
        for (std::int64_t j = 0; j < d; ++j) {
          pg[j] += dyp[r * d + j] * (xp[r * d + j] - mean) * rstd;
          pb[j] += dyp[r * d + j];
        }
      }
    }
    for (int t = 0; t < nt; ++t)
      for (std::int64_t j = 0; j < d; ++j) {
        if (dgamma) (*dgamma)[j] += part[static_cast<std::size_t>(t) * 2 * d + j];
        if (dbeta) (*dbeta)[j] += part[static_cast<std::size_t>(t) * 2 * d + d + j];
      }
  }
}

}  // namespace mint::nn
