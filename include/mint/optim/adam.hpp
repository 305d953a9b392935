// mint/optim/adam.hpp -- Adam and AdamW over a model's named parameters (ViT::parameters()).
//
// The update rules are torch.optim.Adam's and torch.optim.AdamW's (bias-corrected moments, eps added to the
// bias-corrected sqrt(v)); the per-element math is fn::AdamStep (mint/backend/functors.hpp), the same functor
// the inversion engine and the future CUDA kernels call.
//
//   Adam  (WeightDecay::L2):         g += wd * p, then the Adam update             (torch.optim.Adam)
//   AdamW (WeightDecay::Decoupled):  p -= lr * wd * p, then the Adam update        (torch.optim.AdamW)
//
// State (m, v, step count) is kept per parameter, keyed by its name. As in torch, a parameter without a
// gradient (Param::grad undefined: no Full backward has reached it) is skipped and its step count does not
// advance. A DecayRule says which parameters get weight decay; `timm_decays` is timm's convention (no decay
// for biases, norm weights and other 1-D tensors, cls_token, pos_embed, dist_token).
//
//   optim::AdamW<> opt({.lr = 1e-3f, .weight_decay = 0.05f}, optim::timm_decays);
//   model.zero_grad(); ... model.backward(dlogits, Backward::Full); opt.step(model.parameters());
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <type_traits>

#include "mint/autodiff/backward.hpp"
#include "mint/backend/cpu/parallel.hpp"
#include "mint/backend/functors.hpp"
#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"

namespace mint::optim {

struct AdamOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;  // L2 for Adam, decoupled for AdamW

  // requires nothing; ensures: throws mint::Error naming the field if a value is out of torch's accepted range.
  void validate(const char* who) const {
    check(std::isfinite(lr) && lr >= 0.0f, who, ": lr must be finite and >= 0, got ", lr);
    check(beta1 >= 0.0f && beta1 < 1.0f, who, ": beta1 must be in [0, 1), got ", beta1);
    check(beta2 >= 0.0f && beta2 < 1.0f, who, ": beta2 must be in [0, 1), got ", beta2);
    check(std::isfinite(eps) && eps >= 0.0f, who, ": eps must be finite and >= 0, got ", eps);
    check(std::isfinite(weight_decay) && weight_decay >= 0.0f, who, ": weight_decay must be finite and >= 0, got ",
          weight_decay);
  }
};

enum class WeightDecay { L2, Decoupled };

// Whether the parameter `name` (with value `value`) gets weight decay. An empty rule means: all of them.
template <class Device = Cpu>
using DecayRule = std::function<bool(const std::string& name, const Tensor<Device>& value)>;

