// mint/autodiff/backward.hpp -- the two backward modes and the trainable-parameter type.
//
// mint's autodiff is "explicit context" reverse mode (the llm.c / tiny-cuda-nn way, see docs/architecture.md):
// each op is a forward function that returns its output (and saves what its backward needs in a small struct)
// and a backward function that ADDS the gradient of <output, d_output> to the gradients of its inputs.
// A model chains them; a loss or prior only has to hand the model d_logits or add to d_images, so new
// objectives and regularizers never touch the engine.
//
// The mode decides which gradients exist. InputOnly (inversion: weights frozen) passes nullptr for every
// weight gradient, and each op then skips its weight-gradient GEMMs and reductions entirely. Full (training a
// student or teacher) computes them as well.
#pragma once

#include <string>

#include "mint/core/tensor.hpp"

namespace mint {

enum class Backward { InputOnly, Full };

template <class Device = Cpu>
struct Param {
  Tensor<Device> value;
  Tensor<Device> grad;  // allocated (zeros) by the first Full backward; empty otherwise

  // The gradient buffer to accumulate into in `mode`, or nullptr when weights are frozen.
  Tensor<Device>* grad_for(Backward mode) {
    if (mode == Backward::InputOnly) return nullptr;
    if (!grad.defined() || !(grad.shape() == value.shape())) grad = Tensor<Device>::zeros(value.shape());
    return &grad;
  }
  void zero_grad() {
    if (grad.defined()) grad.fill(0.0f);
  }
};

}  // namespace mint
