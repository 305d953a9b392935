// mint/nn/image_priors.hpp -- image priors on a batch of images [B, C, H, W]: total variation (SMI Eq. 2),
// L2, and GradViT's patch prior on patch borders (Eq. 8). Each returns weight * mean over the batch of the per-image prior and, when asked, ADDS its
// gradient into d_images. Batch mean, so the prior's scale matches cross_entropy's batch mean in Eq. 1.
#pragma once

#include <cmath>
#include <vector>

#include "mint/backend/cpu/parallel.hpp"
#include "mint/backend/functors_plain.hpp"
#include "mint/core/tensor.hpp"

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
        for (std::int64_t j = term.j_lo; j < w - term.j_hi_minus; ++j) {
          const std::int64_t p = i * w + j, q = (i + term.dy) * w + (j + term.dx);
          double s = 0.0;
          for (std::int64_t ch = 0; ch < c; ++ch) {
            const double d = static_cast<double>(x[ch * hw + p]) - x[ch * hw + q];
            s += d * d;
          }
          const double norm = std::sqrt(s);
          acc += norm;
          if (g && norm > 0.0) {
            const double k = grad_weight / norm;
            for (std::int64_t ch = 0; ch < c; ++ch) {
              const float d = static_cast<float>(k * (static_cast<double>(x[ch * hw + p]) - x[ch * hw + q]));
              g[ch * hw + p] += d;
              g[ch * hw + q] -= d;
            }
          }
        }
    }
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
