// Helpers of the report tests (tests/report/test_*.cpp): a temporary folder and synthetic sparse images.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "mint/core/normalization.hpp"
#include "mint/core/rng.hpp"
#include "mint/inversion/sparse_image.hpp"

namespace mint_report_test {

// A unique folder in the temp dir, removed with everything in it when the object dies.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() /
           ("mint_report_test_" + std::to_string(rd()) + "_" + std::to_string(rd()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] std::string str(const std::string& child = "") const {
    return child.empty() ? path.string() : (path / child).string();
  }
};

// `b` images [c, h, w] with pixels uniform over each channel's valid range widened by 20% (so clamping happens),
// labels i % classes, and masks keeping patch k of image i unless (i + k) % 3 == 0.
inline std::vector<mint::SparseImage> images(std::int64_t b, std::int64_t c, std::int64_t h, std::int64_t w,
                                             std::int64_t patch, const mint::Normalization& norm, int classes,
                                             std::uint64_t seed = 1) {
  std::vector<mint::SparseImage> out;
  const std::int64_t n = (h / patch) * (w / patch);
  std::uint64_t draw = 0;
  for (std::int64_t i = 0; i < b; ++i) {
    mint::SparseImage s{mint::Tensor<>::empty(mint::Shape{c, h, w}), mint::Tensor<>::empty(mint::Shape{n}),
                        static_cast<int>(i % classes), 0};
    for (std::int64_t k = 0; k < s.pixels.numel(); ++k) {
      const std::int64_t ch = k / (h * w);
      const float lo = norm.lo(ch), hi = norm.hi(ch), pad = 0.2f * (hi - lo);
      s.pixels[k] = lo - pad + mint::philox_uniform(seed, 0, draw++) * (hi - lo + 2 * pad);
    }
    for (std::int64_t k = 0; k < n; ++k) s.mask[k] = (i + k) % 3 == 0 ? 0.0f : 1.0f;
    out.push_back(s);
  }
  return out;
}

// The byte a denormalised model-space value should become, computed independently of mint:
// round(clamp(x * std + mean, 0, 1) * 255).
inline int expected_byte(float x, const mint::Normalization& norm, std::int64_t ch) {
  const double u = std::clamp(static_cast<double>(x) * norm.std[static_cast<std::size_t>(ch)] +
                                  norm.mean[static_cast<std::size_t>(ch)], 0.0, 1.0);
  return static_cast<int>(std::lround(u * 255.0));
}

}  // namespace mint_report_test
