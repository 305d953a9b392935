// mint/tasks/metrics.hpp -- image-reconstruction metrics: PSNR and SSIM, per image of an NCHW batch.
//
// PSNR = 10 log10(L^2 / MSE), MSE over all C*H*W values of the image, L = data_range (the span of valid pixel
// values: 1 for [0, 1] images, 255 for bytes; pass the range of the space the images are in, e.g. 1/std for
// Fashion-MNIST normalised by std). Identical images give +infinity.
//
// SSIM (Wang, Bovik, Sheikh, Simoncelli 2004): an 11 x 11 Gaussian window with sigma 1.5 (normalised to sum 1),
// K1 = 0.01, K2 = 0.03, C1 = (K1 L)^2, C2 = (K2 L)^2; local means, variances and covariance are the window's
// weighted (population) moments; the SSIM map is averaged over the "valid" positions (windows fully inside the
// image), per channel, then over channels. This equals skimage.metrics.structural_similarity(a, b,
// gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=L, channel_axis=0). Images must be
// at least 11 x 11. Identical images give exactly 1 (up to float rounding of the double accumulation).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "mint/core/tensor.hpp"

namespace mint::tasks {

namespace detail {
inline void check_pair(const Tensor<Cpu>& a, const Tensor<Cpu>& b, float data_range, const char* op) {
  check(a.rank() == 4, op, ": images must be [N, C, H, W], got shape ", a.shape().str());
  check(a.shape() == b.shape(), op, ": shapes differ: ", a.shape().str(), " vs ", b.shape().str());
  check(data_range > 0.0f && std::isfinite(data_range), op, ": data_range must be finite and > 0, got ", data_range);
}
}  // namespace detail

// requires: a, b [N, C, H, W] of the same shape; data_range > 0.
// ensures:  [N] PSNR in dB per image (+inf where the images are identical).
inline std::vector<double> psnr(const Tensor<Cpu>& a, const Tensor<Cpu>& b, float data_range) {
  detail::check_pair(a, b, data_range, "psnr");
  const std::int64_t n = a.dim(0), per = a.numel() / std::max<std::int64_t>(n, 1);
  std::vector<double> out(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    double se = 0.0;
    for (std::int64_t j = i * per; j < (i + 1) * per; ++j) se += (double(a[j]) - b[j]) * (double(a[j]) - b[j]);
    const double mse = se / static_cast<double>(per);
    out[static_cast<std::size_t>(i)] = mse == 0.0 ? std::numeric_limits<double>::infinity()
                                                  : 10.0 * std::log10(double(data_range) * data_range / mse);
  }
  return out;
}

struct SsimOptions {
  int window = 11;
  double sigma = 1.5, k1 = 0.01, k2 = 0.03;
};

// requires: a, b [N, C, H, W] of the same shape, H, W >= window; data_range > 0.
// ensures:  [N] mean SSIM per image (mean over channels of the mean over valid window positions).
inline std::vector<double> ssim(const Tensor<Cpu>& a, const Tensor<Cpu>& b, float data_range, const SsimOptions& o = {}) {
  detail::check_pair(a, b, data_range, "ssim");
  const std::int64_t n = a.dim(0), c = a.dim(1), h = a.dim(2), w = a.dim(3), k = o.window;
  check(k >= 1 && h >= k && w >= k, "ssim: images of shape ", a.shape().str(), " are smaller than the ", k, " x ", k,
        " window");
  std::vector<double> g(static_cast<std::size_t>(k));
  double gs = 0.0;
  for (std::int64_t i = 0; i < k; ++i) {
    const double r = static_cast<double>(i) - static_cast<double>(k - 1) / 2.0;
    g[static_cast<std::size_t>(i)] = std::exp(-r * r / (2.0 * o.sigma * o.sigma));
    gs += g[static_cast<std::size_t>(i)];
  }
  for (auto& v : g) v /= gs;  // separable: the 2-D window g g^T sums to 1
  const double c1 = (o.k1 * data_range) * (o.k1 * data_range), c2 = (o.k2 * data_range) * (o.k2 * data_range);
  const std::int64_t oh = h - k + 1, ow = w - k + 1;
  std::vector<double> out(static_cast<std::size_t>(n));
  // Five maps (x, y, xx, yy, xy) filtered separably: rows first into [H, ow], then columns.
  std::vector<double> tmp(static_cast<std::size_t>(5 * h * ow));
  for (std::int64_t i = 0; i < n; ++i) {
    double acc = 0.0;
    for (std::int64_t ch = 0; ch < c; ++ch) {
      const float* pa = a.data() + ((i * c + ch) * h) * w;
      const float* pb = b.data() + ((i * c + ch) * h) * w;
      for (std::int64_t y = 0; y < h; ++y)
        for (std::int64_t x = 0; x < ow; ++x) {
          double s[5] = {0, 0, 0, 0, 0};
          for (std::int64_t j = 0; j < k; ++j) {
            const double wa = pa[y * w + x + j], wb = pb[y * w + x + j], gj = g[static_cast<std::size_t>(j)];
            s[0] += gj * wa, s[1] += gj * wb, s[2] += gj * wa * wa, s[3] += gj * wb * wb, s[4] += gj * wa * wb;
          }
          for (int m = 0; m < 5; ++m) tmp[static_cast<std::size_t>((m * h + y) * ow + x)] = s[m];
        }
      double sum = 0.0;
      for (std::int64_t y = 0; y < oh; ++y)
        for (std::int64_t x = 0; x < ow; ++x) {
          double s[5] = {0, 0, 0, 0, 0};
          for (std::int64_t j = 0; j < k; ++j)
            for (int m = 0; m < 5; ++m) s[m] += g[static_cast<std::size_t>(j)] * tmp[static_cast<std::size_t>((m * h + y + j) * ow + x)];
          const double mx = s[0], my = s[1];
          const double sxx = s[2] - mx * mx, syy = s[3] - my * my, sxy = s[4] - mx * my;
          sum += ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2));
        }
      acc += sum / static_cast<double>(oh * ow);
    }
    out[static_cast<std::size_t>(i)] = acc / static_cast<double>(c);
  }
  return out;
}

}  // namespace mint::tasks
