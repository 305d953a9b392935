// mint/optim/sgd.hpp -- SGD with momentum over a model's named parameters (ViT::parameters()), with
// torch.optim.SGD's semantics (the student optimiser of PRI Appendix D: lr 0.1, momentum 0.9, wd 1e-4).
//
// For each parameter with a gradient g, at every step:
//   d = g + weight_decay * p                      (coupled weight decay: an L2 term in the gradient)
//   if momentum != 0:
//     buf = d                                     at the parameter's first step (torch clones d; no dampening)
//     buf = momentum * buf + (1 - dampening) * d  afterwards
//     d = nesterov ? d + momentum * buf : buf
//   p -= lr * d
//
// As in torch, a parameter without a gradient (Param::grad undefined) is skipped and its buffer does not
// advance. A DecayRule (mint/optim/adam.hpp) may restrict weight decay to some parameters; the default (empty)
// decays all of them, which is torch's behaviour when every parameter is in one group.
//
//   optim::SGD<> opt({.lr = 0.1f, .momentum = 0.9f, .weight_decay = 1e-4f});
//   model.zero_grad(); ... model.backward(dlogits, Backward::Full); opt.step(model.parameters());
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <type_traits>

#include "mint/autodiff/backward.hpp"
#include "mint/backend/cpu/parallel.hpp"
#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
#include "mint/optim/adam.hpp"

namespace mint::optim {

struct SGDOptions {
  float lr = 0.1f;
  float momentum = 0.0f;
  float dampening = 0.0f;
  float weight_decay = 0.0f;
  bool nesterov = false;

  // ensures: throws mint::Error naming the field if a value is outside what torch.optim.SGD accepts.
  void validate() const {
    check(std::isfinite(lr) && lr >= 0.0f, "SGD: lr must be finite and >= 0, got ", lr);
    check(std::isfinite(momentum) && momentum >= 0.0f, "SGD: momentum must be finite and >= 0, got ", momentum);
    check(std::isfinite(dampening), "SGD: dampening must be finite, got ", dampening);
    check(std::isfinite(weight_decay) && weight_decay >= 0.0f, "SGD: weight_decay must be finite and >= 0, got ",
          weight_decay);
    check(!nesterov || (momentum > 0.0f && dampening == 0.0f),
          "SGD: nesterov momentum requires momentum > 0 and dampening 0 (as torch.optim.SGD)");
  }
};

template <class Device = Cpu>
class SGD {
  static_assert(std::is_same_v<Device, Cpu>, "the CUDA step comes with the CUDA backend (its own issue)");

 public:
  using ParamMap = std::map<std::string, Param<Device>>;

  struct State {
    Tensor<Device> momentum_buffer;  // the parameter's shape; undefined while momentum == 0
    std::int64_t steps = 0;          // updates applied to this parameter
  };

  // requires: opt valid (SGDOptions::validate). rule empty: every parameter decays (torch's default).
  explicit SGD(SGDOptions opt = {}, DecayRule<Device> rule = {}) : opt_(opt), rule_(std::move(rule)) { opt_.validate(); }

  // requires: every parameter with a defined grad has grad.shape() == value.shape(), and keeps its shape
  //           between steps.
  // ensures:  each parameter with a defined grad gets one update (see the header comment); others are untouched.
  //           Gradients are read, not cleared.
  void step(ParamMap& params) {
    for (auto& [pname, p] : params) {
      if (!p.grad.defined() || p.grad.numel() == 0) continue;
      check(p.grad.shape() == p.value.shape(), "SGD: parameter '", pname, "' has value ", p.value.shape().str(),
            " but gradient ", p.grad.shape().str());
      State& s = state_[pname];
      const float wd = decays(pname, p.value) ? opt_.weight_decay : 0.0f;
      const float lr = opt_.lr, mom = opt_.momentum, damp = 1.0f - opt_.dampening;
      const bool first = s.steps == 0, nesterov = opt_.nesterov;
      float* pv = p.value.data();
      const float* g = p.grad.data();
      if (mom == 0.0f) {
        cpu::parallel_for(p.value.numel(), [&](std::int64_t i) { pv[i] -= lr * (g[i] + wd * pv[i]); }, 1 << 16);
      } else {
        if (first) s.momentum_buffer = Tensor<Device>::zeros(p.value.shape());
        check(s.momentum_buffer.shape() == p.value.shape(), "SGD: parameter '", pname, "' changed shape from ",
              s.momentum_buffer.shape().str(), " to ", p.value.shape().str(), " between steps");
        float* buf = s.momentum_buffer.data();
        cpu::parallel_for(p.value.numel(), [&](std::int64_t i) {
          const float d = g[i] + wd * pv[i];
          buf[i] = first ? d : mom * buf[i] + damp * d;
          pv[i] -= lr * (nesterov ? d + mom * buf[i] : buf[i]);
        }, 1 << 16);
      }
      ++s.steps;
    }
  }

  [[nodiscard]] bool decays(const std::string& pname, const Tensor<Device>& value) const {
    return !rule_ || rule_(pname, value);
  }
  void set_lr(float lr) {
    check(std::isfinite(lr) && lr >= 0.0f, "SGD::set_lr: lr must be finite and >= 0, got ", lr);
    opt_.lr = lr;
  }
  [[nodiscard]] float lr() const { return opt_.lr; }
  [[nodiscard]] const SGDOptions& options() const { return opt_; }

  // The state of parameter `pname`; throws if it has not been stepped yet.
  [[nodiscard]] const State& state(const std::string& pname) const {
    auto it = state_.find(pname);
    check(it != state_.end(), "SGD: no state for parameter '", pname, "' (never stepped)");
    return it->second;
  }
  [[nodiscard]] bool has_state(const std::string& pname) const { return state_.count(pname) > 0; }
  void reset() { state_.clear(); }

 private:
  SGDOptions opt_;
  DecayRule<Device> rule_;
  std::map<std::string, State> state_;
};

}  // namespace mint::optim
