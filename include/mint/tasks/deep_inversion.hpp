// mint/tasks/deep_inversion.hpp -- DeepInversion of a BatchNorm CNN as NVlabs/DeepInversion's deepinversion.py
// (DeepInversionClass.get_images, setting_id 1: one resolution) runs it, for training sets made without real
// data (DCI's synthetic set, docs/dci.md).
//
// Per iteration t = 1..T (deepinversion.py's loop, its names in brackets):
//   lr_t      lr_cosine_policy(lr, warmup 100, T): linear warm-up lr (t0 + 1) / warmup for t0 = t - 1 < warmup,
//             then lr (1 + cos(pi (t0 - warmup) / (T - warmup))) / 2
//   x_jit     torch.roll(x, (dy, dx), dims (H, W)), dy, dx uniform in [-jitter, jitter] (random.randint), then a
//             horizontal flip with probability 1/2 (do_flip); one draw for the whole batch
//   loss      main_loss_multiplier * CE(teacher(x_jit), y)
//             + r_feature * sum_l m_l (||mu_l - mu_l^run|| + ||var_l - var_l^run||)   (m_1 = first_bn_multiplier)
//             + tv_l2 * loss_var_l2(x_jit) + tv_l1 * loss_var_l1(x_jit)   (get_image_prior_losses)
//             + l2 * mean_i ||x_jit,i||_2
//   step      Adam(betas 0.5, 0.9, eps 1e-8) on x, then clip to the valid pixel range (do_clip)
//   best      the image after the step of the iteration with the lowest loss, for the whole batch (the library's
//             KeptImage::BestAfterStep reading of `best_inputs = inputs.data.clone()`, docs/inversion.md)
// The teacher is in eval mode (its running statistics are the prior's targets). Defaults: imagenet_inversion.py's
// (lr 0.2, r_feature 0.05, first_bn_multiplier 10, tv_l2 1e-4, tv_l1 0, l2 1e-5, 2000 iterations), jitter
// scaled from 30 px at 224 px to the image size (30 * 28 / 224 = 3.75 -> 4 at 28 px).
//
// Why not the Inverter: its augmentation moves whole patches and BNPrior refuses any augmentation (the prior's
// gradient would be in the transformed frame); here the BN-statistics gradient is folded into the teacher's own
// backward on x_jit (ResNet::backward with BNStatGrads) and the whole gradient is mapped back through the roll and
// flip, which are pixel permutations.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <vector>

#include "mint/backend/functors.hpp"
#include "mint/core/rng.hpp"
#include "mint/inversion/bn_prior.hpp"
#include "mint/models/resnet.hpp"
#include "mint/nn/image_priors.hpp"
#include "mint/nn/losses.hpp"

namespace mint::tasks {

struct DeepInversionOptions {
  int iterations = 2000;   // T (setting_id 1: 2000)
  int warmup = 100;        // lr_cosine_policy's warm-up length (100 in deepinversion.py); clamped to T - 1
  float lr = 0.2f, beta1 = 0.5f, beta2 = 0.9f, eps = 1e-8f;
  float main_loss_multiplier = 1.0f, r_feature = 0.05f, first_bn_multiplier = 10.0f;
  float tv_l2 = 1e-4f, tv_l1 = 0.0f, l2 = 1e-5f;
  int jitter = 4;          // maximum roll in pixels, each axis
  bool flip = true;
  bool keep_best = true;   // false: the last image (no best-image keeping)
  float pixel_lo = -std::numeric_limits<float>::infinity(), pixel_hi = std::numeric_limits<float>::infinity();
  std::uint64_t seed = 0;  // initial noise and the jitter/flip draws

