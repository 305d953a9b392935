// mint/backend/cuda/elementwise.cuh -- residual add on Tensor<Cuda> (contract: mint/nn/elementwise.hpp).
#pragma once

#include "mint/backend/cuda/detail/launch.cuh"
#include "mint/backend/cuda/tensor.hpp"

namespace mint::nn {

inline Tensor<Cuda> add(const Tensor<Cuda>& a, const Tensor<Cuda>& b) {
  check_shape(b, a.shape(), "add: second operand");
  auto y = Tensor<Cuda>::empty(a.shape());
  const float *ap = a.data(), *bp = b.data();
  float* yp = y.data();
  cuda::detail::for_each(a.numel(), [=] __device__(std::int64_t i) { yp[i] = ap[i] + bp[i]; }, "add");
  return y;
}

inline void add_inplace(Tensor<Cuda>& a, const Tensor<Cuda>& b) {
  check_shape(b, a.shape(), "add_inplace: operand");
  float* ap = a.data();
  const float* bp = b.data();
  cuda::detail::for_each(a.numel(), [=] __device__(std::int64_t i) { ap[i] += bp[i]; }, "add_inplace");
}

// backward of <a + b, dy>: da += dy, db += dy (nullptr skips).
inline void add_backward(const Tensor<Cuda>& dy, Tensor<Cuda>* da, Tensor<Cuda>* db) {
  if (da) add_inplace(*da, dy);
  if (db) add_inplace(*db, dy);
}

}  // namespace mint::nn
