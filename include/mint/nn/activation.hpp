// mint/nn/activation.hpp -- GELU (exact erf form, the functor in mint/backend/functors.hpp).
#pragma once

#include "mint/backend/cpu/parallel.hpp"
#include "mint/backend/functors.hpp"
#include "mint/core/tensor.hpp"

namespace mint::nn {

// ensures: y = gelu(x) elementwise, same shape.
inline Tensor<Cpu> gelu(const Tensor<Cpu>& x) {
  auto y = Tensor<Cpu>::empty(x.shape());
  const float* xp = x.data();
  float* yp = y.data();
  const fn::Gelu f;
  cpu::parallel_for(x.numel(), [&](std::int64_t i) { yp[i] = f(xp[i]); }, 4096);
  return y;
}

// backward of <y, dy>: dx += dy * gelu'(x).
inline void gelu_backward(const Tensor<Cpu>& dy, const Tensor<Cpu>& x, Tensor<Cpu>& dx) {
  check_shape(dy, x.shape(), "gelu_backward: d_output");
  check_shape(dx, x.shape(), "gelu_backward: d_input");
  const float *xp = x.data(), *dyp = dy.data();
  float* dxp = dx.data();
  const fn::Gelu f;
  cpu::parallel_for(x.numel(), [&](std::int64_t i) { dxp[i] += dyp[i] * f.grad(xp[i]); }, 4096);
}

}  // namespace mint::nn
