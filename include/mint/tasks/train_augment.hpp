// mint/tasks/train_augment.hpp -- DeiT-style training augmentation for a classifier (Touvron et al. 2021, Table 9:
// random erasing 0.25, mixup 0.8, cutmix 1.0, label smoothing 0.1; the forms of timm's RandomErasing and Mixup):
//
//   random_erase: per image, with probability p, one box of area fraction U(min_area, max_area) and aspect ratio
//                 log-uniform in [min_aspect, 1 / min_aspect] (10 attempts to fit, as timm) filled with N(0, 1)
//                 noise per pixel (timm's mode "pixel"; the batch is already normalised, so N(0, 1) is the data's
//                 scale). Draws: Philox (seed, stream, image index): the same image gets the same box on every
//                 thread count and machine.
//   mix_batch:    per batch (timm's mode "batch"), with probability mix_prob: cutmix with probability switch_prob
//                 when both alphas are positive (else whichever is positive), lam ~ Beta(alpha, alpha); image i is
//                 mixed with image B-1-i (timm's x.flip(0)); mixup x_i = lam x_i + (1 - lam) x_{B-1-i}; cutmix
//                 pastes the partner's box of side ratio sqrt(1 - lam) at a uniform centre, clipped to the image,
//                 and lam becomes the kept area's fraction. Targets: lam y_i + (1 - lam) y_{B-1-i}, with y the
//                 label-smoothed one-hot (1 - s + s / C on the label, s / C elsewhere); without mixing lam = 1.
//                 Beta draws come from std::gamma_distribution on an mt19937_64 seeded by Philox (seed, stream,
//                 step): reproducible for one standard library, not bit-equal across libstdc++ and libc++.
// The targets go to nn::soft_cross_entropy.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "mint/backend/cpu/parallel.hpp"
#include "mint/core/error.hpp"
#include "mint/core/rng.hpp"
#include "mint/core/tensor.hpp"