// timm's rule (timm.optim.param_groups_weight_decay with VisionTransformer.no_weight_decay()): no decay for
// tensors of rank <= 1 (biases, LayerNorm weights and biases), names ending in ".bias", and the token and
// position embeddings cls_token, pos_embed, dist_token. Everything else (the GEMM weights, the patch
// embedding's conv weight, the head) decays.
inline bool timm_decays(const std::string& name, const Tensor<Cpu>& value) {
  const auto ends_with = [&](const char* suf) {
    const std::string s(suf);
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  if (value.rank() <= 1 || ends_with(".bias")) return false;
  return name != "cls_token" && name != "pos_embed" && name != "dist_token";
}

template <class Device, WeightDecay Mode>
class BasicAdam {
  static_assert(std::is_same_v<Device, Cpu>, "the CUDA step comes with the CUDA backend (its own issue)");

 public:
  using ParamMap = std::map<std::string, Param<Device>>;

  struct State {
    Tensor<Device> m, v;     // first and second moments, the parameter's shape
    std::int64_t steps = 0;  // updates applied to this parameter (torch's per-parameter `step`)
  };

  // requires: opt valid (see AdamOptions::validate). rule empty: every parameter decays (torch's default).
  explicit BasicAdam(AdamOptions opt = {}, DecayRule<Device> rule = {}) : opt_(opt), rule_(std::move(rule)) {
    opt_.validate(name());
  }

  // requires: every parameter with a defined grad has grad.shape() == value.shape(), and a parameter of the
  //           same name has the same shape as at earlier steps.
  // ensures:  each parameter with a defined grad gets one Adam/AdamW update with the current lr, weight
  //           decay only if decays(name); its m, v and step count advance. Others are untouched. Gradients
  //           are read, not cleared (call zero_grad() before the next backward). Non-finite gradients are not
  //           checked and propagate into the parameter.
  void step(ParamMap& params) {
    for (auto& [pname, p] : params) {
      if (!p.grad.defined() || p.grad.numel() == 0) continue;
      check(p.grad.shape() == p.value.shape(), name(), ": parameter '", pname, "' has value ", p.value.shape().str(),
            " but gradient ", p.grad.shape().str());
      State& s = state_[pname];
      if (!s.m.defined()) {
        s.m = Tensor<Device>::zeros(p.value.shape());
        s.v = Tensor<Device>::zeros(p.value.shape());
      }
      check(s.m.shape() == p.value.shape(), name(), ": parameter '", pname, "' changed shape from ",
            s.m.shape().str(), " to ", p.value.shape().str(), " between steps");
      ++s.steps;
      const double t = static_cast<double>(s.steps);
      fn::AdamStep f{opt_.lr,
                     opt_.beta1,
                     opt_.beta2,
                     opt_.eps,
                     static_cast<float>(1.0 - std::pow(static_cast<double>(opt_.beta1), t)),
                     static_cast<float>(1.0 - std::pow(static_cast<double>(opt_.beta2), t)),
                     decays(pname, p.value) ? opt_.weight_decay : 0.0f,
                     Mode == WeightDecay::Decoupled};
      float* pv = p.value.data();
      const float* g = p.grad.data();
      float* m = s.m.data();
      float* v = s.v.data();
      cpu::parallel_for(p.value.numel(), [&](std::int64_t i) { f(pv[i], g[i], m[i], v[i]); }, 1 << 16);
    }
  }

  // Whether `name` gets weight decay under this optimizer's rule.
  [[nodiscard]] bool decays(const std::string& pname, const Tensor<Device>& value) const {
    return !rule_ || rule_(pname, value);
  }

  // For schedules: the lr of the following step() calls.
  void set_lr(float lr) {
    check(std::isfinite(lr) && lr >= 0.0f, name(), "::set_lr: lr must be finite and >= 0, got ", lr);
    opt_.lr = lr;
  }
  [[nodiscard]] float lr() const { return opt_.lr; }
  [[nodiscard]] const AdamOptions& options() const { return opt_; }

  // The state of parameter `pname`; throws if it has not been stepped yet.
  [[nodiscard]] const State& state(const std::string& pname) const {
    auto it = state_.find(pname);
    check(it != state_.end(), name(), ": no state for parameter '", pname, "' (never stepped)");
    return it->second;
  }
  [[nodiscard]] bool has_state(const std::string& pname) const { return state_.count(pname) > 0; }
  // Forgets all moments and step counts (the next step is a first step again).
  void reset() { state_.clear(); }

  static constexpr const char* name() { return Mode == WeightDecay::Decoupled ? "AdamW" : "Adam"; }

 private:
  AdamOptions opt_;
  DecayRule<Device> rule_;
  std::map<std::string, State> state_;
};

// torch.optim.Adam: weight_decay is an L2 term added to the gradient.
template <class Device = Cpu>
using Adam = BasicAdam<Device, WeightDecay::L2>;

// torch.optim.AdamW: weight_decay is decoupled (p -= lr * wd * p before the Adam update).
template <class Device = Cpu>
using AdamW = BasicAdam<Device, WeightDecay::Decoupled>;

}  // namespace mint::optim
