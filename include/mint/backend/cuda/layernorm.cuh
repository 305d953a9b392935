// mint/backend/cuda/layernorm.cuh -- LayerNorm over the last axis on Tensor<Cuda> (contract and formulas:
// mint/nn/layernorm.hpp). One block per row; two-pass mean/variance like the CPU op, in float over a block tree
// (the CPU sums in double), so the two differ by float rounding only.
#pragma once

#include "mint/backend/cuda/detail/launch.cuh"
#include "mint/backend/cuda/tensor.hpp"
#include "mint/nn/layernorm.hpp"


namespace mint::nn {


namespace cuda_detail {

template <class T>
__global__ void layernorm_kernel(const T* x, const T* g, const T* b, T* y, T* mean_out, T* rstd_out, std::int64_t d,
                                 float eps) {
  using namespace mint::cuda::detail;
  const std::int64_t r = blockIdx.x;
  const T* xr = x + r * d;
  float s = 0.0f;
  for (std::int64_t j = threadIdx.x; j < d; j += blockDim.x) s += xr[j];
  const float mean = block_reduce(s, Sum{}, 0.0f) / static_cast<float>(d);
  float v = 0.0f;
  for (std::int64_t j = threadIdx.x; j < d; j += blockDim.x) v += (xr[j] - mean) * (xr[j] - mean);
  const float rstd = 1.0f / sqrtf(block_reduce(v, Sum{}, 0.0f) / static_cast<float>(d) + eps);
  for (std::int64_t j = threadIdx.x; j < d; j += blockDim.x) y[r * d + j] = (xr[j] - mean) * rstd * g[j] + b[j];
  if (threadIdx.x == 0 && mean_out) {
    mean_out[r] = mean;
    rstd_out[r] = rstd;
  }
}

template <class T>
__global__ void layernorm_dx_kernel(const T* dy, const T* x, const T* g, const T* mean, const T* rstd, T* dx,
                                    std::int64_t d) {
  using namespace mint::cuda::detail;
  const std::int64_t r = blockIdx.x;
  const T *xr = x + r * d, *dr = dy + r * d;
  const float mu = mean[r], rs = rstd[r];
  float a = 0.0f, b = 0.0f;
  for (std::int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    const float gd = g[j] * dr[j];
    a += gd;
    b += gd * (xr[j] - mu) * rs;
  }
  a = block_reduce(a, Sum{}, 0.0f) / static_cast<float>(d);
  b = block_reduce(b, Sum{}, 0.0f) / static_cast<float>(d);
  for (std::int64_t j = threadIdx.x; j < d; j += blockDim.x)
    dx[r * d + j] += rs * (g[j] * dr[j] - a - (xr[j] - mu) * rs * b);
}

}  // namespace cuda_detail

using LayerNormSavedCuda = LayerNormSavedT<Cuda>;  // mean, rstd [rows]

// requires: x [..., D], gamma [D], beta [D]. ensures: as the CPU layernorm; mean and 1/std saved if asked.
inline Tensor<Cuda> layernorm(const Tensor<Cuda>& x, const Tensor<Cuda>& gamma, const Tensor<Cuda>& beta, float eps,
                              LayerNormSavedCuda* saved) {
  const std::int64_t d = x.dim(-1), rows = x.numel() / d;
  check_shape(gamma, Shape{d}, "layernorm: weight");
  check_shape(beta, Shape{d}, "layernorm: bias");
  auto y = Tensor<Cuda>::empty(x.shape());
  if (saved) {
    saved->mean = Tensor<Cuda>::empty(Shape{rows});
    saved->rstd = Tensor<Cuda>::empty(Shape{rows});
  }
  if (rows == 0) return y;
  cuda_detail::layernorm_kernel<<<static_cast<unsigned>(rows), cuda::detail::row_threads(d), 0, cuda::stream()>>>(
      x.data(), gamma.data(), beta.data(), y.data(), saved ? saved->mean.data() : nullptr,
      saved ? saved->rstd.data() : nullptr, d, eps);
  cuda::detail::check_launch("layernorm");
  return y;
}

// backward of <y, dy>: as the CPU layernorm_backward (dx, dgamma, dbeta added to; nullptr skips).
inline void layernorm_backward(const Tensor<Cuda>& dy, const Tensor<Cuda>& x, const Tensor<Cuda>& gamma,
                               const LayerNormSavedCuda& saved, Tensor<Cuda>* dx, Tensor<Cuda>* dgamma,
                               Tensor<Cuda>* dbeta) {
  const std::int64_t d = x.dim(-1), rows = x.numel() / d;
  check_shape(dy, x.shape(), "layernorm_backward: d_output");
  if (rows == 0) return;
  if (dx) {
    check_shape(*dx, x.shape(), "layernorm_backward: d_input");
    cuda_detail::layernorm_dx_kernel<<<static_cast<unsigned>(rows), cuda::detail::row_threads(d), 0,
                                       cuda::stream()>>>(dy.data(), x.data(), gamma.data(), saved.mean.data(),
                                                         saved.rstd.data(), dx->data(), d);
    cuda::detail::check_launch("layernorm_backward (d_input)");
  }
  if (dgamma) check_shape(*dgamma, Shape{d}, "layernorm_backward: d_weight");
  if (dbeta) check_shape(*dbeta, Shape{d}, "layernorm_backward: d_bias");
  if (dgamma || dbeta) {
    // One thread per column, summing down the rows (coalesced across columns). Simple, not the fastest.
    const float *dyp = dy.data(), *xp = x.data(), *mp = saved.mean.data(), *rp = saved.rstd.data();
    float* dg = dgamma ? dgamma->data() : nullptr;
    float* db = dbeta ? dbeta->data() : nullptr;
    cuda::detail::for_each(
        d,
        [=] __device__(std::int64_t j) {
          float sg = 0.0f, sb = 0.0f;
          for (std::int64_t r = 0; r < rows; ++r) {
            const float v = dyp[r * d + j];
            sg += v * (xp[r * d + j] - mp[r]) * rp[r];
            sb += v;
          }
          if (dg) dg[j] += sg;
          if (db) db[j] += sb;
        },
        "layernorm_backward (d_weight, d_bias)");
  }
}

}  // namespace mint::nn
