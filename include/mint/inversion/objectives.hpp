// mint/inversion/objectives.hpp -- what the inverted images must achieve.
#pragma once

#include <vector>

#include "mint/nn/losses.hpp"

namespace mint {

// Class cross-entropy to the target labels, mean over the batch (SMI Eq. 1, L_cls; DeepInversion).
struct ClassObjective {
  float loss(const Tensor<Cpu>& logits, const std::vector<int>& labels, Tensor<Cpu>& d_logits) const {
    return nn::cross_entropy(logits, labels, &d_logits);
  }
};

}  // namespace mint
