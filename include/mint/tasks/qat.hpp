// mint/tasks/qat.hpp -- quantization-aware training with learned quantization ranges (LSQ, Esser et al. 2020,
// in LSQ+'s asymmetric form), run as PRI Table 3a runs it: a fake-quantized copy of the teacher fine-tuned by
// knowledge distillation from the float teacher on synthetic images only ("10k inverted images ... fine-tune
// quantized models for 100 epochs with a learning rate of 0.001 ... learned step size quantization").
//
// The quantizer is Eq. 5's (tasks/quantize.hpp, fake_quantize) with its two numbers trained:
//   x^ = lo + S q,   q = round((clip(x, lo, hi) - lo) / S),   S = (hi - lo) / Q,   Q = 2^k - 1
// per output channel of each quantized weight (or per tensor) and per layer input, as the post-training
// quantizer places them (QuantConfig). The range starts where post-training quantization puts it (each weight
// row's min/max; the calibrated activation ranges), so before the first step the model is QuantizedViT's
// exactly (test_qat.cpp). Training moves lo and hi; LSQ learns the step S and LSQ+ an offset beside it: (lo, hi)
// is the same two degrees of freedom, S = (hi - lo) / Q and the offset lo. The gradients are LSQ's: the
// straight-through estimator for round (d round(v) / dv = 1, its value kept), so with v = (x - lo) / S:
//   x inside [lo, hi]:  d x^ / d x = 1,  d x^ / d lo = -(q - v) / Q,  d x^ / d hi = (q - v) / Q
//   x below lo:         d x^ / d x = 0,  d x^ / d lo = 1,             d x^ / d hi = 0
//   x above hi:         d x^ / d x = 0,  d x^ / d lo = 0,             d x^ / d hi = 1
// Weights keep a float copy (the latent weights) that the optimiser updates; the model's weights are their
// quantized values, refreshed after every optimiser step. Activations are quantized by a ViT linear-input hook that
// records each value's code in the forward and applies the rows above to the input gradient in the backward.
//
// Choices (docs/tasks.md): Adam for everything (torch.optim.Adam's rule, no weight decay), one lr for the latent
// weights and one for the ranges; LSQ's gradient scale g = 1 / sqrt(n Q) is left out, because Adam's update is
// invariant to a constant gradient scale (it would change only eps's weight). The loss is distill.hpp's KD loss
// (tau^2 KL at a temperature); biases, LayerNorms and the embeddings train in float, as in LSQ.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "mint/optim/adam.hpp"
#include "mint/tasks/distill.hpp"
#include "mint/tasks/quantize.hpp"

