// mint/nn/image_priors.hpp -- image priors on a batch of images [B, C, H, W]: total variation (SMI Eq. 2),
// L2, SMI's official-code TV (L2 and L1 forms) and norm-L2 (tv_official_l2, tv_official_l1, l2_official_norm:
// whole-batch forms, no batch mean), and GradViT's patch prior on patch borders (Eq. 8). The others return
// weight * mean over the batch of the per-image prior. Each, when asked, ADDS its gradient into d_images. Batch
// mean, so the prior's scale matches cross_entropy's batch mean in Eq. 1.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "mint/backend/cpu/parallel.hpp"
#include "mint/backend/functors_plain.hpp"
#include "mint/core/tensor.hpp"
#include "mint/nn/tokens.hpp"

namespace mint::nn {

namespace detail {
// SMI Eq. 2, literally (1-based i = row, j = column):
//   sum_{i=2..H} sum_{j=2..W} ( |X_ij - X_i-1,j| + |X_ij - X_i,j-1| + |X_ij - X_i-1,j-1| )
//   + sum_{i=2..H} sum_{j=1..W-1} |X_ij - X_i-1,j+1|,
// |.| the L2 norm across channels at one pixel. Note the first sum starts at j = 2 for all three terms, so
// the vertical difference of the first column is not counted; mint keeps the paper's ranges exactly.
// A zero difference has no gradient (subgradient 0 is used), which random or optimised images never hit.
struct TvTerm {
  int dy, dx;  // neighbour offset (i + dy, j + dx), dy = -1
  int j_lo, j_hi_minus;  // 0-based columns j in [j_lo, W - j_hi_minus)
};
inline constexpr TvTerm kTvTerms[4] = {{-1, 0, 1, 0}, {0, -1, 1, 0}, {-1, -1, 1, 0}, {-1, +1, 0, 1}};

// l2_prior's checks (a template: the CUDA op, mint/backend/cuda/image_priors.cuh, runs them too).
template <class D>
void l2_prior_check(const Tensor<D>& images, const Tensor<D>* dimages) {
  check(images.rank() >= 1 && images.dim(0) > 0, "l2_prior: images shape ", images.shape().str(), " has no batch");
  if (dimages) check_shape(*dimages, images.shape(), "l2_prior: d_images");
}
}  // namespace detail

namespace detail {
// One pair (p, q) of SMI Eq. 2 (plane-relative flat indices of one image x [C, H, W], hw = H * W): returns the L2
// norm across channels of x[p] - x[q], and when g is given adds grad_weight * (x[p] - x[q]) / norm at p and
// subtracts it at q. The one TV pair arithmetic: the full and the active-patch loops below call it.
inline double tv_pair(const float* x, float* g, std::int64_t c, std::int64_t hw, std::int64_t p, std::int64_t q,
                      float grad_weight) {
  double s = 0.0;
  for (std::int64_t ch = 0; ch < c; ++ch) {
    const double d = static_cast<double>(x[ch * hw + p]) - x[ch * hw + q];
    s += d * d;
  }
  const double norm = std::sqrt(s);
  if (g && norm > 0.0) {
    const double k = grad_weight / norm;
    for (std::int64_t ch = 0; ch < c; ++ch) {
      const float d = static_cast<float>(k * (static_cast<double>(x[ch * hw + p]) - x[ch * hw + q]));
      g[ch * hw + p] += d;
      g[ch * hw + q] -= d;
    }
  }
  return norm;
}

// Calls f(p, q) for SMI Eq. 2's pairs of one [H, W] plane in the full loop's order (term, row, column), only those
// that touch an active patch (touching = true) or only those that touch none (touching = false). active is the
// image's patch grid (H / ps rows of W / ps, row-major), nonzero where the patch is active. A run of ps columns
// whose own patch and every neighbour patch it reads are inactive is skipped whole in the touching pass, so that
// pass costs what the active patches and their one-pixel border cost.
template <class F>
void for_each_tv_pair_near(std::int64_t h, std::int64_t w, std::int64_t ps, const std::uint8_t* active, bool touching,
                           F&& f) {
  const std::int64_t gw = w / ps;
  for (const auto& term : kTvTerms)
    for (std::int64_t i = 1; i < h; ++i) {
      const std::uint8_t *prow = active + (i / ps) * gw, *qrow = active + ((i + term.dy) / ps) * gw;
      const std::int64_t j_end = w - term.j_hi_minus;
      for (std::int64_t pc = 0; pc < gw; ++pc) {
        const std::int64_t j0 = std::max<std::int64_t>(pc * ps, term.j_lo), j1 = std::min(pc * ps + ps, j_end);
        if (j0 >= j1) continue;
        if (prow[pc]) {  // p's patch is active: every pair of the run touches it
          if (touching)
            for (std::int64_t j = j0; j < j1; ++j) f(i * w + j, (i + term.dy) * w + j + term.dx);
          continue;
        }
        // q = (i + dy, j + dx) lies in patch column pc, or in pc - 1 / pc + 1 at the run's first / last pixel
        const bool left = term.dx < 0 && pc > 0 && qrow[pc - 1], right = term.dx > 0 && pc + 1 < gw && qrow[pc + 1];
        if (touching && !qrow[pc] && !left && !right) continue;  // no pair of the run touches an active patch
        for (std::int64_t j = j0; j < j1; ++j) {
          const std::int64_t qj = j + term.dx;
          const bool q_on = qj < pc * ps ? left : qj >= pc * ps + ps ? right : qrow[pc] != 0;
          if (q_on == touching) f(i * w + j, (i + term.dy) * w + qj);
        }
      }
    }
}

// The active patches of each image of `active` as a [B, grid * grid] mask (1 = active).
inline std::vector<std::uint8_t> patch_mask(const TokenIndex& active, std::int64_t b, std::int64_t patches) {
  active.validate(b, patches);
  std::vector<std::uint8_t> m(static_cast<std::size_t>(b * patches), 0);
  for (std::int64_t i = 0; i < b; ++i)
    for (std::int64_t k = 0; k < active.count; ++k) m[static_cast<std::size_t>(i * patches + active.at(i, k))] = 1;
  return m;
}

// Checks images [B, C, H, W] with H, W multiples of the patch size ps and active a keep set for its patch grid.
inline void tv_active_check(const Tensor<Cpu>& images, std::int64_t ps, const char* what) {
  check_rank(images, 4, what);
  if (ps >= 1 && images.dim(2) % ps == 0 && images.dim(3) % ps == 0) return;  // (the shape formatted on failure only)
  check(false, what, ": images ", images.shape().str(), " are not a grid of ", ps, "-pixel patches");
}
}  // namespace detail

// Per-image TV of SMI Eq. 2, and (if dimages given) dimages[b] += weight_b * dTV_b/dX.
inline std::vector<double> total_variation_per_image(const Tensor<Cpu>& images, Tensor<Cpu>* dimages = nullptr,
                                                     float grad_weight = 1.0f) {
  check_rank(images, 4, "total_variation: images");
  if (dimages) check_shape(*dimages, images.shape(), "total_variation: d_images");
  const std::int64_t b = images.dim(0), c = images.dim(1), h = images.dim(2), w = images.dim(3), hw = h * w;
  std::vector<double> tv(static_cast<std::size_t>(b), 0.0);
  cpu::parallel_for(b, [&](std::int64_t n) {
    const float* x = images.data() + n * c * hw;
    float* g = dimages ? dimages->data() + n * c * hw : nullptr;
    double acc = 0.0;
    for (const auto& term : detail::kTvTerms) {
      // the row index i runs over 1..H-1 (0-based), its upper neighbour is row i - 1 (dy = -1) or i (dy = 0)
      const std::int64_t i0 = 1;
      for (std::int64_t i = i0; i < h; ++i)
        for (std::int64_t j = term.j_lo; j < w - term.j_hi_minus; ++j)
          acc += detail::tv_pair(x, g, c, hw, i * w + j, (i + term.dy) * w + (j + term.dx), grad_weight);
    }
    tv[static_cast<std::size_t>(n)] = acc;
  });
  return tv;
}

// The split of total_variation_per_image by a keep set of patches (size ps) for an optimiser that steps only the
// active patches' pixels (the inversion engine): the pairs that touch an active patch change every step, the others
// only when the active set does.
// requires: images [B, C, H, W], H and W multiples of ps; active a keep set for (B, (H / ps) * (W / ps)).
// ensures:  returns per image the sum over the pairs that touch an active patch (touching) or over those that touch
//           none (!touching), each in the full loop's order; with dimages (touching only), adds those pairs'
//           gradient, so dimages at every active pixel gets exactly what total_variation_per_image adds there (the
//           pixels of inactive patches get only their part from the border pairs).
//           touching + !touching = total_variation_per_image up to double rounding of the two partial sums.
inline std::vector<double> total_variation_per_image_near(const Tensor<Cpu>& images, const TokenIndex& active,
                                                          std::int64_t ps, bool touching,
                                                          Tensor<Cpu>* dimages = nullptr, float grad_weight = 1.0f) {
  detail::tv_active_check(images, ps, "total_variation (active patches): images");
  if (dimages) check_shape(*dimages, images.shape(), "total_variation (active patches): d_images");
  check(touching || !dimages, "total_variation (active patches): the gradient comes from the touching pairs only");
  const std::int64_t b = images.dim(0), c = images.dim(1), h = images.dim(2), w = images.dim(3), hw = h * w;
  const std::int64_t patches = (h / ps) * (w / ps);
  const std::vector<std::uint8_t> mask = detail::patch_mask(active, b, patches);
  if (active.count == patches)  // every pair touches an active patch (DMI, every method's first stage)
    return touching ? total_variation_per_image(images, dimages, grad_weight) : std::vector<double>(b, 0.0);
  std::vector<double> tv(static_cast<std::size_t>(b), 0.0);
  cpu::parallel_for(b, [&](std::int64_t n) {
    const float* x = images.data() + n * c * hw;
    float* g = dimages ? dimages->data() + n * c * hw : nullptr;
    double acc = 0.0;
    detail::for_each_tv_pair_near(h, w, ps, mask.data() + n * patches, touching, [&](std::int64_t p, std::int64_t q) {
      acc += detail::tv_pair(x, g, c, hw, p, q, grad_weight);
    });
    tv[static_cast<std::size_t>(n)] = acc;
  });
  return tv;
}

// weight * mean_b TV(image_b); dimages += its gradient.
inline float total_variation(const Tensor<Cpu>& images, float weight, Tensor<Cpu>* dimages = nullptr) {
  const auto b = static_cast<double>(images.dim(0));
  const auto tv = total_variation_per_image(images, dimages, static_cast<float>(weight / b));
  double s = 0.0;
  for (double v : tv) s += v;
  return static_cast<float>(weight * s / b);
}

// weight * mean_b ||image_b||_2^2 (squared, so it is smooth at 0); dimages += 2 * weight / B * x.
inline float l2_prior(const Tensor<Cpu>& images, float weight, Tensor<Cpu>* dimages = nullptr) {
  detail::l2_prior_check(images, dimages);
  const double b = static_cast<double>(images.dim(0));
  double s = 0.0;
  const float* x = images.data();
  const float k = static_cast<float>(2.0 * weight / b);
  for (std::int64_t i = 0; i < images.numel(); ++i) {
    s += fn::L2Term{}.value(x[i]);
    if (dimages) (*dimages)[i] += fn::L2Term{}.grad(x[i], k);
  }
  return static_cast<float>(weight * s / b);
}

namespace detail {
// The four neighbour differences of SMI's (and DeepInversion's) reference code, synthesis/smi.py
// get_image_prior_losses: d = x[p] - x[q] with, 0-based row i and column j of one [H, W] plane,
//   diff1: p = (i, j),     q = (i, j + 1)      i < H,     j < W - 1
//   diff2: p = (i, j),     q = (i + 1, j)      i < H - 1, j < W
//   diff3: p = (i + 1, j), q = (i, j + 1)      i < H - 1, j < W - 1
//   diff4: p = (i, j),     q = (i + 1, j + 1)  i < H - 1, j < W - 1
// f(p, q) is called with plane-relative flat indices, row-major over (i, j).
template <class F>
void for_each_official_tv_pair(int direction, std::int64_t h, std::int64_t w, F&& f) {
  const std::int64_t rows = direction == 0 ? h : h - 1, cols = direction == 1 ? w : w - 1;
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) {
      switch (direction) {
        case 0: f(i * w + j, i * w + j + 1); break;
        case 1: f(i * w + j, (i + 1) * w + j); break;
        case 2: f((i + 1) * w + j, i * w + j + 1); break;
        default: f(i * w + j, (i + 1) * w + j + 1); break;
      }
    }
}
// The number of differences of one direction in a [B, C, H, W] batch (the mean's divisor of tv_official_l1).
inline std::int64_t official_tv_count(int direction, std::int64_t planes, std::int64_t h, std::int64_t w) {
  return planes * (direction == 0 ? h : h - 1) * (direction == 1 ? w : w - 1);
}
inline void official_tv_check(const Tensor<Cpu>& images, const Tensor<Cpu>* dimages, const char* what) {
  check_rank(images, 4, what);
  check(images.dim(0) > 0 && images.dim(2) >= 2 && images.dim(3) >= 2, what, ": images ", images.shape().str(),
        " need a batch and H, W >= 2");
  if (dimages)
    check(dimages->shape() == images.shape(), what, ": d_images ", dimages->shape().str(), " must match images ",
          images.shape().str());
}
}  // namespace detail