  // ensures: throws mint::Error naming the first option out of range.
  void validate(int img_size) const {
    check(iterations >= 1, "DeepInversionOptions: iterations = ", iterations, ", must be >= 1");
    check(warmup >= 0, "DeepInversionOptions: warmup = ", warmup, ", must be >= 0");
    check(lr > 0.0f && std::isfinite(lr), "DeepInversionOptions: lr = ", lr, ", must be finite and > 0");
    check(beta1 >= 0.0f && beta1 < 1.0f && beta2 >= 0.0f && beta2 < 1.0f, "DeepInversionOptions: betas (", beta1,
          ", ", beta2, ") must be in [0, 1)");
    check(r_feature >= 0.0f && first_bn_multiplier >= 0.0f && tv_l2 >= 0.0f && tv_l1 >= 0.0f && l2 >= 0.0f &&
              main_loss_multiplier >= 0.0f,
          "DeepInversionOptions: loss weights must be >= 0 (main ", main_loss_multiplier, ", r_feature ", r_feature,
          ", first_bn_multiplier ", first_bn_multiplier, ", tv_l2 ", tv_l2, ", tv_l1 ", tv_l1, ", l2 ", l2, ")");
    check(jitter >= 0 && jitter < img_size, "DeepInversionOptions: jitter = ", jitter, " px, must be in [0, ",
          img_size, ") for ", img_size, " px images");
    check(pixel_lo < pixel_hi, "DeepInversionOptions: pixel range [", pixel_lo, ", ", pixel_hi, "] is empty");
  }
};

// lr_cosine_policy(base, warmup, T) at 0-based iteration t0 (DeepInversion's utils/utils.py).
inline float deep_inversion_lr(const DeepInversionOptions& o, int t0) {
  const int warm = std::min(o.warmup, o.iterations - 1);
  if (t0 < warm) return o.lr * static_cast<float>(t0 + 1) / static_cast<float>(warm);
  const double e = t0 - warm, es = o.iterations - warm;
  return static_cast<float>(0.5 * (1.0 + std::cos(std::numbers::pi * e / es)) * o.lr);
}

// One iteration's roll (dy, dx) and flip.
struct RollFlip {
  int dy = 0, dx = 0;
  bool flip = false;
  // the source pixel (row, column) of x_jit's pixel (y, x) in an h x w image: x_jit[y][x] = x[src_y][src_x]
  [[nodiscard]] std::int64_t src(std::int64_t y, std::int64_t x, std::int64_t h, std::int64_t w) const {
    const std::int64_t xf = flip ? w - 1 - x : x;
    const std::int64_t sy = ((y - dy) % h + h) % h, sx = ((xf - dx) % w + w) % w;
    return sy * w + sx;
  }
};

// x_jit = t(x) (backward = false), or d x += t^T(d x_jit) (backward = true: `from` is d x_jit, `to` is d x).
// requires: from, to [B, C, H, W] of equal shape.
inline void apply_roll_flip(const RollFlip& t, const Tensor<Cpu>& from, Tensor<Cpu>& to, bool backward) {
  check_shape(to, from.shape(), "apply_roll_flip: output");
  const std::int64_t planes = from.dim(0) * from.dim(1), h = from.dim(2), w = from.dim(3), hw = h * w;
  for (std::int64_t p = 0; p < planes; ++p)
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int64_t x = 0; x < w; ++x) {
        const std::int64_t j = p * hw + y * w + x, s = p * hw + t.src(y, x, h, w);
        if (backward)
          to[s] += from[j];
        else
          to[j] = from[s];
      }
}

// The loss of one iteration on x under the roll/flip tf, and its gradient added to dx.
// requires: x, dx [B, C, H, W] (the teacher's input shape); labels.size() == B; xj scratch of x's shape.
// ensures:  returns the loss of the file comment; dx += d loss / d x. Runs the teacher's forward on t(x).
inline float deep_inversion_loss(ResNet<>& teacher, const Tensor<Cpu>& x, const std::vector<int>& labels,
                                 const RollFlip& tf, const DeepInversionOptions& o, Tensor<Cpu>& dx, Tensor<Cpu>& xj) {
  const std::int64_t b = x.dim(0);
  check_shape(dx, x.shape(), "deep_inversion_loss: dx");
  check_shape(xj, x.shape(), "deep_inversion_loss: scratch");
  apply_roll_flip(tf, x, xj, false);
  auto logits = teacher.forward(xj);
  auto dlogits = Tensor<Cpu>::zeros(logits.shape());
  float loss = o.main_loss_multiplier * nn::cross_entropy(logits, labels, &dlogits, o.main_loss_multiplier);
  const BNPrior prior{&teacher, o.r_feature, o.first_bn_multiplier};
  BNStatGrads g;
  if (o.r_feature > 0.0f) loss += prior.value(&g);
  auto dxj = teacher.backward(dlogits, Backward::InputOnly, o.r_feature > 0.0f ? &g : nullptr);
  if (o.tv_l2 > 0.0f) loss += nn::tv_official_l2(xj, o.tv_l2, &dxj);
  if (o.tv_l1 > 0.0f) loss += nn::tv_official_l1(xj, o.tv_l1, &dxj);
  apply_roll_flip(tf, dxj, dx, true);
  if (o.l2 > 0.0f) {  // mean_i ||x_i||: a roll and flip keep each image's norm, so on x directly
    const std::int64_t per = x.numel() / b;
    for (std::int64_t i = 0; i < b; ++i) {
      double sq = 0.0;
      for (std::int64_t k = 0; k < per; ++k) sq += double(x[i * per + k]) * x[i * per + k];
      const double nrm = std::sqrt(sq);
      loss += static_cast<float>(o.l2 * nrm / static_cast<double>(b));
      if (nrm > 0.0)
        for (std::int64_t k = 0; k < per; ++k)
          dx[i * per + k] += static_cast<float>(o.l2 * x[i * per + k] / (nrm * static_cast<double>(b)));
    }
  }
  return loss;
}

