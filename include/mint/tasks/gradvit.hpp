// mint/tasks/gradvit.hpp -- gradient inversion of a ViT (GradViT, Hatamizadeh et al. 2022; docs/gradvit.md):
// recover a hidden training batch x* from the parameter gradients G* = dL(x*, y*)/dW that a client shares.
//
//   GradientMatch   the matching loss over a candidate batch x^ (Eq. 3, L2, or the total-cosine form of
//                   Inverting Gradients) and its gradient d loss / d x^. That gradient needs a mixed second
//                   derivative d/dx^ <dL/dW, R>; mint has no double backward, so it is a Hessian-vector product
//                   by central differences over the ordinary backward: perturb the weights along R and take
//                   input gradients (two extra forward + input-only backward passes).
//   parameter_gradients   what a client shares: G = dL(x, y)/dW for the batch-mean cross-entropy.
//   recover_labels_eq2 / labels_from_bias_sign   label recovery from the classification head's gradient (Eq. 2).
//   attack          a minimal attack loop: Adam on x^ with the matching loss and TV (no image prior, no
//                   schedule, no patch prior yet: see docs/gradvit.md "What remains").
//
// Layering: this is a task. It needs the whole model (weights it can perturb, Full backward), which is more than
// the Inverter's Objective concept (logits -> d_logits) offers, so it has its own loop and leaves the Inverter
// untouched.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "mint/autodiff/backward.hpp"
#include "mint/backend/functors.hpp"
#include "mint/core/error.hpp"
#include "mint/core/rng.hpp"
#include "mint/core/tensor.hpp"
#include "mint/nn/image_priors.hpp"
#include "mint/nn/losses.hpp"

namespace mint::tasks::gradvit {

using GradMap = std::map<std::string, Tensor<Cpu>>;

// A model whose weights can be read, perturbed and differentiated: forward, backward in both modes, the named
// parameters (ViT<Cpu> is one).
template <class M>
concept WhiteBoxModel = requires(M m, const Tensor<Cpu>& x, const Tensor<Cpu>& g) {
  { m.forward(x) } -> std::same_as<Tensor<Cpu>>;
  { m.backward(g, Backward::Full) } -> std::same_as<Tensor<Cpu>>;
  { m.parameters() } -> std::convertible_to<std::map<std::string, Param<Cpu>>&>;
  m.zero_grad();
};

// ---------------------------------------------------------------------------------------------------------------
// Which parameters are matched (the leakage studies of Sec. 6.4 match subsets).
// ---------------------------------------------------------------------------------------------------------------

using ParamFilter = std::function<bool(const std::string& name)>;

namespace detail {
inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
// The block number of a "blocks.<i>." name, or -1.
inline int block_of(const std::string& name) {
  if (name.rfind("blocks.", 0) != 0) return -1;
  std::size_t i = 7;
  int v = 0;
  bool any = false;
  while (i < name.size() && name[i] >= '0' && name[i] <= '9') v = v * 10 + (name[i++] - '0'), any = true;
  return any ? v : -1;
}
}  // namespace detail

inline ParamFilter all_parameters() {
  return [](const std::string&) { return true; };
}
// The multi-head self-attention of every block: qkv and proj (weights and biases); Sec. 6.4.2 "MSA".
inline ParamFilter attention_parameters() {
  return [](const std::string& n) { return detail::contains(n, ".attn."); };
}
// The MLP of every block: fc1 and fc2; Sec. 6.4.2 "MLP".
inline ParamFilter mlp_parameters() {
  return [](const std::string& n) { return detail::contains(n, ".mlp."); };
}
// Every parameter of blocks first..last (inclusive, 0-based); Sec. 6.4.1 matches the complement of a range.
inline ParamFilter block_parameters(int first, int last) {
  return [=](const std::string& n) {
    const int b = detail::block_of(n);
    return b >= first && b <= last;
  };
}
inline ParamFilter except(ParamFilter f) {
  return [f = std::move(f)](const std::string& n) { return !f(n); };
}

// ---------------------------------------------------------------------------------------------------------------
// What a client shares
// ---------------------------------------------------------------------------------------------------------------

// requires: images fit the model; labels.size() == B, each in range.
// ensures:  returns dL/dW for L = mean_b CE(model(images)_b, labels_b) (torch's default reduction), every
//           parameter, by name (copies). The model's Param::grad buffers are overwritten (zeroed first).
template <WhiteBoxModel M>
GradMap parameter_gradients(M& model, const Tensor<Cpu>& images, const std::vector<int>& labels) {
  auto logits = model.forward(images);
  auto dlogits = Tensor<Cpu>::zeros(logits.shape());
  nn::cross_entropy(logits, labels, &dlogits);
  model.zero_grad();
  model.backward(dlogits, Backward::Full);
  GradMap g;
  for (auto& [name, p] : model.parameters()) g[name] = p.grad.clone();
  return g;
}

// ---------------------------------------------------------------------------------------------------------------
// The matching loss and its input gradient
// ---------------------------------------------------------------------------------------------------------------

enum class MatchDistance {
  L2,      // Eq. 3: sum over matched tensors l of ||G_l - G*_l||^2 (a plain sum of squares, no normalisation)
  Cosine,  // 1 - <G, G*> / (||G|| ||G*||) over the concatenation of all matched tensors (Inverting Gradients'
           // total cosine, not a per-layer sum)
};

struct GradientMatchOptions {
  MatchDistance distance = MatchDistance::L2;
  ParamFilter filter = {};  // empty = every parameter
  float weight = 1.0f;      // the loss and its gradient are multiplied by this (alpha_grad of Eq. 5)
  // The central-difference step along the residual R is eps = rel_step * ||W_m|| / ||R||, so the weights move by
  // rel_step of their norm (W_m: the matched parameters). Truncation error is O(rel_step^2) (measured: 2e-2 of
  // max|d/dx| at 1e-3, 2e-4 at 1e-4), float32 rounding O(u / rel_step) (3e-3 at 1e-6); 1e-4 was within 2x of the
  // best on the torch double-backward fixture (docs/gradvit.md).
  double rel_step = 1e-4;
};

struct MatchValue {
  double loss = 0.0;         // weight * distance
  double distance = 0.0;     // unweighted
  double step = 0.0;         // the eps used (0 when no gradient was asked or R = 0)
};

class GradientMatch {
 public:
  // target: G* by parameter name (at least every matched name); labels: y^ used to compute G(x^) (recovered
  // ones in an attack). Throws if the filter matches nothing present in target.
  GradientMatch(GradMap target, std::vector<int> labels, GradientMatchOptions opt = {})
      : target_(std::move(target)), labels_(std::move(labels)), opt_(std::move(opt)) {
    check(opt_.rel_step > 0.0 && std::isfinite(opt_.rel_step), "GradientMatch: rel_step must be > 0, got ", opt_.rel_step);
    for (const auto& [name, t] : target_)
      if (!opt_.filter || opt_.filter(name)) names_.push_back(name);
    check(!names_.empty(), "GradientMatch: the parameter filter matches none of the ", target_.size(), " target tensors");
    target_norm2_ = 0.0;
    for (const auto& n : names_) target_norm2_ += sumsq(target_.at(n));
  }

