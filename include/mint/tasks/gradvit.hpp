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
//   LossSchedule    Gamma(t), Upsilon(t) of Eq. 5-6: the weights of the matching loss and the image prior.
//   align / consensus / registration_pull   registration across seeds (Eq. 9-10) with a simple alignment
//                   (integer shift + horizontal flip maximising correlation) in place of RANSAC-flow.
//   attack          Adam on x^ (one or several seeds) with the matching loss under the schedule, the CNN BN
//                   image prior (Eq. 4), the patch prior (Eq. 8), L2 + TV (Eq. 11) and registration (Eq. 10);
//                   attack_objective is that loss (and its gradient) for one seed at one iteration.
//                   With a subspace prior (mint/tasks/image_subspace.hpp) Adam runs on each image's PCA
//                   coordinates instead of its pixels.
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
#include "mint/inversion/bn_prior.hpp"
#include "mint/inversion/inverter.hpp"
#include "mint/inversion/pixel_optimizer.hpp"
#include "mint/io/safetensors.hpp"
#include "mint/nn/elementwise.hpp"
#include "mint/nn/image_priors.hpp"
#include "mint/nn/losses.hpp"
#include "mint/tasks/image_subspace.hpp"

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
  // The mean over matched tensors l of 1 - <G_l, G*_l> / (||G_l|| ||G*_l||), tensors with G*_l = 0 left out: every
  // tensor weighs the same, so the patch and position embeddings (the only tensors whose gradients are linear in
  // the pixels) count as much as the head, which dominates the total cosine of a trained model. mint's variant,
  // not a form printed by GradViT or Inverting Gradients (docs/gradvit.md, issue 19's levers).
  LayerCosine,
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
    // per tensor: ||G_l||^2, <G_l, G*_l>, ||G*_l||^2 (LayerCosine)
    std::vector<double> lg(names_.size()), lgt(names_.size()), lt(names_.size());
    for (std::size_t k = 0; k < names_.size(); ++k) {
      const auto& a = *g[k];
      const auto& t = target_.at(names_[k]);
      for (std::int64_t i = 0; i < a.numel(); ++i) {
        const double u = a[i], v = t[i];
        lg[k] += u * u;
        lgt[k] += u * v;
        lt[k] += v * v;
        dd += (u - v) * (u - v);
      }
      gg += lg[k];
      gt += lgt[k];
    }
    MatchValue out;
    const double gn = std::sqrt(gg), tn = std::sqrt(target_norm2_);
    std::size_t layers = 0;  // LayerCosine: the tensors with G*_l != 0
    if (opt_.distance == MatchDistance::L2) {
      out.distance = dd;
    } else if (opt_.distance == MatchDistance::Cosine) {
      check(gn > 0.0 && tn > 0.0, "GradientMatch: cosine distance of a zero gradient (||G|| = ", gn, ", ||G*|| = ", tn, ")");
      out.distance = 1.0 - gt / (gn * tn);
    } else {
      for (std::size_t k = 0; k < names_.size(); ++k)
        if (lt[k] > 0.0) {
          ++layers;
          // a zero G_l has no direction: distance 1 (the cosine's mean value), and no gradient through it below
          out.distance += lg[k] > 0.0 ? 1.0 - lgt[k] / std::sqrt(lg[k] * lt[k]) : 1.0;
        }
      check(layers > 0, "GradientMatch: layer-wise cosine with every matched target tensor zero");
      out.distance /= static_cast<double>(layers);
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
      // LayerCosine: d (1 - cos_l) / L with cos_l's own norms (zero for a left-out or zero tensor)
      const bool in_layer = lt[k] > 0.0 && lg[k] > 0.0;
      const double ln = std::sqrt(lg[k]), ltn = std::sqrt(lt[k]);
      const double per = layers > 0 ? 1.0 / static_cast<double>(layers) : 0.0;
      for (std::int64_t i = 0; i < a.numel(); ++i) {
        const double u = a[i], v = t[i];
        double d = 0.0;
        if (opt_.distance == MatchDistance::L2)
          d = 2.0 * (u - v);
        else if (opt_.distance == MatchDistance::Cosine)
          d = -v / (gn * tn) + gt * u / (gn * gn * gn * tn);
        else if (in_layer)
          d = per * (-v / (ln * ltn) + lgt[k] * u / (ln * ln * ln * ltn));
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
// Loss schedule (Sec. 3.3, Eq. 5-6)
// ---------------------------------------------------------------------------------------------------------------

// Gamma(t) = alpha_grad for 0 < t <= T/2, alpha_grad / 2 for T/2 < t <= T (Eq. 5);
// Upsilon(t) = 0 for 0 < t <= T/2, alpha_image for T/2 < t <= T (Eq. 6); t = 1..T. With enabled = false both
// are constant (alpha_grad, alpha_image): the "without scheduler" rows of the ablation (Table 2).
struct LossSchedule {
  bool enabled = false;
  float alpha_grad = 1.0f;
  float alpha_image = 0.0f;
  [[nodiscard]] float gamma(int t, int total) const {
    check_t(t, total);
    return (!enabled || 2 * static_cast<std::int64_t>(t) <= total) ? alpha_grad : 0.5f * alpha_grad;
  }
  [[nodiscard]] float upsilon(int t, int total) const {
    check_t(t, total);
    return (!enabled || 2 * static_cast<std::int64_t>(t) > total) ? alpha_image : 0.0f;
  }

 private:
  static void check_t(int t, int total) {
    check(total >= 1 && t >= 1 && t <= total, "LossSchedule: iteration ", t, " outside 1..", total);
  }
};

// ---------------------------------------------------------------------------------------------------------------
// Registration across seeds (Sec. 3.4.2, Eq. 9-10)
// ---------------------------------------------------------------------------------------------------------------

// A rigid, integer alignment: out(y, x) = in(y - dy, s) with s = x - dx, or W - 1 - (x - dx) when flipped
// (shift, then mirror); zero where y - dy or x - dx falls outside the image.
struct Alignment {
  int dy = 0, dx = 0;
  bool flip = false;
  double correlation = 0.0;  // Pearson correlation of the aligned source with the target
};

// Writes image b of src aligned by a into image b of dst ([B, C, H, W]).
inline void apply_alignment(const Alignment& a, const Tensor<Cpu>& src, Tensor<Cpu>& dst, std::int64_t b) {
  const std::int64_t c = src.dim(1), h = src.dim(2), w = src.dim(3);
  for (std::int64_t ch = 0; ch < c; ++ch)
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int64_t x = 0; x < w; ++x) {
        const std::int64_t sy = y - a.dy, sx0 = x - a.dx, sx = a.flip ? w - 1 - sx0 : sx0;
        const std::int64_t o = ((b * c + ch) * h + y) * w + x;
        dst[o] = (sy >= 0 && sy < h && sx0 >= 0 && sx0 < w) ? src[((b * c + ch) * h + sy) * w + sx] : 0.0f;
      }
}

// The alignment of image b of src to image b of target that maximises the Pearson correlation over the
// integer shifts |dy|, |dx| <= max_shift and (if flips) a horizontal flip. Ties keep the identity first.
// This is mint's stand-in for RANSAC-flow (docs/gradvit.md).
inline Alignment best_alignment(const Tensor<Cpu>& src, const Tensor<Cpu>& target, std::int64_t b, int max_shift, bool flips) {
  check(src.rank() == 4 && src.shape() == target.shape(), "best_alignment: shapes ", src.shape().str(), " and ",
        target.shape().str(), " differ or are not [B, C, H, W]");
  check(max_shift >= 0, "best_alignment: max_shift must be >= 0, got ", max_shift);
  const std::int64_t per = src.numel() / src.dim(0);
  auto one = Tensor<Cpu>::empty(src.shape());
  auto corr = [&](const float* p, const float* q) {
    double sp = 0, sq = 0, pp = 0, qq = 0, pq = 0;
    for (std::int64_t k = 0; k < per; ++k) sp += p[k], sq += q[k], pp += double(p[k]) * p[k], qq += double(q[k]) * q[k], pq += double(p[k]) * q[k];
    const double n = static_cast<double>(per), vp = pp - sp * sp / n, vq = qq - sq * sq / n;
    return (vp > 0 && vq > 0) ? (pq - sp * sq / n) / std::sqrt(vp * vq) : 0.0;
  };
  Alignment best{0, 0, false, -2.0};
  for (int f = 0; f <= (flips ? 1 : 0); ++f)
    for (int r = 0; r <= max_shift; ++r)  // rings of growing shift, so smaller moves win ties
      for (int dy = -r; dy <= r; ++dy)
        for (int dx = -r; dx <= r; ++dx) {
          if (std::max(std::abs(dy), std::abs(dx)) != r) continue;
          Alignment a{dy, dx, f == 1, 0.0};
          apply_alignment(a, src, one, b);
          a.correlation = corr(one.data() + b * per, target.data() + b * per);
          if (a.correlation > best.correlation) best = a;
        }
  return best;
}

// Eq. 9: x_m = mean_s x_s (pixel-wise); each x_s is aligned to x_m image by image (best_alignment); the
// consensus x_C is the mean of the aligned solutions. Image b of every seed is taken to be the same image
// (slot b carries label y^_b in every seed).
// requires: seeds non-empty, all of one shape [B, C, H, W].
inline Tensor<Cpu> consensus(const std::vector<Tensor<Cpu>>& seeds, int max_shift = 2, bool flips = true,
                             std::vector<Alignment>* alignments = nullptr) {
  check(!seeds.empty(), "gradvit::consensus: no seeds");
  const auto& shape = seeds[0].shape();
  check(shape.rank() == 4, "gradvit::consensus: seeds must be [B, C, H, W], got ", shape.str());
  for (const auto& x : seeds) check(x.shape() == shape, "gradvit::consensus: seed shapes differ: ", x.shape().str(), " vs ", shape.str());
  const double inv = 1.0 / static_cast<double>(seeds.size());
  auto mean = Tensor<Cpu>::zeros(shape);
  for (const auto& x : seeds)
    for (std::int64_t i = 0; i < x.numel(); ++i) mean[i] += static_cast<float>(inv * x[i]);
  auto out = Tensor<Cpu>::zeros(shape);
  auto aligned = Tensor<Cpu>::empty(shape);
  if (alignments) alignments->clear();
  const std::int64_t per = mean.numel() / shape[0];
  for (const auto& x : seeds)
    for (std::int64_t b = 0; b < shape[0]; ++b) {
      const auto a = best_alignment(x, mean, b, max_shift, flips);
      if (alignments) alignments->push_back(a);
      apply_alignment(a, x, aligned, b);
      for (std::int64_t k = b * per; k < (b + 1) * per; ++k) out[k] += static_cast<float>(inv * aligned[k]);
    }
  return out;
}

// Eq. 10: R_reg(x) = weight * mean_b ||x_b - x_C,b||^2 (batch mean, as the other priors); d_x += its gradient.
inline float registration_pull(const Tensor<Cpu>& x, const Tensor<Cpu>& target, float weight, Tensor<Cpu>* d_x = nullptr) {
  check(x.rank() == 4 && x.shape() == target.shape(), "registration_pull: x ", x.shape().str(), " and consensus ",
        target.shape().str(), " differ or are not [B, C, H, W]");
  if (d_x) check_shape(*d_x, x.shape(), "registration_pull: d_x");
  return static_cast<float>(nn::squared_error(x, target, weight / static_cast<double>(x.dim(0)), d_x));
}

// ---------------------------------------------------------------------------------------------------------------
// The attack loop
// ---------------------------------------------------------------------------------------------------------------

struct AttackOptions {
  int iterations = 1000;
  float lr = 0.1f;              // Adam, the paper's initial rate, decayed by a cosine to 0 when cosine_lr
  bool cosine_lr = true;
  float beta1 = 0.9f, beta2 = 0.999f, adam_eps = 1e-8f;
  float tv = 1e-4f;             // weight of SMI-Eq.-2 TV (batch mean): R_TV of Eq. 11 (alpha_3)
  float l2 = 0.0f;              // weight of the L2 prior (nn::l2_prior, batch mean of ||x||^2): R_l2 of Eq. 11
  float patch = 0.0f;           // alpha_1 of Eq. 7: weight of the patch prior (Eq. 8, nn::patch_prior)
  int patch_size = 0;           // its patch size (required when patch > 0)
  // Gamma(t) multiplies the matching loss (on top of GradientMatch's own weight), Upsilon(t) the BN prior's
  // weight. The default (disabled, alpha_grad 1, alpha_image 0) is no schedule and no image prior.
  LossSchedule schedule = {};
  // The CNN BN-statistics image prior (Eq. 4): its model (nullptr = none), run in eval mode on x^ every
  // iteration where Upsilon(t) > 0; its `weight` is multiplied by Upsilon(t).
  BNPrior image_prior = {nullptr, 1.0f, 1.0f};
  // Registration (Eq. 9-10): `seeds` independent x^ optimised side by side (seed, seed + 1, ...); every
  // register_every iterations the consensus x_C of all of them is recomputed (consensus()), and each is pulled
  // to it with weight `registration` (alpha_2; 0 or seeds == 1: no registration).
  int seeds = 1;
  float registration = 0.0f;
  int register_every = 50;
  float register_from = 0.0f;   // the pull (and consensus updates) run for t > register_from * T (0: from t = 1)
  int align_shift = 2;          // the alignment searches |dy|, |dx| <= align_shift pixels
  bool align_flip = true;       // ... and a horizontal flip
  // Signed gradients (Inverting Gradients, Geiping et al. 2020; breaching's optim.signed = "hard"): Adam is fed
  // sign(d loss / d x^) instead of the gradient itself.
  bool signed_gradient = false;
  std::uint64_t seed = 0;       // Gaussian init of x^ (seed s uses seed + s)
  float init_std = 1.0f;
  // Every seed starts from these images (clipped) instead of noise when set (shape of the batch; must outlive the
  // attack): the constant mean image, or the hidden batch itself as an oracle that shows where the objective's own
  // minimiser lies near x* (a diagnostic, not an attack).
  const Tensor<Cpu>* start = nullptr;
  // With `start`: seed s starts at start + N(0, start_std^2) in the optimised variable (the pixels, or the subspace
  // coordinates), Philox stream (seed + s, 0), so that several seeds around one start differ; 0: every seed at
  // `start` exactly.
  float start_std = 0.0f;
  float pixel_lo = -1e30f, pixel_hi = 1e30f;  // valid range of x^ (normalised space), clipped after every step
  // A second matching term added with the same Gamma(t) (nullptr = none), e.g. APRIL's position-embedding cosine
  // (april::position_embedding_match); it must outlive the attack.
  const GradientMatch* extra_match = nullptr;
  // The subspace (linear generative) prior (nullptr = none; it must outlive the attack): every image is
  // clip(mean + w B) of an ImageSubspace fitted on public images (mint/tasks/image_subspace.hpp), and Adam runs on
  // the k coordinates w of each image instead of its pixels. The noise start draws w ~ N(0, init_std^2), a `start`
  // is projected onto the subspace, and the state and its moments are the coordinates'.
  const ImageSubspace* subspace = nullptr;

  // The pixel side of the attack as the inversion engine's options (what PixelOptimizer is built from: Adam's
  // rate, betas and eps, the seed, the iterations, the clip range). AttackOptions keeps its own fields, rather than
  // deriving from InversionOptions, so that `AttackOptions{.iterations = ..., .tv = ...}` (designated
  // initialisers, which cannot name a base's members) keeps working; this is the one place they map across.
  [[nodiscard]] InversionOptions inversion_options() const {
    InversionOptions o;
    o.iterations = iterations;
    o.lr = lr;
    o.beta1 = beta1, o.beta2 = beta2, o.eps = adam_eps;
    o.seed = seed;
    o.pixel_lo = pixel_lo, o.pixel_hi = pixel_hi;
    o.step_whole_canvas = true;  // GradViT optimises every pixel
    return o;
  }
};

// The attack after iteration t of opt.iterations: everything a resumed run needs to continue bit for bit (every
// seed's images and Adam moments, the consensus x_C as last computed, the loss of every iteration so far). The
// model, the target gradient and the options are not part of it: the caller checks they are the same
// (save_attack_state's fingerprint).
struct AttackState {
  int t = 0;
  std::vector<Tensor<Cpu>> x = {}, m = {}, v = {};  // one per seed (with a subspace prior: its coordinates)
  Tensor<Cpu> consensus = {};                        // empty until the first registration
  std::vector<double> loss = {};                     // loss[i]: iteration i + 1
};

// Saving and resuming an attack (attack's last argument). every > 0: `save(state)` after every every-th
// iteration before the last (t = every, 2 every, ... < T); resume (not null): continue after resume->t.
struct AttackCheckpoint {
  int every = 0;
  std::function<void(const AttackState&)> save = {};
  const AttackState* resume = nullptr;
};

struct AttackResult {
  Tensor<Cpu> images;             // the reconstruction x^: the seed with the least final matching distance
  Tensor<Cpu> consensus;          // the final consensus x_C of all seeds (Eq. 9; with one seed, x^ itself)
  std::vector<double> loss;       // total loss per iteration (mean over seeds)
  std::vector<double> distance;   // final unweighted matching distance of each seed
  int best_seed = 0;
};

// One seed's objective at iteration t of opt.iterations (what attack minimises, without the checks attack makes
// on opt): Gamma(t) match(x) + tv R_TV(x) + l2 R_l2(x) + patch R_patch(x) + Upsilon(t) R_image(x)
// + registration R_reg(x, x_C), the last only when consensus_x (x_C) is given; with opt.extra_match,
// + Gamma(t) extra(x) as well.
// ensures: returns the value; if d_x is given (shape of x) it is OVERWRITTEN with the gradient. The ViT's
//          Param::grad buffers are clobbered; with Upsilon(t) > 0 the image-prior CNN's latest forward is on x.
template <WhiteBoxModel M>
double attack_objective(M& model, const GradientMatch& match, const Tensor<Cpu>& x, const AttackOptions& opt, int t,
                        const Tensor<Cpu>* consensus_x = nullptr, Tensor<Cpu>* d_x = nullptr) {
  const float gamma = opt.schedule.gamma(t, opt.iterations), upsilon = opt.schedule.upsilon(t, opt.iterations);
  if (d_x) {
    check_shape(*d_x, x.shape(), "gradvit::attack_objective: d_x");
    d_x->fill(0.0f);
  }
  double loss = 0.0;
  if (gamma != 0.0f) {
    // d_x is zero here, so scaling it in place afterwards gives gamma * d match / dx with no second buffer
    loss = gamma * match.evaluate(model, x, d_x).loss;
    if (d_x && gamma != 1.0f) nn::scale_inplace(*d_x, gamma);
    if (opt.extra_match) {
      Tensor<Cpu> d_extra = d_x ? Tensor<Cpu>::zeros(x.shape()) : Tensor<Cpu>{};
      loss += gamma * opt.extra_match->evaluate(model, x, d_x ? &d_extra : nullptr).loss;
      if (d_x)
        for (std::int64_t i = 0; i < x.numel(); ++i) (*d_x)[i] += gamma * d_extra[i];
    }
  }
  if (opt.tv > 0.0f) loss += nn::total_variation(x, opt.tv, d_x);
  if (opt.l2 > 0.0f) loss += nn::l2_prior(x, opt.l2, d_x);
  if (opt.patch > 0.0f) loss += nn::patch_prior(x, opt.patch_size, opt.patch, d_x);
  if (upsilon > 0.0f) {
    check(opt.image_prior.model != nullptr, "gradvit::attack_objective: Upsilon(", t, ") = ", upsilon,
          " but no image-prior CNN is set");
    BNPrior prior = opt.image_prior;
    prior.weight *= upsilon;
    prior.model->forward(x);
    loss += d_x ? prior.add(x, *d_x) : prior.value(nullptr);
  }
  if (consensus_x) loss += registration_pull(x, *consensus_x, opt.registration, d_x);
  return loss;
}

// Minimises Gamma(t) match(x^) + Upsilon(t) R_image(x^) + patch R_patch + l2 R_l2 + tv R_TV + registration R_reg
// over x^ with Adam, from seeded Gaussian noise of `shape`, for every seed.
// `on_iteration(t, loss, x^ of seed 0)` (optional) is called after every step.
// `ckpt` saves the state every ckpt.every iterations and/or resumes from ckpt.resume: a resumed run returns the
// same bytes as one that was never interrupted (tests/tasks/test_gradvit_resume.cpp).
template <WhiteBoxModel M>
AttackResult attack(M& model, const GradientMatch& match, const Shape& shape, const AttackOptions& opt = {},
                    const std::function<void(int, double, const Tensor<Cpu>&)>& on_iteration = {},
                    const AttackCheckpoint& ckpt = {}) {
  check(opt.iterations >= 1, "gradvit::attack: iterations must be >= 1, got ", opt.iterations);
  check(shape.rank() == 4 && shape[0] == static_cast<std::int64_t>(match.labels().size()), "gradvit::attack: shape ",
        shape.str(), " does not hold one image per label (", match.labels().size(), ")");
  check(opt.seeds >= 1, "gradvit::attack: seeds must be >= 1, got ", opt.seeds);
  check(opt.register_every >= 1, "gradvit::attack: register_every must be >= 1, got ", opt.register_every);
  check(opt.register_from >= 0.0f && opt.register_from < 1.0f, "gradvit::attack: register_from must be in [0, 1), got ", opt.register_from);
  check(opt.patch == 0.0f || opt.patch_size >= 1, "gradvit::attack: the patch prior needs patch_size >= 1");
  check(opt.schedule.alpha_image == 0.0f || opt.image_prior.model != nullptr,
        "gradvit::attack: alpha_image = ", opt.schedule.alpha_image, " but no image-prior CNN is set");
  if (opt.image_prior.model) check(!opt.image_prior.model->training(), "gradvit::attack: the image-prior CNN must be in eval mode");
  check(ckpt.every >= 0 && (ckpt.every == 0 || static_cast<bool>(ckpt.save)),
        "gradvit::attack: checkpoint every ", ckpt.every, " needs every >= 0 and a save function");
  const ImageSubspace* sub = opt.subspace;
  if (sub)
    check(sub->image == Shape{shape[1], shape[2], shape[3]}, "gradvit::attack: the subspace prior's images are ",
          sub->image.str(), ", the batch's ", shape.str());
  const auto S = static_cast<std::size_t>(opt.seeds);
  const bool registering = S > 1 && opt.registration > 0.0f;
  AttackResult res;
  // The inversion engine's pixel optimiser (mint/inversion/pixel_optimizer.hpp), one per seed: seeded noise
  // (seed + s, std init_std) clipped to [pixel_lo, pixel_hi], Adam on every pixel, the clip, the loss check.
  // With the subspace prior it holds the coordinates w [B, k] instead, viewed as [B, 1, 1, k], unclipped.
  const InversionOptions io = opt.inversion_options();
  const PixelAdam adam{io.lr, io.beta1, io.beta2, io.eps};
  const ClipRange pixel_range = io.clip_range(shape[1]);
  const float inf = std::numeric_limits<float>::infinity();
  const Shape zshape = sub ? Shape{shape[0], 1, 1, sub->k()} : shape;
  const ClipRange zrange = sub ? ClipRange::uniform(1, -inf, inf) : pixel_range;
  const auto coordinates = [&](const Tensor<Cpu>& x) {  // a start, in the optimised variable
    return sub ? sub->encode(x).reshape(zshape) : x.clone();
  };
  // the images of the optimised variable z; with the subspace, clip(decode(z)), and `raw` the unclipped images
  const auto decode = [&](const Tensor<Cpu>& z, Tensor<Cpu>* raw = nullptr) {
    if (!sub) return z;
    Tensor<Cpu> r = sub->decode(z.reshape(Shape{shape[0], sub->k()})), x = r.clone();
    clip_images(x, pixel_range);
    if (raw) *raw = r;
    return x;
  };
  std::vector<PixelOptimizer<Cpu>> pix;
  pix.reserve(S);
  if (opt.start) check_shape(*opt.start, shape, "gradvit::attack: start images");
  check(opt.start_std >= 0.0f && (opt.start_std == 0.0f || opt.start), "gradvit::attack: start_std ", opt.start_std,
        " needs start images and must be >= 0");
  const auto start_of = [&](std::size_t s) {
    if (!opt.start) return PixelOptimizer<Cpu>::noise(zshape, io.seed + s, opt.init_std);
    Tensor<Cpu> z = coordinates(*opt.start);
    if (opt.start_std > 0.0f) {
      const Tensor<Cpu> n = PixelOptimizer<Cpu>::noise(zshape, io.seed + s, opt.start_std);
      for (std::int64_t i = 0; i < z.numel(); ++i) z[i] += n[i];
    }
    return z;
  };
  for (std::size_t s = 0; s < S; ++s)
    pix.emplace_back(start_of(s), adam, zrange, true, "gradvit::attack: initial images");
  const auto images = [&] {
    std::vector<Tensor<Cpu>> xs;
    for (auto& p : pix) xs.push_back(decode(p.images()));
    return xs;
  };
  auto g = Tensor<Cpu>::zeros(shape);
  Tensor<Cpu> raw;
  Tensor<Cpu> xc;
  const int reg_t0 = static_cast<int>(opt.register_from * static_cast<float>(opt.iterations));  // pull for t > reg_t0
  const auto recomputes_consensus = [&](int t) {
    return registering && t > reg_t0 && (t - reg_t0 - 1) % opt.register_every == 0;
  };
  int done = 0;
  if (const AttackState* st = ckpt.resume) {
    const char* who = "gradvit::attack: the resumed state";
    check(st->t >= 1 && st->t < opt.iterations, who, " is after iteration ", st->t, ", not in [1, ", opt.iterations,
          ")");
    check(st->x.size() == S && st->m.size() == S && st->v.size() == S, who, " holds ", st->x.size(), " / ",
          st->m.size(), " / ", st->v.size(), " images / moments / moments, not one per seed (", S, ")");
    check(st->loss.size() == static_cast<std::size_t>(st->t), who, " has ", st->loss.size(),
          " losses for ", st->t, " iterations");
    for (std::size_t s = 0; s < S; ++s) {
      const std::string what = std::string(who) + " (seed " + std::to_string(s) + ")";
      check_shape(st->x[s], zshape, what.c_str());
      for (std::int64_t i = 0; i < st->x[s].numel() && !sub; ++i)  // inside the clip range: an attack's images are
        check(st->x[s][i] >= io.pixel_lo && st->x[s][i] <= io.pixel_hi, what, ": pixel [", i, "] = ",
              st->x[s][i], " is outside [", io.pixel_lo, ", ", io.pixel_hi, "]");
      pix[s] = PixelOptimizer<Cpu>(st->x[s].clone(), adam, zrange, false, what);
      pix[s].restore_moments(st->m[s], st->v[s], what);
    }
    const bool needs_consensus = registering && st->t + 1 > reg_t0 && !recomputes_consensus(st->t + 1);
    if (needs_consensus) check_shape(st->consensus, shape, (std::string(who) + ": consensus").c_str());
    if (needs_consensus) xc = st->consensus.clone();
    res.loss = st->loss;
    done = st->t;
  }
  const double pi = 3.14159265358979323846;
  for (int t = done + 1; t <= opt.iterations; ++t) {
    const bool pulling = registering && t > reg_t0;
    if (recomputes_consensus(t)) xc = consensus(images(), opt.align_shift, opt.align_flip);
    const float lr = opt.cosine_lr ? static_cast<float>(0.5 * opt.lr * (1.0 + std::cos(pi * (t - 1) / opt.iterations))) : opt.lr;
    const fn::AdamStep step = adam.at(t, lr);
    double mean_loss = 0.0;
    for (std::size_t s = 0; s < S; ++s) {
      const Tensor<Cpu> x = decode(pix[s].images(), &raw);
      const double loss = attack_objective(model, match, x, opt, t, pulling ? &xc : nullptr, &g);
      PixelOptimizer<Cpu>::check_loss(loss, t, "gradvit::attack", " (seed " + std::to_string(s) + ")");
      Tensor<Cpu> gz = sub ? sub->pull_back(g, raw, pixel_range).reshape(zshape) : g;
      if (opt.signed_gradient)
        for (std::int64_t i = 0; i < gz.numel(); ++i) gz[i] = static_cast<float>((gz[i] > 0.0f) - (gz[i] < 0.0f));
      pix[s].step(step, gz);
      mean_loss += loss / static_cast<double>(S);
    }
    res.loss.push_back(mean_loss);
    if (on_iteration) on_iteration(t, mean_loss, decode(pix[0].images()));
    if (ckpt.every > 0 && t % ckpt.every == 0 && t < opt.iterations) {
      AttackState st{.t = t, .consensus = xc.data() ? xc.clone() : Tensor<Cpu>{}, .loss = res.loss};
      for (const auto& p : pix) {
        st.x.push_back(p.images().clone());
        st.m.push_back(p.first_moment().clone());
        st.v.push_back(p.second_moment().clone());
      }
      ckpt.save(st);
    }
  }
  const std::vector<Tensor<Cpu>> xs = images();
  for (std::size_t s = 0; s < S; ++s) {
    res.distance.push_back(match.evaluate(model, xs[s]).distance);
    if (res.distance.back() < res.distance[static_cast<std::size_t>(res.best_seed)]) res.best_seed = static_cast<int>(s);
  }
  res.images = xs[static_cast<std::size_t>(res.best_seed)];
  res.consensus = S > 1 ? consensus(xs, opt.align_shift, opt.align_flip) : res.images.clone();
  return res;
}

// An attack's state on disk: a safetensors file (x.<s>, m.<s>, v.<s> per seed, consensus when set) whose metadata
// holds t, the seed count, the loss history (JSON, doubles exact), `fingerprint` (what the caller says makes
// two runs the same: options, model, target) and the caller's `extra` entries. Written atomically.
inline constexpr const char* kAttackStateFormat = "mint-gradvit-attack-state-1";

inline void save_attack_state(const std::string& path, const AttackState& st, const std::string& fingerprint,
                              std::map<std::string, std::string> extra = {}) {
  std::map<std::string, Tensor<Cpu>> t;
  for (std::size_t s = 0; s < st.x.size(); ++s) {
    t["x." + std::to_string(s)] = st.x[s];
    t["m." + std::to_string(s)] = st.m[s];
    t["v." + std::to_string(s)] = st.v[s];
  }
  if (st.consensus.data()) t["consensus"] = st.consensus;
  extra["format"] = kAttackStateFormat;
  extra["t"] = std::to_string(st.t);
  extra["seeds"] = std::to_string(st.x.size());
  extra["loss"] = nlohmann::json(st.loss).dump();
  extra["fingerprint"] = fingerprint;
  io::save_safetensors(path, t, extra);
}

// Reads a state written by save_attack_state, refusing (mint::Error naming the path and what is wrong) a file of
// another format, another fingerprint (the first differing key named when both are JSON objects), a missing
// tensor, or counts that do not agree. Shapes, ranges and moments are checked by attack() on resume.
inline AttackState load_attack_state(const std::string& path, const std::string& fingerprint,
                                     std::map<std::string, std::string>* extra = nullptr) {
  const io::SafetensorsFile f = io::load_safetensors(path);
  const auto meta = [&](const std::string& key) -> const std::string& {
    const auto it = f.metadata.find(key);
    check(it != f.metadata.end(), "'", path, "' is not a GradViT attack state: no metadata '", key, "'");
    return it->second;
  };
  check(meta("format") == kAttackStateFormat, "'", path, "' is not a GradViT attack state (format '",
        meta("format"), "', expected '", kAttackStateFormat, "')");
  if (meta("fingerprint") != fingerprint) {
    std::string first = "(not JSON objects: the texts differ)";
    const auto a = nlohmann::json::parse(meta("fingerprint"), nullptr, false),
               b = nlohmann::json::parse(fingerprint, nullptr, false);
    if (a.is_object() && b.is_object())
      for (const auto& [k, v] : b.items())
        if (!a.contains(k) || a[k] != v) {
          first = k + ": saved " + (a.contains(k) ? a[k].dump() : "(absent)") + ", now " + v.dump();
          break;
        }
    throw Error("'" + path + "' was saved by a different attack (first difference: " + first +
                "): delete it to start again, or rerun with the options it was made with");
  }
  const auto count = [&](const std::string& key, std::int64_t lo, std::int64_t hi) {
    meta(key);  // present
    return static_cast<int>(*io::metadata_int(f.metadata, key, lo, hi, "'" + path + "'"));
  };
  AttackState st;
  st.t = count("t", 1, std::numeric_limits<int>::max());
  const int seeds = count("seeds", 1, 1000);
  const auto loss = nlohmann::json::parse(meta("loss"), nullptr, false);
  check(loss.is_array() && loss.size() == static_cast<std::size_t>(st.t), "'", path, "': metadata 'loss' must be ",
        "a JSON array of ", st.t, " numbers");
  for (const auto& l : loss) {
    check(l.is_number(), "'", path, "': metadata 'loss' holds a non-number");
    st.loss.push_back(l.get<double>());
  }
  for (int s = 0; s < seeds; ++s)
    for (auto [name, dst] : {std::pair{"x.", &st.x}, std::pair{"m.", &st.m}, std::pair{"v.", &st.v}})
      dst->push_back(f.at(name + std::to_string(s)).clone());
  if (f.contains("consensus")) st.consensus = f.at("consensus").clone();
  check(f.tensors.size() == static_cast<std::size_t>(3 * seeds) + (st.consensus.data() ? 1 : 0), "'", path,
        "' holds ", f.tensors.size(), " tensors, not 3 per seed (", seeds, " seeds) and the consensus");
  if (extra) *extra = f.metadata;
  return st;
}

}  // namespace mint::tasks::gradvit
