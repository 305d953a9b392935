// mint/nn/activation.hpp -- ReLU (fn::Relu) and GELU (exact erf form). fn::Gelu in mint/backend/functors.hpp is the scalar
// definition (and what CUDA kernels call); the CPU loops here evaluate the same formula on Eigen arrays so
// erf and exp run vectorised (scalar std::erf was 37-43% of an inversion iteration, docs/performance.md).
// tests/nn/test_activation.cpp checks both against each other and against double-precision erf.
#pragma once

#include <algorithm>

#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>

#include "mint/backend/cpu/parallel.hpp"
#include "mint/backend/functors.hpp"
#include "mint/core/tensor.hpp"

namespace mint::nn {

namespace detail {
// Calls f(offset, length) over [0, n) in chunks of 16K elements, chunks split across threads.
template <class F>
void for_chunks(std::int64_t n, F&& f) {
  constexpr std::int64_t kChunk = 16384;
  cpu::parallel_for((n + kChunk - 1) / kChunk, [&](std::int64_t c) { f(c * kChunk, std::min(kChunk, n - c * kChunk)); }, 2);
}
using ArrayMap = Eigen::Map<Eigen::ArrayXf>;
using ConstArrayMap = Eigen::Map<const Eigen::ArrayXf>;

// y[0, len) = gelu(x[0, len)): the one GELU loop of the CPU (gelu and the fused nn::linear_gelu call it on the same
// 16K chunks, so both round alike). y may be x.
inline void gelu_chunk(const float* x, float* y, std::int64_t len) {
  ConstArrayMap xs(x, len);
  ArrayMap ys(y, len);
  ys = 0.5f * xs * (1.0f + (xs * 0.70710678118654752f).erf());
}

// gelu'(x) as an Eigen expression over xs (evaluated where it is assigned; xs must outlive it).
inline auto gelu_derivative(const ConstArrayMap& xs) {
  return 0.5f * (1.0f + (xs * 0.70710678118654752f).erf()) + xs * 0.39894228040143268f * (-0.5f * xs.square()).exp();
}
}  // namespace detail

// ensures: y = gelu(x) elementwise, same shape.
inline Tensor<Cpu> gelu(const Tensor<Cpu>& x) {
  auto y = Tensor<Cpu>::empty(x.shape());
  detail::for_chunks(x.numel(),
                     [&](std::int64_t o, std::int64_t len) { detail::gelu_chunk(x.data() + o, y.data() + o, len); });
  return y;
}

// backward of <y, dy>: dx += dy * gelu'(x).
inline void gelu_backward(const Tensor<Cpu>& dy, const Tensor<Cpu>& x, Tensor<Cpu>& dx) {
  check_shape(dy, x.shape(), "gelu_backward: d_output");
  check_shape(dx, x.shape(), "gelu_backward: d_input");
  detail::for_chunks(x.numel(), [&](std::int64_t o, std::int64_t len) {
    detail::ConstArrayMap xs(x.data() + o, len), dys(dy.data() + o, len);
    detail::ArrayMap dxs(dx.data() + o, len);
    dxs += dys * detail::gelu_derivative(xs);
  });
}

// ensures: y = relu(x) = max(x, 0) elementwise (fn::Relu), same shape.
inline Tensor<Cpu> relu(const Tensor<Cpu>& x) {
  auto y = Tensor<Cpu>::empty(x.shape());
  const float* xp = x.data();
  float* yp = y.data();
  detail::for_chunks(x.numel(), [&](std::int64_t o, std::int64_t len) {
    const fn::Relu f;
    for (std::int64_t i = o; i < o + len; ++i) yp[i] = f(xp[i]);
  });
  return y;
}

// backward of <y, dy>: dx += dy where x > 0 (and where x is NaN), nothing elsewhere, x = 0 included (torch's rule).
inline void relu_backward(const Tensor<Cpu>& dy, const Tensor<Cpu>& x, Tensor<Cpu>& dx) {
  check_shape(dy, x.shape(), "relu_backward: d_output");
  check_shape(dx, x.shape(), "relu_backward: d_input");
  const float *xp = x.data(), *dyp = dy.data();
  float* dxp = dx.data();
  detail::for_chunks(x.numel(), [&](std::int64_t o, std::int64_t len) {
    const fn::Relu f;
    for (std::int64_t i = o; i < o + len; ++i) dxp[i] += f.grad(xp[i]) > 0.0f ? dyp[i] : 0.0f;  // no 0 * inf
  });
}

}  // namespace mint::nn