  [[nodiscard]] const std::vector<std::string>& matched() const { return names_; }
  [[nodiscard]] const std::vector<int>& labels() const { return labels_; }
  [[nodiscard]] const GradientMatchOptions& options() const { return opt_; }

  // requires: x fits the model; the model holds the weights G* was computed at.
  // ensures:  returns the loss at x; if d_x is given (shape of x), ADDS weight * d distance / d x to it.
  //           The parameter values are restored bit for bit; Param::grad buffers are overwritten (clobbered).
  //           Cost: one forward + Full backward, and with d_x two more forward + input-only backward passes.
  template <WhiteBoxModel M>
  MatchValue evaluate(M& model, const Tensor<Cpu>& x, Tensor<Cpu>* d_x = nullptr) const {
    auto& params = model.parameters();
    if (d_x) check_shape(*d_x, x.shape(), "GradientMatch: d_x");
    // 1. G(x) and the distance
    {
      auto logits = model.forward(x);
      auto dlogits = Tensor<Cpu>::zeros(logits.shape());
      nn::cross_entropy(logits, labels_, &dlogits);
      model.zero_grad();
      model.backward(dlogits, Backward::Full);
    }
    std::vector<const Tensor<Cpu>*> g;
    for (const auto& n : names_) {
      auto it = params.find(n);
      check(it != params.end(), "GradientMatch: the model has no parameter '", n, "'");
      check_shape(target_.at(n), it->second.value.shape(), ("GradientMatch: target '" + n + "'").c_str());
      g.push_back(&it->second.grad);
    }
    double gg = 0.0, gt = 0.0, dd = 0.0;
    for (std::size_t k = 0; k < names_.size(); ++k) {
      const auto& a = *g[k];
      const auto& t = target_.at(names_[k]);
      for (std::int64_t i = 0; i < a.numel(); ++i) {
        const double u = a[i], v = t[i];
        gg += u * u;
        gt += u * v;
        dd += (u - v) * (u - v);
      }
    }
    MatchValue out;
    const double gn = std::sqrt(gg), tn = std::sqrt(target_norm2_);
    if (opt_.distance == MatchDistance::L2) {
      out.distance = dd;
    } else {
      check(gn > 0.0 && tn > 0.0, "GradientMatch: cosine distance of a zero gradient (||G|| = ", gn, ", ||G*|| = ", tn, ")");
      out.distance = 1.0 - gt / (gn * tn);
    }
    out.loss = opt_.weight * out.distance;
    if (!d_x) return out;

    // 2. R = d distance / d G (per matched tensor), in double then float
    std::vector<Tensor<Cpu>> r;
    double rr = 0.0, ww = 0.0;
    for (std::size_t k = 0; k < names_.size(); ++k) {
      const auto& a = *g[k];
      const auto& t = target_.at(names_[k]);
      auto rk = Tensor<Cpu>::empty(a.shape());
      for (std::int64_t i = 0; i < a.numel(); ++i) {
        const double u = a[i], v = t[i];
        const double d = opt_.distance == MatchDistance::L2 ? 2.0 * (u - v)
                                                            : -v / (gn * tn) + gt * u / (gn * gn * gn * tn);
        rk[i] = static_cast<float>(d);
        rr += d * d;
      }
      ww += sumsq(params.at(names_[k]).value);
      r.push_back(std::move(rk));
    }
    if (rr == 0.0) return out;  // at a stationary point of the distance: the gradient is exactly 0
    const double eps = opt_.rel_step * std::sqrt(std::max(ww, 1e-30)) / std::sqrt(rr);
    out.step = eps;

    // 3. d/dx <G(x; W), R> ~ [grad_x L(x; W + eps R) - grad_x L(x; W - eps R)] / (2 eps)
    std::vector<Tensor<Cpu>> saved;
    for (const auto& n : names_) saved.push_back(params.at(n).value.clone());
    auto input_grad_at = [&](double s) {
      for (std::size_t k = 0; k < names_.size(); ++k) {
        auto& w = params.at(names_[k]).value;  // in place: views of the parameter (e.g. reshapes) must see it
        const auto& w0 = saved[k];
        const auto& rk = r[k];
        for (std::int64_t i = 0; i < w.numel(); ++i) w[i] = static_cast<float>(w0[i] + s * eps * rk[i]);
      }
      auto logits = model.forward(x);
      auto dlogits = Tensor<Cpu>::zeros(logits.shape());
      nn::cross_entropy(logits, labels_, &dlogits);
      return model.backward(dlogits, Backward::InputOnly);
    };
    Tensor<Cpu> gp, gm;
    try {
      gp = input_grad_at(+1.0);
      gm = input_grad_at(-1.0);
    } catch (...) {
      restore(params, saved);
      throw;
    }
    restore(params, saved);
    const double scale = opt_.weight / (2.0 * eps);
    for (std::int64_t i = 0; i < x.numel(); ++i)
      (*d_x)[i] += static_cast<float>(scale * (static_cast<double>(gp[i]) - static_cast<double>(gm[i])));
    return out;
  }