// SMI's reference TV (synthesis/smi.py get_image_prior_losses, loss_var_l2; DeepInversion's deepinversion.py
// get_image_prior_losses is the same): sum over the four directions of the Frobenius norm of that direction's
// differences over the WHOLE batch tensor (one square root per direction, not one per pixel as Eq. 2), no batch
// mean; every difference counts (no skipped first row or column).
// requires: images [B, C, H, W], H, W >= 2. ensures: returns weight * sum_k ||diff_k||_F; dimages += its gradient
// (weight * diff_k / ||diff_k||_F at p, minus at q; a direction whose norm is 0 adds nothing).
inline float tv_official_l2(const Tensor<Cpu>& images, float weight, Tensor<Cpu>* dimages = nullptr) {
  detail::official_tv_check(images, dimages, "tv_official_l2");
  const std::int64_t planes = images.dim(0) * images.dim(1), h = images.dim(2), w = images.dim(3), hw = h * w;
  double total = 0.0;
  for (int dir = 0; dir < 4; ++dir) {
    std::vector<double> part(static_cast<std::size_t>(planes), 0.0);  // per plane, summed in order: deterministic
    cpu::parallel_for(planes, [&](std::int64_t pl) {
      const float* x = images.data() + pl * hw;
      double s = 0.0;
      detail::for_each_official_tv_pair(dir, h, w, [&](std::int64_t p, std::int64_t q) {
        const double d = static_cast<double>(x[p]) - x[q];
        s += d * d;
      });
      part[static_cast<std::size_t>(pl)] = s;
    });
    double ss = 0.0;
    for (double v : part) ss += v;
    const double norm = std::sqrt(ss);
    total += norm;
    if (dimages && norm > 0.0) {
      const double k = weight / norm;
      cpu::parallel_for(planes, [&](std::int64_t pl) {
        const float* x = images.data() + pl * hw;
        float* g = dimages->data() + pl * hw;
        detail::for_each_official_tv_pair(dir, h, w, [&](std::int64_t p, std::int64_t q) {
          const auto d = static_cast<float>(k * (static_cast<double>(x[p]) - x[q]));
          g[p] += d;
          g[q] -= d;
        });
      });
    }
  }
  return static_cast<float>(weight * total);
}

