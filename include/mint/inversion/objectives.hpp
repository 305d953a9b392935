// mint/inversion/objectives.hpp -- what the inverted images must achieve.
#pragma once

#include <type_traits>
#include <vector>

#include "mint/inversion/loss_sink.hpp"
#include "mint/nn/losses.hpp"

namespace mint {

// Class cross-entropy to the target labels, mean over the batch (SMI Eq. 1, L_cls; DeepInversion).
// On CUDA the nn::cross_entropy overload of mint/backend/cuda/losses.cuh runs (include
// mint/inversion/inverter_cuda.cuh first).
struct ClassObjective {
  static constexpr bool capturable = true;  // its sink form adds on the device on CUDA
  template <class D>
  float loss(const Tensor<D>& logits, const std::vector<int>& labels, Tensor<D>& d_logits) const {
    return nn::cross_entropy(logits, labels, &d_logits);
  }
  // The same term into the engine's sink (on CUDA added on the device: no read-back).
  template <class D>
  void loss(const Tensor<D>& logits, const std::vector<int>& labels, Tensor<D>& d_logits, LossSink<D>& sink) const {
    if constexpr (std::is_same_v<D, Cpu>) {
      sink.add(loss(logits, labels, d_logits));
    } else {
      (void)nn::cross_entropy(logits, labels, &d_logits, 1.0f, sink.device());
    }
  }
};

}  // namespace mint
