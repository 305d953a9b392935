// mint/nn/softmax.hpp -- softmax over the last axis (numerically stable: max subtracted).
#pragma once

#include <algorithm>
#include <cmath>

#include <Eigen/Core>

#include "mint/backend/cpu/parallel.hpp"
#include "mint/core/tensor.hpp"

namespace mint::nn {

namespace detail {
// In place over one row of n values. Eigen arrays: exp and the reductions vectorise (a plain float loop's
// sum cannot, without -ffast-math).
inline void softmax_row(float* r, std::int64_t n) {
  Eigen::Map<Eigen::ArrayXf> a(r, n);
  a = (a - a.maxCoeff()).exp();
  a *= 1.0f / a.sum();
}
// dx += y * (dy - <dy, y>) over one row.
inline void softmax_row_backward(const float* y, const float* dy, float* dx, std::int64_t n) {
  Eigen::Map<const Eigen::ArrayXf> ys(y, n), dys(dy, n);
  Eigen::Map<Eigen::ArrayXf> dxs(dx, n);
  dxs += ys * (dys - (dys * ys).sum());
}
// In place: g = y * (g - <g, y>), the softmax backward when the incoming gradient buffer may be overwritten.
inline void softmax_row_backward_inplace(const float* y, float* g, std::int64_t n) {
  Eigen::Map<const Eigen::ArrayXf> ys(y, n);
  Eigen::Map<Eigen::ArrayXf> gs(g, n);
  gs = ys * (gs - (gs * ys).sum());
}
}  // namespace detail

// ensures: y = softmax(x) along the last axis, same shape.
inline Tensor<Cpu> softmax(const Tensor<Cpu>& x) {
  auto y = x.clone();
  const std::int64_t n = x.dim(-1), rows = x.numel() / n;
  float* yp = y.data();
  cpu::parallel_for(rows, [&](std::int64_t r) { detail::softmax_row(yp + r * n, n); }, 16);
  return y;
}

// backward of <y, dy> given the forward output y: dx += y * (dy - sum(dy * y)).
inline void softmax_backward(const Tensor<Cpu>& dy, const Tensor<Cpu>& y, Tensor<Cpu>& dx) {
  check_shape(dy, y.shape(), "softmax_backward: d_output");
  check_shape(dx, y.shape(), "softmax_backward: d_input");
  const std::int64_t n = y.dim(-1), rows = y.numel() / n;
  cpu::parallel_for(rows, [&](std::int64_t r) {
    detail::softmax_row_backward(y.data() + r * n, dy.data() + r * n, dx.data() + r * n, n);
  }, 16);
}

}  // namespace mint::nn