namespace mint::tasks {

struct EraseOptions {
  float prob = 0.0f;                            // DeiT: 0.25
  float min_area = 0.02f, max_area = 1.0f / 3;  // box area as a fraction of the image
  float min_aspect = 0.3f;                      // aspect ratio in [min_aspect, 1 / min_aspect], log-uniform
};

struct MixOptions {
  float mixup_alpha = 0.0f, cutmix_alpha = 0.0f;  // DeiT: 0.8 and 1.0; 0 turns one off
  float mix_prob = 1.0f, switch_prob = 0.5f;      // DeiT: 1.0 and 0.5
  float smoothing = 0.0f;                         // DeiT: 0.1
};

// What mix_batch did to one batch.
struct MixInfo {
  enum class Kind { none, mixup, cutmix } kind = Kind::none;
  float lam = 1.0f;           // the weight of image i's own label (cutmix: its kept area's fraction)
  int y0 = 0, y1 = 0, x0 = 0, x1 = 0;  // cutmix: the pasted box, rows [y0, y1) and columns [x0, x1)
};

namespace detail {
inline void check_images(const Tensor<Cpu>& batch, const char* what) {
  check(batch.rank() == 4, what, ": expected a [B, C, H, W] batch, got ", batch.shape().str());
}
}  // namespace detail

inline void check_options(const EraseOptions& o) {
  check(o.prob >= 0.0f && o.prob <= 1.0f, "random erasing: probability ", o.prob, " outside [0, 1]");
  check(o.min_area > 0.0f && o.min_area <= o.max_area && o.max_area <= 1.0f, "random erasing: area range [",
        o.min_area, ", ", o.max_area, "] is not inside (0, 1]");
  check(o.min_aspect > 0.0f && o.min_aspect <= 1.0f, "random erasing: min aspect ", o.min_aspect, " outside (0, 1]");
}
inline void check_options(const MixOptions& o) {
  check(std::isfinite(o.mixup_alpha) && o.mixup_alpha >= 0.0f, "mixup: alpha ", o.mixup_alpha, " must be >= 0");
  check(std::isfinite(o.cutmix_alpha) && o.cutmix_alpha >= 0.0f, "cutmix: alpha ", o.cutmix_alpha, " must be >= 0");
  check(o.mix_prob >= 0.0f && o.mix_prob <= 1.0f, "mixup/cutmix: probability ", o.mix_prob, " outside [0, 1]");
  check(o.switch_prob >= 0.0f && o.switch_prob <= 1.0f, "mixup/cutmix: switch probability ", o.switch_prob,
        " outside [0, 1]");
  check(o.smoothing >= 0.0f && o.smoothing < 1.0f, "label smoothing ", o.smoothing, " outside [0, 1)");
}

// Random erasing of every image of `batch` ([B, C, H, W], normalised) in place; image j draws from Philox
// (seed, stream, first + j), its noise from stream + 1.
inline void random_erase(Tensor<Cpu>& batch, const EraseOptions& o, std::uint64_t seed, std::uint32_t stream,
                         std::uint64_t first) {
  detail::check_images(batch, "random erasing");
  check_options(o);
  if (o.prob == 0.0f) return;
  const std::int64_t b = batch.dim(0), ch = batch.dim(1), h = batch.dim(2), w = batch.dim(3), per = ch * h * w;
  constexpr std::uint64_t kDraws = 64;  // uniforms per image: 1 + 4 per attempt x 10 attempts
  cpu::parallel_for(b, [&](std::int64_t j) {
    const std::uint64_t img = first + static_cast<std::uint64_t>(j);
    std::uint64_t k = img * kDraws;
    auto u = [&] { return philox_uniform(seed, stream, k++); };
    if (u() >= o.prob) return;
    const double area = static_cast<double>(h * w), log_lo = std::log(o.min_aspect), log_hi = -log_lo;
    for (int attempt = 0; attempt < 10; ++attempt) {
      const double target = area * (o.min_area + (o.max_area - o.min_area) * u());
      const double aspect = std::exp(log_lo + (log_hi - log_lo) * u());
      const auto bh = static_cast<std::int64_t>(std::lround(std::sqrt(target * aspect)));
      const auto bw = static_cast<std::int64_t>(std::lround(std::sqrt(target / aspect)));
      const float ut = u(), ul = u();
      if (bh < 1 || bw < 1 || bh >= h || bw >= w) continue;  // timm: w < img_w and h < img_h
      const auto top = std::min(h - bh, static_cast<std::int64_t>(ut * static_cast<float>(h - bh + 1)));
      const auto left = std::min(w - bw, static_cast<std::int64_t>(ul * static_cast<float>(w - bw + 1)));
      float* x = batch.data() + j * per;
      for (std::int64_t c = 0; c < ch; ++c)
        for (std::int64_t y = top; y < top + bh; ++y)
          for (std::int64_t xx = left; xx < left + bw; ++xx) {
            const std::int64_t p = (c * h + y) * w + xx;
            const std::uint64_t k_noise = img * static_cast<std::uint64_t>(per) + static_cast<std::uint64_t>(p);
            x[p] = philox_normal(seed, stream + 1, k_noise);
          }
      return;
    }
  }, 8);
}

// Mixup / cutmix of `batch` in place ([B, C, H, W]); returns the soft targets [B, classes] for
// nn::soft_cross_entropy; `info` (if given) says what was done.
inline Tensor<Cpu> mix_batch(Tensor<Cpu>& batch, const std::vector<int>& labels, int classes, const MixOptions& o,
                             std::uint64_t seed, std::uint32_t stream, std::uint64_t step, MixInfo* info = nullptr) {
  detail::check_images(batch, "mixup/cutmix");
  check_options(o);
  const std::int64_t b = batch.dim(0), ch = batch.dim(1), h = batch.dim(2), w = batch.dim(3), per = ch * h * w;
  check(static_cast<std::int64_t>(labels.size()) == b, "mixup/cutmix: ", labels.size(), " labels for a batch of ", b);
  check(classes >= 1, "mixup/cutmix: ", classes, " classes");
  for (int y : labels) check(y >= 0 && y < classes, "mixup/cutmix: label ", y, " outside 0..", classes - 1);

  MixInfo m;
  const PhiloxWords r = philox_block(seed, stream, step);
  std::mt19937_64 gen((static_cast<std::uint64_t>(r.w[0]) << 32) | r.w[1]);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  auto beta = [&](double a) {
    std::gamma_distribution<double> g(a, 1.0);
    const double x = g(gen), y = g(gen);
    return x + y > 0.0 ? x / (x + y) : 0.5;
  };
  if ((o.mixup_alpha > 0.0f || o.cutmix_alpha > 0.0f) && unif(gen) < o.mix_prob) {
    const bool cut = o.cutmix_alpha > 0.0f && (o.mixup_alpha == 0.0f || unif(gen) < o.switch_prob);
    m.kind = cut ? MixInfo::Kind::cutmix : MixInfo::Kind::mixup;
    m.lam = static_cast<float>(beta(cut ? o.cutmix_alpha : o.mixup_alpha));
    if (cut) {  // timm's rand_bbox, then lam from the clipped box
      const double ratio = std::sqrt(1.0 - static_cast<double>(m.lam));
      const auto ch_ = static_cast<std::int64_t>(static_cast<double>(h) * ratio);
      const auto cw_ = static_cast<std::int64_t>(static_cast<double>(w) * ratio);
      const auto cy = std::min(h - 1, static_cast<std::int64_t>(unif(gen) * static_cast<double>(h)));
      const auto cx = std::min(w - 1, static_cast<std::int64_t>(unif(gen) * static_cast<double>(w)));
      m.y0 = static_cast<int>(std::clamp<std::int64_t>(cy - ch_ / 2, 0, h));
      m.y1 = static_cast<int>(std::clamp<std::int64_t>(cy + ch_ / 2, 0, h));
      m.x0 = static_cast<int>(std::clamp<std::int64_t>(cx - cw_ / 2, 0, w));
      m.x1 = static_cast<int>(std::clamp<std::int64_t>(cx + cw_ / 2, 0, w));
      const double box = static_cast<double>((m.y1 - m.y0) * (m.x1 - m.x0));
      m.lam = 1.0f - static_cast<float>(box / static_cast<double>(h * w));
    }
    const Tensor<Cpu> orig = batch.clone();
    cpu::parallel_for(b, [&](std::int64_t i) {
      float* x = batch.data() + i * per;
      const float* partner = orig.data() + (b - 1 - i) * per;
      if (!cut) {
        const float* own = orig.data() + i * per;
        for (std::int64_t p = 0; p < per; ++p) x[p] = m.lam * own[p] + (1.0f - m.lam) * partner[p];
        return;
      }
      for (std::int64_t c = 0; c < ch; ++c)
        for (std::int64_t y = m.y0; y < m.y1; ++y)
          for (std::int64_t xx = m.x0; xx < m.x1; ++xx) x[(c * h + y) * w + xx] = partner[(c * h + y) * w + xx];
    }, 4);
  }
  auto targets = Tensor<Cpu>::zeros(Shape{b, classes});
  const float off = o.smoothing / static_cast<float>(classes), on = 1.0f - o.smoothing + off;
  for (std::int64_t i = 0; i < b; ++i) {
    float* t = targets.data() + i * classes;
    for (int c = 0; c < classes; ++c) t[c] = off;
    t[labels[static_cast<std::size_t>(i)]] += m.lam * (on - off);
    t[labels[static_cast<std::size_t>(b - 1 - i)]] += (1.0f - m.lam) * (on - off);
  }
  if (info) *info = m;
  return targets;
}

}  // namespace mint::tasks