 private:
  static double sumsq(const Tensor<Cpu>& t) {
    double s = 0.0;
    for (std::int64_t i = 0; i < t.numel(); ++i) s += static_cast<double>(t[i]) * t[i];
    return s;
  }
  void restore(std::map<std::string, Param<Cpu>>& params, const std::vector<Tensor<Cpu>>& saved) const {
    for (std::size_t k = 0; k < names_.size(); ++k) {
      auto& w = params.at(names_[k]).value;
      std::copy(saved[k].data(), saved[k].data() + w.numel(), w.data());
    }
  }

  GradMap target_;
  std::vector<int> labels_;
  GradientMatchOptions opt_;
  std::vector<std::string> names_;
  double target_norm2_ = 0.0;
};

// ---------------------------------------------------------------------------------------------------------------
// Label recovery (Sec. 3.1, Eq. 2)
// ---------------------------------------------------------------------------------------------------------------

// Eq. 2 literally: y^ = argsort_i( min_j dL/dW_head[i, j] )[:n] -- the n classes whose head-weight-gradient
// row has the most negative entry, most negative first. It returns n DISTINCT classes; with repeated labels in
// the batch it cannot return a class twice (see docs/gradvit.md).
// requires: head_weight_grad [classes, D], 1 <= n <= classes.
inline std::vector<int> recover_labels_eq2(const Tensor<Cpu>& head_weight_grad, int n) {
  check_rank(head_weight_grad, 2, "recover_labels_eq2: head weight gradient");
  const std::int64_t c = head_weight_grad.dim(0), d = head_weight_grad.dim(1);
  check(n >= 1 && n <= c, "recover_labels_eq2: n = ", n, " outside 1..", c);
  std::vector<double> score(static_cast<std::size_t>(c));
  for (std::int64_t i = 0; i < c; ++i)
    score[static_cast<std::size_t>(i)] = *std::min_element(head_weight_grad.data() + i * d, head_weight_grad.data() + (i + 1) * d);
  std::vector<int> order(static_cast<std::size_t>(c));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return score[static_cast<std::size_t>(a)] < score[static_cast<std::size_t>(b)]; });
  order.resize(static_cast<std::size_t>(n));
  return order;
}