namespace mint::tasks {

namespace detail {
// One quantized tensor's learned ranges: `groups` equal runs of its values, group g over [lo, hi] =
// (*range).value[2 g], [2 g + 1] (the Param lives in QatViT's map, which the optimiser steps); and the codes of
// the latest quantization (fake_quantize's `code`), which its backward reads.
struct LearnedRanges {
  Param<Cpu>* range = nullptr;  // [groups, 2]
  std::int64_t groups = 1;
  std::vector<float> codes;     // one per value of the latest quantized tensor
};

// Quantizes x (n values) in place with the ranges, recording the codes.
inline void quantize_learned(LearnedRanges& r, float* x, std::int64_t n, int bits) {
  check(n % r.groups == 0, "qat: ", n, " values do not split into ", r.groups, " range groups");
  r.codes.resize(static_cast<std::size_t>(n));
  const std::int64_t per = n / r.groups;
  const float* lh = r.range->value.data();
  for (std::int64_t g = 0; g < r.groups; ++g)
    fake_quantize(x + g * per, per, lh[2 * g], lh[2 * g + 1], bits, r.codes.data() + g * per);
}

// The backward of quantize_learned: adds d loss / d lo and d loss / d hi of every group into range->grad from
// dy = d loss / d x^ (n values), and turns dy into d loss / d x in place (zero where the value was clipped).
inline void quantize_learned_backward(LearnedRanges& r, float* dy, std::int64_t n, int bits) {
  check(static_cast<std::int64_t>(r.codes.size()) == n, "qat: a backward of ", n, " values after a forward of ",
        r.codes.size());
  Param<Cpu>& p = *r.range;
  if (!p.grad.defined()) p.grad = Tensor<Cpu>::zeros(p.value.shape());
  const double inv_q = 1.0 / static_cast<double>((1 << bits) - 1);
  const std::int64_t per = n / r.groups;
  float* g = p.grad.data();
  for (std::int64_t k = 0; k < r.groups; ++k) {
    double dlo = 0.0, dhi = 0.0;
    for (std::int64_t i = k * per; i < (k + 1) * per; ++i) {
      const float c = r.codes[static_cast<std::size_t>(i)];
      if (c == kClippedBelow) {
        dlo += dy[i], dy[i] = 0.0f;
      } else if (c == kClippedAbove) {
        dhi += dy[i], dy[i] = 0.0f;
      } else {
        dlo -= static_cast<double>(dy[i]) * c * inv_q, dhi += static_cast<double>(dy[i]) * c * inv_q;
      }
    }
    g[2 * k] += static_cast<float>(dlo), g[2 * k + 1] += static_cast<float>(dhi);
  }
}

// The activation half: every quantized linear input's learned range, applied by the ViT's linear-input hook.
class LearnedActivationQuantizer : public LinearInputHook<Cpu> {
 public:
  LearnedActivationQuantizer(std::map<SiteKey, LearnedRanges> sites, const QuantConfig& qc)
      : qc_(qc), sites_(std::move(sites)) {}
  void on_linear_input(LinearSite site, int block, Tensor<Cpu>& x) override {
    if (auto* r = find({site, block})) quantize_learned(*r, x.data(), x.numel(), qc_.act_bits);
  }
  void on_linear_input_grad(LinearSite site, int block, Tensor<Cpu>& dx) override {
    if (auto* r = find({site, block})) quantize_learned_backward(*r, dx.data(), dx.numel(), qc_.act_bits);
  }
  [[nodiscard]] const std::map<SiteKey, LearnedRanges>& sites() const { return sites_; }

 private:
  LearnedRanges* find(const SiteKey& k) {
    if (!qc_.quantizes(k)) return nullptr;
    auto it = sites_.find(k);
    check(it != sites_.end(), "qat: no calibrated range for the input of '", site_name(k),
          "' (calibrate on the same architecture first)");
    return &it->second;
  }
  QuantConfig qc_;
  std::map<SiteKey, LearnedRanges> sites_;
};
}  // namespace detail

struct QatOptions {
  std::int64_t epochs = 100;   // PRI Table 3a
  std::int64_t batch = 32;
  optim::AdamOptions weights = {.lr = 1e-3f};  // PRI Table 3a's lr 0.001: the latent weights and float params
  optim::AdamOptions ranges = {.lr = 1e-3f};   // the learned lo and hi
  float temperature = 1.0f;    // of the KD loss (tau^2 KL)
  bool flip = false;           // random horizontal flip of each image at each use (p = 1/2)
  std::uint64_t seed = 0;      // shuffling and flips
};

// A fake-quantized copy of a float ViT whose weights and quantization ranges train (see the header comment).
// Not movable: its model points at its own activation quantizer.
class QatViT {
 public:
  // requires: weight and activation widths in 1..16; `ranges` calibrated on fp's architecture (calibrate,
  //           choose_ranges) with a range for every input qc quantizes (checked at the first forward).
  QatViT(const ViT<>& fp, const QuantConfig& qc, const ActivationRanges& ranges)
      : qc_(qc), model_(detail::copy_of(fp, "QatViT")), act_(activation_sites(ranges), qc) {
    quant_step(0.0f, 1.0f, qc.weight_bits), quant_step(0.0f, 1.0f, qc.act_bits);  // validates both widths
    for (auto& [name, p] : model_.parameters()) {
      latent_[name].value = p.value.clone();
      if (!qc.quantizes(name, p.value)) continue;
      detail::LearnedRanges r;
      r.groups = qc.weights == Granularity::PerChannel ? p.value.dim(0) : 1;
      r.range = &ranges_["weight:" + name];
      r.range->value = Tensor<Cpu>::empty(Shape{r.groups, 2});
      const std::int64_t per = p.value.numel() / r.groups;
      for (std::int64_t g = 0; g < r.groups; ++g) {  // each group's min/max, as fake_quantize_weight
        QuantRange q;
        q.update(p.value.data() + g * per, per);
        r.range->value[2 * g] = q.lo, r.range->value[2 * g + 1] = q.hi;
      }
      weights_.emplace(name, std::move(r));
    }
    model_.set_linear_input_hook(&act_);
    refresh_weights();
  }
  QatViT(QatViT&&) = delete;