// SMI's reference L1 TV (synthesis/smi.py get_image_prior_losses, loss_var_l1: the /255 and *255 cancel): sum
// over the four directions of the mean |difference| over the whole batch tensor.
// requires: images [B, C, H, W], H, W >= 2. ensures: returns weight * sum_k mean |diff_k|; dimages += its
// gradient (weight * sign(d) / count_k at p, minus at q; sign(0) = 0, torch's abs subgradient).
inline float tv_official_l1(const Tensor<Cpu>& images, float weight, Tensor<Cpu>* dimages = nullptr) {
  detail::official_tv_check(images, dimages, "tv_official_l1");
  const std::int64_t planes = images.dim(0) * images.dim(1), h = images.dim(2), w = images.dim(3), hw = h * w;
  double total = 0.0;
  for (int dir = 0; dir < 4; ++dir) {
    const double count = static_cast<double>(detail::official_tv_count(dir, planes, h, w));
    const double k = weight / count;
    std::vector<double> part(static_cast<std::size_t>(planes), 0.0);
    cpu::parallel_for(planes, [&](std::int64_t pl) {
      const float* x = images.data() + pl * hw;
      float* g = dimages ? dimages->data() + pl * hw : nullptr;
      double s = 0.0;
      detail::for_each_official_tv_pair(dir, h, w, [&](std::int64_t p, std::int64_t q) {
        const double d = static_cast<double>(x[p]) - x[q];
        s += std::abs(d);
        if (g && d != 0.0) {
          const auto gd = static_cast<float>(d > 0.0 ? k : -k);
          g[p] += gd;
          g[q] -= gd;
        }
      });
      part[static_cast<std::size_t>(pl)] = s;
    });
    double s = 0.0;
    for (double v : part) s += v;
    total += s / count;
  }
  return static_cast<float>(weight * total);
}

