// mint/inversion/objectives.hpp -- what the inverted images must achieve.
#pragma once

#include <vector>

#include "mint/nn/losses.hpp"

namespace mint {

// Class cross-entropy to the target labels, mean over the batch (SMI Eq. 1, L_cls; DeepInversion).
// On CUDA the nn::cross_entropy overload of mint/backend/cuda/losses.cuh runs (include
// mint/inversion/inverter_cuda.cuh first).
struct ClassObjective {
  template <class D>
  float loss(const Tensor<D>& logits, const std::vector<int>& labels, Tensor<D>& d_logits) const {
    return nn::cross_entropy(logits, labels, &d_logits);
  }
};

}  // namespace mint
