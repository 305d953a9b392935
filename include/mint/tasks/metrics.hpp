// mint/tasks/metrics.hpp -- image-reconstruction metrics: PSNR, SSIM and GradViT's FFT2D, per image of an NCHW
// batch, and optimal_assignment / match_images (the Hungarian algorithm) to pair each recovered image with its
// original before measuring (a gradient attack returns the batch in no particular order).
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
#include <complex>
#include <cstdint>
#include <limits>
#include <vector>

#include <unsupported/Eigen/FFT>

#include "mint/core/tensor.hpp"

namespace mint::tasks {

namespace detail {
inline void check_pair(const Tensor<Cpu>& a, const Tensor<Cpu>& b, float data_range, const char* op) {
  check(a.rank() == 4, op, ": images must be [N, C, H, W], got shape ", a.shape().str());
  check(a.shape() == b.shape(), op, ": shapes differ: ", a.shape().str(), " vs ", b.shape().str());
  check(data_range > 0.0f && std::isfinite(data_range), op, ": data_range must be finite and > 0, got ", data_range);
}
}  // namespace detail

// Maps normalised images (x - mean) / std back to [0, 1] pixels, clipping (the scale the metrics below use).
inline Tensor<Cpu> denormalize01(const Tensor<Cpu>& x, float mean, float std) {
  auto y = Tensor<Cpu>::empty(x.shape());
  for (std::int64_t i = 0; i < x.numel(); ++i) y[i] = std::clamp(x[i] * std + mean, 0.0f, 1.0f);
  return y;
}

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

// GradViT's FFT2D ("cosine similarity in the Fourier space", lower is better; docs/gradvit.md): per image,
//   FFT2D(a, b) = 1 - sum |A| |B| / ( sqrt(sum |A|^2) sqrt(sum |B|^2) ),
// A, B the 2-D discrete Fourier transforms over (H, W) of each channel, the sums over every channel and
// frequency. Magnitudes, not complex values: the DFT is unitary up to a constant, so the cosine of the complex
// spectra would equal the cosine of the pixels (Parseval) and say nothing a pixel metric does not. The value is
// in [0, 1]; it ignores phase, so it is invariant to circular shifts of an image. Images are taken as given
// (pass them on the [0, 1] pixel scale: the DC term depends on the offset). If exactly one image is all zeros
// the value is 1, if both are it is 0.
// requires: a, b [N, C, H, W] of the same shape.
inline std::vector<double> fft2d(const Tensor<Cpu>& a, const Tensor<Cpu>& b) {
  detail::check_pair(a, b, 1.0f, "fft2d");
  const std::int64_t n = a.dim(0), c = a.dim(1), h = a.dim(2), w = a.dim(3);
  // separable 2-D DFT with Eigen's FFT (kissfft): each row (real input, full spectrum), then each column
  Eigen::FFT<double> fft;
  std::vector<double> row(static_cast<std::size_t>(w));
  std::vector<std::complex<double>> t(static_cast<std::size_t>(h * w)), col(static_cast<std::size_t>(h)),
      colf(col.size());
  auto magnitudes = [&](const float* x, std::vector<double>& mag) {
    for (std::int64_t i = 0; i < h; ++i) {
      std::copy(x + i * w, x + (i + 1) * w, row.begin());
      fft.fwd(t.data() + i * w, row.data(), w);
    }
    for (std::int64_t v = 0; v < w; ++v) {
      for (std::int64_t i = 0; i < h; ++i) col[static_cast<std::size_t>(i)] = t[static_cast<std::size_t>(i * w + v)];
      fft.fwd(colf.data(), col.data(), h);
      for (std::int64_t u = 0; u < h; ++u) mag[static_cast<std::size_t>(u * w + v)] = std::abs(colf[static_cast<std::size_t>(u)]);
    }
  };
  std::vector<double> out(static_cast<std::size_t>(n)), ma(static_cast<std::size_t>(h * w)), mb(ma.size());
  for (std::int64_t i = 0; i < n; ++i) {
    double ab = 0.0, aa = 0.0, bb = 0.0;
    for (std::int64_t ch = 0; ch < c; ++ch) {
      magnitudes(a.data() + (i * c + ch) * h * w, ma);
      magnitudes(b.data() + (i * c + ch) * h * w, mb);
      for (std::size_t k = 0; k < ma.size(); ++k) ab += ma[k] * mb[k], aa += ma[k] * ma[k], bb += mb[k] * mb[k];
    }
    out[static_cast<std::size_t>(i)] = (aa == 0.0 && bb == 0.0) ? 0.0 : (aa == 0.0 || bb == 0.0) ? 1.0 : 1.0 - ab / std::sqrt(aa * bb);
  }
  return out;
}

// The Hungarian algorithm (Kuhn-Munkres with potentials, O(n^3)): the assignment of n rows to n columns with the
// least total cost. cost is row-major n x n, finite. Returns col with col[i] = the column assigned to row i.
inline std::vector<int> optimal_assignment(const std::vector<double>& cost, int n) {
  check(n >= 1 && cost.size() == static_cast<std::size_t>(n) * static_cast<std::size_t>(n), "optimal_assignment: ",
        cost.size(), " costs for n = ", n, " (need n * n, n >= 1)");
  for (double v : cost) check(std::isfinite(v), "optimal_assignment: a cost is not finite (", v, ")");
  const double inf = std::numeric_limits<double>::infinity();
  const auto N = static_cast<std::size_t>(n);
  // 1-based rows/columns; p[j] = row matched to column j (0 = none); u, v potentials
  std::vector<double> u(N + 1, 0.0), v(N + 1, 0.0);
  std::vector<std::size_t> p(N + 1, 0), way(N + 1, 0);
  for (std::size_t i = 1; i <= N; ++i) {
    p[0] = i;
    std::size_t j0 = 0;
    std::vector<double> minv(N + 1, inf);
    std::vector<char> used(N + 1, 0);
    do {
      used[j0] = 1;
      const std::size_t i0 = p[j0];
      double delta = inf;
      std::size_t j1 = 0;
      for (std::size_t j = 1; j <= N; ++j)
        if (!used[j]) {
          const double cur = cost[(i0 - 1) * N + (j - 1)] - u[i0] - v[j];
          if (cur < minv[j]) minv[j] = cur, way[j] = j0;
          if (minv[j] < delta) delta = minv[j], j1 = j;
        }
      for (std::size_t j = 0; j <= N; ++j)
        if (used[j]) u[p[j]] += delta, v[j] -= delta;
        else minv[j] -= delta;
      j0 = j1;
    } while (p[j0] != 0);
    do {
      const std::size_t j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0 != 0);
  }
  std::vector<int> col(N);
  for (std::size_t j = 1; j <= N; ++j) col[p[j] - 1] = static_cast<int>(j - 1);
  return col;
}

// Pairs each original with a recovered image: the assignment of least total MSE (optimal_assignment on the
// N x N MSE matrix). Returns `recovered` reordered so that image i is the one matched to originals[i].
// requires: recovered, originals [N, C, H, W] of the same shape.
inline Tensor<Cpu> match_images(const Tensor<Cpu>& recovered, const Tensor<Cpu>& originals, std::vector<int>* order = nullptr) {
  detail::check_pair(recovered, originals, 1.0f, "match_images");
  const std::int64_t n = originals.dim(0), per = originals.numel() / std::max<std::int64_t>(n, 1);
  std::vector<double> cost(static_cast<std::size_t>(n * n));
  for (std::int64_t i = 0; i < n; ++i)  // row: original i, column: recovered j
    for (std::int64_t j = 0; j < n; ++j) {
      double se = 0.0;
      for (std::int64_t k = 0; k < per; ++k) {
        const double d = double(originals[i * per + k]) - recovered[j * per + k];
        se += d * d;
      }
      cost[static_cast<std::size_t>(i * n + j)] = se / static_cast<double>(per);
    }
  const auto col = optimal_assignment(cost, static_cast<int>(n));
  auto out = Tensor<Cpu>::empty(recovered.shape());
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t j = col[static_cast<std::size_t>(i)];
    std::copy(recovered.data() + j * per, recovered.data() + (j + 1) * per, out.data() + i * per);
  }
  if (order) *order = col;
  return out;
}

}  // namespace mint::tasks
