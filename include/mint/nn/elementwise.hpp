// mint/nn/elementwise.hpp -- residual add, scaling.
#pragma once

#include "mint/backend/cpu/parallel.hpp"
#include "mint/core/tensor.hpp"

namespace mint::nn {

// ensures: returns a + b (same shapes required).
inline Tensor<Cpu> add(const Tensor<Cpu>& a, const Tensor<Cpu>& b) {
  check_shape(b, a.shape(), "add: second operand");
  auto y = Tensor<Cpu>::empty(a.shape());
  const float *ap = a.data(), *bp = b.data();
  float* yp = y.data();
  cpu::parallel_for(a.numel(), [&](std::int64_t i) { yp[i] = ap[i] + bp[i]; }, 16384);
  return y;
}

// In place: a += b (the residual stream update; its backward is the identity to both operands).
inline void add_inplace(Tensor<Cpu>& a, const Tensor<Cpu>& b) {
  check_shape(b, a.shape(), "add_inplace: operand");
  float* ap = a.data();
  const float* bp = b.data();
  cpu::parallel_for(a.numel(), [&](std::int64_t i) { ap[i] += bp[i]; }, 16384);
}

// In place: a *= s.
inline void scale_inplace(Tensor<Cpu>& a, float s) {
  float* ap = a.data();
  cpu::parallel_for(a.numel(), [&](std::int64_t i) { ap[i] *= s; }, 16384);
}

// In place: a += s (every element).
inline void add_scalar_inplace(Tensor<Cpu>& a, float s) {
  float* ap = a.data();
  cpu::parallel_for(a.numel(), [&](std::int64_t i) { ap[i] += s; }, 16384);
}

// backward of <a + b, dy>: da += dy, db += dy (nullptr skips).
inline void add_backward(const Tensor<Cpu>& dy, Tensor<Cpu>* da, Tensor<Cpu>* db) {
  if (da) add_inplace(*da, dy);
  if (db) add_inplace(*db, dy);
}

}  // namespace mint::nn