struct DeepInversionResult {
  Tensor<Cpu> images;           // [B, C, H, W] in the teacher's normalised input space
  float final_loss = 0.0f;      // the loss of iteration T
  float kept_loss = 0.0f;       // the loss of the kept image's iteration (= final_loss without keep_best)
  int kept_iteration = 0;       // that iteration
};

// requires: teacher in eval mode; labels.size() >= 2 (batch statistics), each in [0, classes).
// ensures:  the images of options.iterations DeepInversion iterations (the best or the last, keep_best); the
//           teacher's parameters are not touched (input-only backward).
inline DeepInversionResult deep_inversion(ResNet<>& teacher, const std::vector<int>& labels,
                                          const DeepInversionOptions& o) {
  const auto& cfg = teacher.config();
  o.validate(cfg.img_size);
  check(labels.size() >= 2, "deep_inversion: ", labels.size(), " labels; the BN prior needs a batch of >= 2");
  for (std::size_t i = 0; i < labels.size(); ++i)
    check(labels[i] >= 0 && labels[i] < cfg.classes, "deep_inversion: label ", labels[i], " (image ", i,
          ") is outside [0, ", cfg.classes, ")");
  const auto b = static_cast<std::int64_t>(labels.size());
  const Shape shape{b, cfg.in_chans, cfg.img_size, cfg.img_size};
  auto x = Tensor<Cpu>::empty(shape);
  fill_normal(x, o.seed, 0, 0.0f, 1.0f);  // torch.randn
  auto m = Tensor<Cpu>::zeros(shape), v = Tensor<Cpu>::zeros(shape), xj = Tensor<Cpu>::empty(shape);
  DeepInversionResult res;
  float best = std::numeric_limits<float>::infinity();
  double b1t = 1.0, b2t = 1.0;
  constexpr std::uint32_t kStream = 0xd1e9000u;
  for (int t = 1; t <= o.iterations; ++t) {
    const auto base = static_cast<std::uint64_t>(t) * 3;
    const int span = 2 * o.jitter + 1;
    RollFlip tf;
    tf.dy = std::min(span - 1, static_cast<int>(philox_uniform(o.seed, kStream, base) * span)) - o.jitter;
    tf.dx = std::min(span - 1, static_cast<int>(philox_uniform(o.seed, kStream, base + 1) * span)) - o.jitter;
    tf.flip = o.flip && philox_uniform(o.seed, kStream, base + 2) < 0.5f;
    auto dx = Tensor<Cpu>::zeros(shape);
    const float loss = deep_inversion_loss(teacher, x, labels, tf, o, dx, xj);
    check(std::isfinite(loss), "deep_inversion: the loss became ", loss, " at iteration ", t);

    b1t *= o.beta1;
    b2t *= o.beta2;
    const fn::AdamStep step{deep_inversion_lr(o, t - 1), o.beta1, o.beta2, o.eps, static_cast<float>(1.0 - b1t),
                            static_cast<float>(1.0 - b2t)};
    for (std::int64_t i = 0; i < x.numel(); ++i) {
      step(x[i], dx[i], m[i], v[i]);
      x[i] = std::clamp(x[i], o.pixel_lo, o.pixel_hi);
    }
    res.final_loss = loss;
    if (o.keep_best && loss < best) {
      best = loss;
      res.images = x.clone();
      res.kept_loss = loss;
      res.kept_iteration = t;
    }
  }
  if (!o.keep_best) {
    res.images = x;
    res.kept_loss = res.final_loss;
    res.kept_iteration = o.iterations;
  }
  return res;
}

}  // namespace mint::tasks