// SMI's reference L2 prior (synthesis/smi.py: loss_l2 = torch.norm(inputs, 2)): the Frobenius norm of the whole
// batch tensor, not squared, no batch mean. (l2_prior above is the squared per-image form.)
// requires: images with a batch. ensures: returns weight * ||images||_F; dimages += weight * x / ||images||_F
// (nothing when the norm is 0).
inline float l2_official_norm(const Tensor<Cpu>& images, float weight, Tensor<Cpu>* dimages = nullptr) {
  check(images.rank() >= 1 && images.dim(0) > 0, "l2_official_norm: images shape ", images.shape().str(),
        " has no batch");
  if (dimages) check_shape(*dimages, images.shape(), "l2_official_norm: d_images");
  double s = 0.0;
  for (std::int64_t i = 0; i < images.numel(); ++i) s += static_cast<double>(images[i]) * images[i];
  const double norm = std::sqrt(s);
  if (dimages && norm > 0.0) {
    const double k = weight / norm;
    for (std::int64_t i = 0; i < images.numel(); ++i) (*dimages)[i] += static_cast<float>(k * images[i]);
  }
  return static_cast<float>(weight * norm);
}

// GradViT Eq. 8, the patch prior: squared differences across the borders of the P x P patch grid,
//   R_patch(x) = sum_{k=1}^{H/P-1} ||x[:, P k, :, :] - x[:, P k - 1, :, :]||^2
//              + sum_{k=1}^{W/P-1} ||x[:, :, P k, :] - x[:, :, P k - 1, :]||^2
// (rows P k - 1 and P k are the last row of one patch and the first of the next; the norm runs over every
// column and channel). Eq. 8 sums over the whole batch; mint divides by B like the other priors here (a constant
// factor, absorbed in the weight alpha_1; docs/gradvit.md).
// requires: images [B, C, H, W] with H, W divisible by patch (patch >= 1).
// ensures:  returns weight * mean_b R_patch(image_b); dimages += its gradient.
inline float patch_prior(const Tensor<Cpu>& images, int patch, float weight, Tensor<Cpu>* dimages = nullptr) {
  check_rank(images, 4, "patch_prior: images");
  const std::int64_t b = images.dim(0), c = images.dim(1), h = images.dim(2), w = images.dim(3);
  check(patch >= 1 && h % patch == 0 && w % patch == 0, "patch_prior: patch size ", patch,
        " does not divide the image size ", h, " x ", w);
  check(b > 0, "patch_prior: empty batch");
  if (dimages) check_shape(*dimages, images.shape(), "patch_prior: d_images");
  const double k = 2.0 * weight / static_cast<double>(b);
  double s = 0.0;
  auto pair = [&](std::int64_t p, std::int64_t q) {  // flat indices of the two pixels across a border
    const double d = static_cast<double>(images[p]) - images[q];
    s += d * d;
    if (dimages) {
      (*dimages)[p] += static_cast<float>(k * d);
      (*dimages)[q] -= static_cast<float>(k * d);
    }
  };
  for (std::int64_t plane = 0; plane < b * c; ++plane) {
    const std::int64_t o = plane * h * w;
    for (std::int64_t r = patch; r < h; r += patch)  // horizontal borders: rows r - 1 | r
      for (std::int64_t j = 0; j < w; ++j) pair(o + r * w + j, o + (r - 1) * w + j);
    for (std::int64_t i = 0; i < h; ++i)  // vertical borders: columns q - 1 | q
      for (std::int64_t q = patch; q < w; q += patch) pair(o + i * w + q, o + i * w + q - 1);
  }
  return static_cast<float>(weight * s / static_cast<double>(b));
}

}  // namespace mint::nn