// The classes whose head-bias gradient is negative, most negative first. For batch-mean cross-entropy
// dL/db_c = (sum_b p_bc - n_c) / B, with n_c the number of images labelled c: an absent class has n_c = 0 and a
// positive gradient, so every class returned IS in the batch (no false positives, exact). A present class is
// missed only when the batch's softmax mass on it, sum_b p_bc, reaches its count n_c. Counts are not recovered.
// requires: head_bias_grad [classes].
inline std::vector<int> labels_from_bias_sign(const Tensor<Cpu>& head_bias_grad) {
  check_rank(head_bias_grad, 1, "labels_from_bias_sign: head bias gradient");
  std::vector<int> out;
  for (std::int64_t i = 0; i < head_bias_grad.numel(); ++i)
    if (head_bias_grad[i] < 0.0f) out.push_back(static_cast<int>(i));
  std::stable_sort(out.begin(), out.end(), [&](int a, int b) { return head_bias_grad[a] < head_bias_grad[b]; });
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// A minimal attack loop and PSNR
// ---------------------------------------------------------------------------------------------------------------

struct AttackOptions {
  int iterations = 1000;
  float lr = 0.1f;              // Adam, the paper's initial rate, decayed by a cosine to 0 when cosine_lr
  bool cosine_lr = true;
  float beta1 = 0.9f, beta2 = 0.999f, adam_eps = 1e-8f;
  float tv = 1e-4f;             // weight of SMI-Eq.-2 TV (batch mean), the paper's alpha_3-style R_TV (Eq. 11)
  std::uint64_t seed = 0;       // Gaussian init of x^
  float init_std = 1.0f;
  float pixel_lo = -1e30f, pixel_hi = 1e30f;  // valid range of x^ (normalised space), clipped after every step
};

struct AttackResult {
  Tensor<Cpu> images;            // the reconstruction x^
  std::vector<double> loss;      // matching loss (weighted) + TV per iteration
};

// Minimises match(x^) + tv * TV(x^) over x^ with Adam, from seeded Gaussian noise of `shape`.
// `on_iteration(t, loss, x^)` (optional) is called after every step.
template <WhiteBoxModel M>
AttackResult attack(M& model, const GradientMatch& match, const Shape& shape, const AttackOptions& opt = {},
                    const std::function<void(int, double, const Tensor<Cpu>&)>& on_iteration = {}) {
  check(opt.iterations >= 1, "gradvit::attack: iterations must be >= 1, got ", opt.iterations);
  check(shape.rank() == 4 && shape[0] == static_cast<std::int64_t>(match.labels().size()), "gradvit::attack: shape ",
        shape.str(), " does not hold one image per label (", match.labels().size(), ")");
  AttackResult res;
  res.images = Tensor<Cpu>::empty(shape);
  auto& x = res.images;
  fill_normal(x, opt.seed, 0, 0.0f, opt.init_std);
  for (std::int64_t i = 0; i < x.numel(); ++i) x[i] = std::clamp(x[i], opt.pixel_lo, opt.pixel_hi);
  auto m = Tensor<Cpu>::zeros(shape), v = Tensor<Cpu>::zeros(shape), g = Tensor<Cpu>::zeros(shape);
  const double pi = 3.14159265358979323846;
  for (int t = 1; t <= opt.iterations; ++t) {
    g.fill(0.0f);
    double loss = match.evaluate(model, x, &g).loss;
    if (opt.tv > 0.0f) loss += nn::total_variation(x, opt.tv, &g);
    check(std::isfinite(loss), "gradvit::attack: the loss became ", loss, " at iteration ", t);
    const float lr = opt.cosine_lr ? static_cast<float>(0.5 * opt.lr * (1.0 + std::cos(pi * (t - 1) / opt.iterations))) : opt.lr;
    const fn::AdamStep step{lr, opt.beta1, opt.beta2, opt.adam_eps, 1.0f - static_cast<float>(std::pow(opt.beta1, t)),
                            1.0f - static_cast<float>(std::pow(opt.beta2, t))};
    for (std::int64_t i = 0; i < x.numel(); ++i) {
      step(x[i], g[i], m[i], v[i]);
      x[i] = std::clamp(x[i], opt.pixel_lo, opt.pixel_hi);
    }
    res.loss.push_back(loss);
    if (on_iteration) on_iteration(t, loss, x);
  }
  return res;
}

}  // namespace mint::tasks::gradvit
