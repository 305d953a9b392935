// mint/tasks/image_subspace.hpp -- a linear generative image prior: the top-k principal components of a public
// image set (PCA), so that an attack optimises k coordinates per image instead of every pixel.
//
// x = mean + w B, with B's row j = sqrt(lambda_j) u_j (u_j the j-th principal direction, lambda_j its variance):
// w ~ N(0, I) draws from the Gaussian fitted to the set, w = 0 is the set's mean image. Gradient-inversion
// attacks that assume public data of the victim's distribution use a generative model of it as the image prior
// (GGL, Li et al. 2022; GIAS, Jeon et al. 2021: a GAN); this is its linear, closed-form member, which needs no
// training and no pretrained weights. The attack (gradvit::AttackOptions::subspace) runs Adam on w and the chain
// rule d loss / d w = (d loss / d x) B^T. docs/gradvit.md ("The subspace prior") has what it does at batch 8.
//
// fit_image_subspace centres the set, forms the covariance with the library's GEMM (float, the products of the
// centred images) and diagonalises it in double with Eigen's SelfAdjointEigenSolver: O(N D^2 + D^3) for N images
// of D values, so D is limited (kMaxDim) -- enough for 28 x 28 and 3 x 32 x 32, not for 224 x 224 images, where a
// randomised or streaming PCA would be needed.
#pragma once

#include <Eigen/Core>
#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "mint/backend/cpu/gemm.hpp"
#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"
#include "mint/inversion/clip_range.hpp"

namespace mint::tasks {

struct ImageSubspace {
  static constexpr std::int64_t kMaxDim = 4096;  // the covariance is D x D doubles: 128 MiB at the limit
  Shape image = {};                   // [C, H, W] of one image
  Tensor<Cpu> mean = {};              // [D], D = C H W
  Tensor<Cpu> basis = {};             // [k, D]: row j = sqrt(lambda_j) u_j
  std::vector<double> variance = {};  // lambda_1 >= ... >= lambda_k
  double explained = 0.0;             // sum of the kept lambda over the set's total variance

  [[nodiscard]] std::int64_t k() const { return basis.dim(0); }
  [[nodiscard]] std::int64_t dim() const { return basis.dim(1); }

  // x [B, C, H, W] = mean + w B (not clipped). requires: w [B, k].
  [[nodiscard]] Tensor<Cpu> decode(const Tensor<Cpu>& w) const {
    check(w.rank() == 2 && w.dim(1) == k(), "ImageSubspace::decode: coordinates ", w.shape().str(), ", expected [B, ",
          k(), "]");
    const std::int64_t b = w.dim(0);
    auto x = Tensor<Cpu>::empty(Shape{b, image[0], image[1], image[2]});
    for (std::int64_t i = 0; i < b; ++i) std::copy(mean.data(), mean.data() + dim(), x.data() + i * dim());
    cpu::gemm(false, false, b, dim(), k(), 1.0f, w.data(), k(), basis.data(), dim(), 1.0f, x.data(), dim());
    return x;
  }
  // The coordinates of x's orthogonal projection onto the subspace: w_j = <x - mean, u_j> / sqrt(lambda_j)
  // = <x - mean, B_j> / lambda_j. requires: x [B, C, H, W] of this image shape.
  [[nodiscard]] Tensor<Cpu> encode(const Tensor<Cpu>& x) const {
    check_images(x, "ImageSubspace::encode");
    const std::int64_t b = x.dim(0);
    auto c = x.clone();
    for (std::int64_t i = 0; i < b; ++i)
      for (std::int64_t d = 0; d < dim(); ++d) c[i * dim() + d] -= mean[d];
    auto w = Tensor<Cpu>::empty(Shape{b, k()});
    cpu::gemm(false, true, b, k(), dim(), 1.0f, c.data(), dim(), basis.data(), dim(), 0.0f, w.data(), k());
    for (std::int64_t i = 0; i < b; ++i)
      for (std::int64_t j = 0; j < k(); ++j) w[i * k() + j] /= static_cast<float>(variance[static_cast<std::size_t>(j)]);
    return w;
  }
  // d loss / d w [B, k] for x = clip(decode(w)) to `range`: (d_x, zero where the unclipped value `raw` lies outside
  // the range) B^T. requires: d_x and raw [B, C, H, W] of this image shape, range for C channels.
  [[nodiscard]] Tensor<Cpu> pull_back(const Tensor<Cpu>& d_x, const Tensor<Cpu>& raw, const ClipRange& range) const {
    check_images(d_x, "ImageSubspace::pull_back: d_x");
    check_shape(raw, d_x.shape(), "ImageSubspace::pull_back: unclipped images");
    check(range.channels == image[0], "ImageSubspace::pull_back: a clip range for ", range.channels,
          " channels, images have ", image[0]);
    const std::int64_t b = d_x.dim(0), hw = image[1] * image[2];
    auto g = d_x.clone();
    for (std::int64_t i = 0; i < g.numel(); ++i) {
      const std::int64_t ch = (i / hw) % image[0];
      if (raw[i] < range.lo[ch] || raw[i] > range.hi[ch]) g[i] = 0.0f;
    }
    auto d_w = Tensor<Cpu>::empty(Shape{b, k()});
    cpu::gemm(false, true, b, k(), dim(), 1.0f, g.data(), dim(), basis.data(), dim(), 0.0f, d_w.data(), k());
    return d_w;
  }

