// mint/backend/cuda/activation.cuh -- GELU and ReLU on Tensor<Cuda>: the CPU ops' contracts
// (mint/nn/activation.hpp), the same fn::Gelu / fn::Relu functors (mint/backend/functors.hpp), one thread per
// element. fn::Gelu's erf is Eigen's float polynomial on the device too, so CPU and GPU agree to rounding.
#pragma once

#include "mint/backend/cuda/detail/launch.cuh"
#include "mint/backend/cuda/tensor.hpp"
#include "mint/backend/functors.hpp"

namespace mint::nn {

// ensures: y = gelu(x) elementwise.
inline Tensor<Cuda> gelu(const Tensor<Cuda>& x) {
  auto y = Tensor<Cuda>::empty(x.shape());
  const float* xp = x.data();
  float* yp = y.data();
  cuda::detail::for_each(x.numel(), [=] __device__(std::int64_t i) { yp[i] = fn::Gelu{}(xp[i]); }, "gelu");
  return y;
}

// backward of <y, dy>: dx += dy * gelu'(x).
inline void gelu_backward(const Tensor<Cuda>& dy, const Tensor<Cuda>& x, Tensor<Cuda>& dx) {
  check_shape(dy, x.shape(), "gelu_backward: d_output");
  check_shape(dx, x.shape(), "gelu_backward: d_input");
  const float *xp = x.data(), *dyp = dy.data();
  float* dxp = dx.data();
  cuda::detail::for_each(
      x.numel(), [=] __device__(std::int64_t i) { dxp[i] += dyp[i] * fn::Gelu{}.grad(xp[i]); }, "gelu_backward");
}

// ensures: y = relu(x) (fn::Relu: NaN propagates).
inline Tensor<Cuda> relu(const Tensor<Cuda>& x) {
  auto y = Tensor<Cuda>::empty(x.shape());
  const float* xp = x.data();
  float* yp = y.data();
  cuda::detail::for_each(x.numel(), [=] __device__(std::int64_t i) { yp[i] = fn::Relu{}(xp[i]); }, "relu");
  return y;
}

// backward of <y, dy>: dx += dy where x > 0 or x is NaN (torch's threshold_backward; no 0 * inf).
inline void relu_backward(const Tensor<Cuda>& dy, const Tensor<Cuda>& x, Tensor<Cuda>& dx) {
  check_shape(dy, x.shape(), "relu_backward: d_output");
  check_shape(dx, x.shape(), "relu_backward: d_input");
  const float *xp = x.data(), *dyp = dy.data();
  float* dxp = dx.data();
  cuda::detail::for_each(
      x.numel(), [=] __device__(std::int64_t i) { dxp[i] += fn::Relu{}.grad(xp[i]) > 0.0f ? dyp[i] : 0.0f; },
      "relu_backward");
}

}  // namespace mint::nn