  Tensor<Cpu> forward(const Tensor<Cpu>& images, const nn::TokenIndex* keep = nullptr) {
    return model_.forward(images, keep);
  }

  // One Adam step on the batch-mean KD loss from `teacher` (flip: per image, as distill.hpp's): backward, then
  // update. Returns the loss.
  DistillStepStats step(ViT<>& teacher, std::span<const SparseImage> batch, const std::vector<char>* flip,
                        float temperature) {
    const auto st = backward(teacher, batch, flip, temperature);
    update();
    return st;
  }

  // The KD loss's gradient with respect to every latent weight (latent()) and range (range_params()), replacing
  // the previous one: the model's quantized-weight gradients, passed straight through where the latent weight
  // lies inside its range; each range's from the codes of its values (header comment).
  DistillStepStats backward(ViT<>& teacher, std::span<const SparseImage> batch, const std::vector<char>* flip,
                            float temperature) {
    check(!batch.empty(), "QatViT: empty batch");
    model_.zero_grad();
    for (auto& [n, p] : ranges_) p.zero_grad();
    const auto st = detail::kd_backward(teacher, model_, batch, flip, temperature);
    check(std::isfinite(st.loss), "QatViT: the KD loss is ", st.loss, " at step ", steps_, "; lower the lr");
    for (auto& [name, p] : model_.parameters()) {
      if (!p.grad.defined()) continue;
      auto& l = latent_.at(name);
      l.grad = p.grad.clone();
      if (auto it = weights_.find(name); it != weights_.end())
        detail::quantize_learned_backward(it->second, l.grad.data(), l.grad.numel(), qc_.weight_bits);
    }
    return st;
  }

  // One Adam step of the latent weights and of the ranges with the gradients of backward(); the model's weights
  // are requantized.
  void update() {
    weight_opt_.step(latent_);
    range_opt_.step(ranges_);
    for (auto& [n, p] : ranges_) {  // every range stays ordered (hi < lo would make Eq. 5's step negative)
      float* lh = p.value.data();
      for (std::int64_t g = 0; g < p.value.dim(0); ++g)
        if (!(lh[2 * g + 1] >= lh[2 * g])) std::swap(lh[2 * g], lh[2 * g + 1]);
    }
    refresh_weights();
    ++steps_;
  }

  // The latent float weights (timm names) and the ranges ("act:<site>" [1, 2], "weight:<name>" [groups, 2]: lo,
  // hi per group). A caller that edits either calls refresh_weights() before the next forward.
  [[nodiscard]] std::map<std::string, Param<Cpu>>& latent() { return latent_; }
  [[nodiscard]] std::map<std::string, Param<Cpu>>& range_params() { return ranges_; }

