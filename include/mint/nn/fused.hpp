// mint/nn/fused.hpp -- compositions a backend may run as one kernel. On the CPU they are the plain
// composition (which is also their definition); the CUDA overloads (mint/backend/cuda/fused.cuh) fuse them.
#pragma once

#include "mint/nn/activation.hpp"
#include "mint/nn/linear.hpp"

namespace mint::nn {

// requires: as linear(x, w, b) with b != nullptr.
// ensures:  *pre = linear(x, w, b) (the pre-activation gelu_backward needs); returns gelu(*pre).
inline Tensor<Cpu> linear_gelu(const Tensor<Cpu>& x, const Tensor<Cpu>& w, const Tensor<Cpu>& b, Tensor<Cpu>& pre) {
  pre = linear(x, w, &b);
  return gelu(pre);
}

}  // namespace mint::nn
