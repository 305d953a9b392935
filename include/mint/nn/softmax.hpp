// mint/nn/softmax.hpp -- softmax over the last axis (numerically stable: max subtracted).
#pragma once

#include <algorithm>
#include <cmath>

#include "mint/backend/cpu/parallel.hpp"
#include "mint/core/tensor.hpp"

namespace mint::nn {

namespace detail {
// In place over one row of n values.
inline void softmax_row(float* r, std::int64_t n) {
  float mx = r[0];
  for (std::int64_t j = 1; j < n; ++j) mx = std::max(mx, r[j]);
  float s = 0.0f;
  for (std::int64_t j = 0; j < n; ++j) {
    r[j] = std::exp(r[j] - mx);
    s += r[j];
  }
  const float inv = 1.0f / s;
  for (std::int64_t j = 0; j < n; ++j) r[j] *= inv;
}
// dx += y * (dy - <dy, y>) over one row.
inline void softmax_row_backward(const float* y, const float* dy, float* dx, std::int64_t n) {
  float dot = 0.0f;
  for (std::int64_t j = 0; j < n; ++j) dot += dy[j] * y[j];
  for (std::int64_t j = 0; j < n; ++j) dx[j] += y[j] * (dy[j] - dot);
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