 private:
  void check_images(const Tensor<Cpu>& x, const char* who) const {
    check(x.rank() == 4 && x.dim(1) == image[0] && x.dim(2) == image[1] && x.dim(3) == image[2], who, ": images ",
          x.shape().str(), ", the subspace's are [B, ", image[0], ", ", image[1], ", ", image[2], "]");
  }
};

// The top-k principal components of `images` [N, C, H, W] (model space; each image one sample).
// requires: N >= 2, 1 <= k <= min(D, N - 1), D = C H W <= ImageSubspace::kMaxDim, every value finite, and the
// set spanning at least k dimensions: a component of variance <= 1e-6 of the largest is refused (the covariance is
// accumulated in float, whose rounding alone gives eigenvalues of about 1e-7 of the largest: such a direction is
// noise, and its sqrt(lambda) scaling would not be a prior).
inline ImageSubspace fit_image_subspace(const Tensor<Cpu>& images, std::int64_t k) {
  const char* who = "fit_image_subspace";
  check(images.rank() == 4, who, ": images ", images.shape().str(), ", expected [N, C, H, W]");
  const std::int64_t n = images.dim(0), d = images.numel() / std::max<std::int64_t>(n, 1);
  check(n >= 2, who, ": ", n, " image(s); a covariance needs at least 2");
  check(d <= ImageSubspace::kMaxDim, who, ": images of ", d, " values; at most ", ImageSubspace::kMaxDim,
        " are supported (the covariance is D x D)");
  check(k >= 1 && k <= std::min(d, n - 1), who, ": k = ", k, " components, must be in [1, min(D = ", d,
        ", N - 1 = ", n - 1, ")]");
  for (std::int64_t i = 0; i < images.numel(); ++i)
    check(std::isfinite(images[i]), who, ": images[", i, "] = ", images[i], " is not finite");
  ImageSubspace s;
  s.image = Shape{images.dim(1), images.dim(2), images.dim(3)};
  std::vector<double> mean(static_cast<std::size_t>(d), 0.0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < d; ++j) mean[static_cast<std::size_t>(j)] += images[i * d + j];
  s.mean = Tensor<Cpu>::empty(Shape{d});
  for (std::int64_t j = 0; j < d; ++j) {
    mean[static_cast<std::size_t>(j)] /= static_cast<double>(n);
    s.mean[j] = static_cast<float>(mean[static_cast<std::size_t>(j)]);
  }
  auto centred = images.clone();
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < d; ++j)
      centred[i * d + j] = static_cast<float>(images[i * d + j] - mean[static_cast<std::size_t>(j)]);
  auto cov = Tensor<Cpu>::empty(Shape{d, d});
  cpu::gemm(true, false, d, d, n, 1.0f / static_cast<float>(n - 1), centred.data(), d, centred.data(), d, 0.0f,
            cov.data(), d);
  Eigen::MatrixXd c(d, d);
  for (std::int64_t i = 0; i < d; ++i)
    for (std::int64_t j = 0; j < d; ++j) c(i, j) = 0.5 * (double{cov[i * d + j]} + double{cov[j * d + i]});
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(c);
  check(eig.info() == Eigen::Success, who, ": the eigen-decomposition of the covariance did not converge");
  const Eigen::VectorXd& lambda = eig.eigenvalues();  // ascending
  const double top = lambda(d - 1), total = std::max(lambda.sum(), 0.0);
  check(top > 0.0, who, ": the images do not vary (the covariance is zero)");
  s.basis = Tensor<Cpu>::empty(Shape{k, d});
  double kept = 0.0;
  for (std::int64_t j = 0; j < k; ++j) {
    const double l = lambda(d - 1 - j);
    check(l > 1e-6 * top, who, ": the images span only ", j, " dimension(s) (component ", j + 1, " has variance ",
          l, " against ", top, "); ask for k <= ", j);
    s.variance.push_back(l);
    kept += l;
    const double scale = std::sqrt(l);
    for (std::int64_t i = 0; i < d; ++i) s.basis[j * d + i] = static_cast<float>(scale * eig.eigenvectors()(i, d - 1 - j));
  }
  s.explained = total > 0.0 ? kept / total : 1.0;
  return s;
}

}  // namespace mint::tasks