  // The learned activation ranges.
  [[nodiscard]] ActivationRanges ranges() const {
    ActivationRanges out;
    for (const auto& [k, r] : act_.sites()) out[k] = QuantRange{r.range->value[0], r.range->value[1]};
    return out;
  }
  [[nodiscard]] ViT<>& model() { return model_; }
  [[nodiscard]] const QuantConfig& config() const { return qc_; }
  [[nodiscard]] std::int64_t steps() const { return steps_; }

  // The optimisers for the following steps (fresh moments).
  void set_options(const QatOptions& o) {
    weight_opt_ = optim::Adam<>(o.weights), range_opt_ = optim::Adam<>(o.ranges);
  }

  // The model's weights := the latent weights, quantized with their current ranges (codes kept for backward).
  void refresh_weights() {
    for (auto& [name, p] : model_.parameters()) {
      const auto& l = latent_.at(name).value;
      std::copy(l.data(), l.data() + l.numel(), p.value.data());  // in place: the model's views stay valid
      if (auto it = weights_.find(name); it != weights_.end())
        detail::quantize_learned(it->second, p.value.data(), p.value.numel(), qc_.weight_bits);
    }
  }

 private:
  std::map<SiteKey, detail::LearnedRanges> activation_sites(const ActivationRanges& init) {
    std::map<SiteKey, detail::LearnedRanges> sites;
    for (const auto& [k, r] : init) {
      if (!qc_.quantizes(k)) continue;
      check(!r.empty(), "QatViT: the calibrated range of '", site_name(k), "' is empty");
      detail::LearnedRanges l;
      l.range = &ranges_["act:" + site_name(k)];
      l.range->value = Tensor<Cpu>::empty(Shape{1, 2});
      l.range->value[0] = r.lo, l.range->value[1] = r.hi;
      sites.emplace(k, std::move(l));
    }
    return sites;
  }
  QuantConfig qc_;
  std::map<std::string, Param<Cpu>> ranges_;  // "act:<site>" [1, 2] and "weight:<name>" [groups, 2]: lo, hi
  ViT<> model_;
  detail::LearnedActivationQuantizer act_;
  std::map<std::string, Param<Cpu>> latent_;
  std::map<std::string, detail::LearnedRanges> weights_;
  optim::Adam<> weight_opt_{QatOptions{}.weights}, range_opt_{QatOptions{}.ranges};
  std::int64_t steps_ = 0;
};

namespace detail {
inline constexpr std::uint32_t kQatFlipStream = 0x0a75'f11bu;
}

// PRI Table 3a's protocol on `q` (a QatViT built from the float teacher and its post-training ranges):
// `opt.epochs` passes over `data`, each shuffled (Philox, opt.seed), in steps of opt.batch images, the last of an
// epoch possibly smaller. on_step (optional) after every step.
inline DistillLog quantization_aware_training(ViT<>& teacher, QatViT& q, std::span<const SparseImage> data,
                                              const QatOptions& opt, const StepCallback& on_step = {}) {
  check(!data.empty() && opt.epochs >= 0 && opt.batch > 0, "quantization_aware_training: need images, epochs >= 0, ",
        "batch > 0 (got ", data.size(), ", ", opt.epochs, ", ", opt.batch, ")");
  detail::check_distill_pair(teacher, q.model(), DistillOptions{.temperature = opt.temperature},
                             "quantization_aware_training");
  q.set_options(opt);
  std::vector<char> flips;
  std::uint64_t draws = 0;
  return detail::shuffled_epochs(data, opt.epochs, opt.batch, opt.seed, 1u << 21, [&](std::span<const SparseImage> b) {
    flips.assign(b.size(), 0);
    if (opt.flip)
      for (auto& f : flips) f = philox_uniform(opt.seed, detail::kQatFlipStream, draws++) < 0.5f;
    const auto st = q.step(teacher, b, opt.flip ? &flips : nullptr, opt.temperature);
    if (on_step) on_step(q.steps() - 1, st);
    return st;
  });
}

}  // namespace mint::tasks
