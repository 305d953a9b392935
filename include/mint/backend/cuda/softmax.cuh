// mint/backend/cuda/softmax.cuh -- softmax over the last axis on Tensor<Cuda> (contract: mint/nn/softmax.hpp).
// One block per row: max, sum of exp(x - max), then the normalised values. The kernels also run in place
// (attention's probabilities, mint/backend/cuda/attention.cuh): each thread reads an element before it writes it.
#pragma once

#include "mint/backend/cuda/detail/launch.cuh"
#include "mint/backend/cuda/tensor.hpp"

namespace mint::nn {

namespace cuda_detail {

// y = softmax(x) per row of n; x == y allowed.
template <class T>
__global__ void softmax_kernel(const T* x, T* y, std::int64_t n) {
  using namespace mint::cuda::detail;
  const T* xr = x + static_cast<std::int64_t>(blockIdx.x) * n;
  T* yr = y + static_cast<std::int64_t>(blockIdx.x) * n;
  float m = -INFINITY;
  for (std::int64_t j = threadIdx.x; j < n; j += blockDim.x) m = fmaxf(m, xr[j]);
  m = block_reduce(m, Max{}, -INFINITY);
  float s = 0.0f;
  for (std::int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    const float e = expf(xr[j] - m);
    yr[j] = e;
    s += e;
  }
  const float inv = 1.0f / block_reduce(s, Sum{}, 0.0f);
  for (std::int64_t j = threadIdx.x; j < n; j += blockDim.x) yr[j] *= inv;
}

// Per row of n: g = y * (dy - sum(dy * y)); dx += g (accumulate) or dx = g (then dx == dy is allowed).
template <class T>
__global__ void softmax_backward_kernel(const T* dy, const T* y, T* dx, std::int64_t n, bool accumulate) {
  using namespace mint::cuda::detail;
  const std::int64_t o = static_cast<std::int64_t>(blockIdx.x) * n;
  float s = 0.0f;
  for (std::int64_t j = threadIdx.x; j < n; j += blockDim.x) s += dy[o + j] * y[o + j];
  s = block_reduce(s, Sum{}, 0.0f);
  for (std::int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    const float g = y[o + j] * (dy[o + j] - s);
    dx[o + j] = accumulate ? dx[o + j] + g : g;
  }
}

}  // namespace cuda_detail

// ensures: y = softmax(x) along the last axis.
inline Tensor<Cuda> softmax(const Tensor<Cuda>& x) {
  auto y = Tensor<Cuda>::empty(x.shape());
  const std::int64_t n = x.dim(-1), rows = x.numel() / n;
  if (rows == 0) return y;
  cuda_detail::softmax_kernel<<<static_cast<unsigned>(rows), cuda::detail::row_threads(n), 0, cuda::stream()>>>(
      x.data(), y.data(), n);
  cuda::detail::check_launch("softmax");
  return y;
}

// backward of <y, dy> given y: dx += y * (dy - sum(dy * y)).
inline void softmax_backward(const Tensor<Cuda>& dy, const Tensor<Cuda>& y, Tensor<Cuda>& dx) {
  check_shape(dy, y.shape(), "softmax_backward: d_output");
  check_shape(dx, y.shape(), "softmax_backward: d_input");
  const std::int64_t n = y.dim(-1), rows = y.numel() / n;
  if (rows == 0) return;
  cuda_detail::softmax_backward_kernel<<<static_cast<unsigned>(rows), cuda::detail::row_threads(n), 0,
                                         cuda::stream()>>>(dy.data(), y.data(), dx.data(), n, true);
  cuda::detail::check_launch("softmax_backward");
}

}  // namespace mint::nn
