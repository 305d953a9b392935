// The official-code priors of SMI (synthesis/smi.py get_image_prior_losses, torch.norm(inputs, 2)): values
// against a transcription of the Python slicing, the whole-batch coupling, and gradients by finite differences.
#include "test_util.hpp"

#include <cmath>

#include "mint/nn/image_priors.hpp"

using namespace mint;
using testing::uniform;

namespace official_priors_test {
// smi.py's four slices of x [B, C, H, W], transcribed: diff1 = x[..., :, :-1] - x[..., :, 1:], diff2 = x[..., :-1, :]
// - x[..., 1:, :], diff3 = x[..., 1:, :-1] - x[..., :-1, 1:], diff4 = x[..., :-1, :-1] - x[..., 1:, 1:]. Returns,
// per direction, {sum of squares, sum of |d|, count}.
struct Sums {
  double sq[4] = {}, abs[4] = {}, n[4] = {};
};
Sums slices(const Tensor<>& x) {
  const std::int64_t b = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
  auto at = [&](std::int64_t n, std::int64_t ch, std::int64_t i, std::int64_t j) {
    return static_cast<double>(x[((n * c + ch) * h + i) * w + j]);
  };
  Sums s;
  auto add = [&](int k, double d) { s.sq[k] += d * d, s.abs[k] += std::abs(d), s.n[k] += 1; };
  for (std::int64_t n = 0; n < b; ++n)
    for (std::int64_t ch = 0; ch < c; ++ch) {
      for (std::int64_t i = 0; i < h; ++i)
        for (std::int64_t j = 0; j + 1 < w; ++j) add(0, at(n, ch, i, j) - at(n, ch, i, j + 1));
      for (std::int64_t i = 0; i + 1 < h; ++i)
        for (std::int64_t j = 0; j < w; ++j) add(1, at(n, ch, i, j) - at(n, ch, i + 1, j));
      for (std::int64_t i = 0; i + 1 < h; ++i)
        for (std::int64_t j = 0; j + 1 < w; ++j) {
          add(2, at(n, ch, i + 1, j) - at(n, ch, i, j + 1));
          add(3, at(n, ch, i, j) - at(n, ch, i + 1, j + 1));
        }
    }
  return s;
}
}  // namespace official_priors_test

TEST_CASE("official TV is smi.py's sum of four batch Frobenius norms, and its L1 form the sum of means",
          "[nn][tv][official]") {
  auto x = uniform(Shape{2, 3, 5, 6}, 191);
  const auto s = official_priors_test::slices(x);
  double l2 = 0.0, l1 = 0.0;
  for (int k = 0; k < 4; ++k) l2 += std::sqrt(s.sq[k]), l1 += s.abs[k] / s.n[k];
  // float32 result of a double sum: relative 1e-6 covers the final rounding
  REQUIRE(nn::tv_official_l2(x, 0.5f) == Approx(0.5 * l2).epsilon(1e-6));
  REQUIRE(nn::tv_official_l1(x, 0.5f) == Approx(0.5 * l1).epsilon(1e-6));
  // not a batch mean and not per image: the norm of the batch is below the sum of the images' norms
  auto x0 = Tensor<>::empty(Shape{1, 3, 5, 6});
  auto x1 = Tensor<>::empty(Shape{1, 3, 5, 6});
  std::copy(x.data(), x.data() + 90, x0.data());
  std::copy(x.data() + 90, x.data() + 180, x1.data());
  REQUIRE(nn::tv_official_l2(x, 1.0f) < nn::tv_official_l2(x0, 1.0f) + nn::tv_official_l2(x1, 1.0f) - 1e-3f);
  // every difference counts, the first row and column too (Eq. 2 skips the first column's vertical ones)
  auto col = Tensor<>::zeros(Shape{1, 1, 3, 3});
  col[3] = 1.f;  // row 1, column 0: diff1 once, diff2 twice, diff3 once, diff4 once -> norms 1 + sqrt 2 + 1 + 1
  REQUIRE(nn::tv_official_l2(col, 1.0f) == Approx(3.0 + std::sqrt(2.0)));
}

TEST_CASE("official L2 is the unsquared norm of the whole batch", "[nn][l2][official]") {
  auto x = uniform(Shape{3, 2, 4, 4}, 192);
  double s = 0.0;
  for (std::int64_t i = 0; i < x.numel(); ++i) s += static_cast<double>(x[i]) * x[i];
  REQUIRE(nn::l2_official_norm(x, 0.25f) == Approx(0.25 * std::sqrt(s)).epsilon(1e-6));
  auto z = Tensor<>::zeros(x.shape()), dz = Tensor<>::zeros(x.shape());
  REQUIRE(nn::l2_official_norm(z, 1.0f, &dz) == 0.0f);  // the norm's subgradient 0 at 0: nothing added
  for (std::int64_t i = 0; i < dz.numel(); ++i) REQUIRE(dz[i] == 0.0f);
}

TEST_CASE("official TV and L2 gradients: finite differences", "[nn][tv][official][gradcheck]") {
  auto x = uniform(Shape{2, 3, 5, 4}, 193);
  auto dx = Tensor<>::zeros(x.shape());
  nn::tv_official_l2(x, 0.3f, &dx);
  // the steps and tolerances of test_image_priors' TV check (smooth away from zero differences)
  MINT_REQUIRE_CLOSE(testing::check_gradient([&] { return nn::tv_official_l2(x, 0.3f); }, x, dx, "tv official dx",
                                             {.eps = 1e-3, .tol = {1e-3, 1e-2}, .max_coords = 120}));
  auto dl = Tensor<>::zeros(x.shape());
  nn::l2_official_norm(x, 0.7f, &dl);
  MINT_REQUIRE_CLOSE(testing::check_gradient([&] { return nn::l2_official_norm(x, 0.7f); }, x, dl, "l2 official dx"));
  // L1: piecewise linear; eps 1e-3 stays inside one linear piece for uniform inputs (differences ~0.5 apart)
  auto d1 = Tensor<>::zeros(x.shape());
  nn::tv_official_l1(x, 0.3f, &d1);
  MINT_REQUIRE_CLOSE(testing::check_gradient([&] { return nn::tv_official_l1(x, 0.3f); }, x, d1, "tv l1 dx",
                                             {.eps = 1e-3, .tol = {1e-3, 1e-2}, .max_coords = 120}));
  // a shape mismatch names the op and both shapes
  auto bad = Tensor<>::zeros(Shape{2, 3, 5, 5});
  REQUIRE_THROWS_WITH(nn::tv_official_l2(x, 1.0f, &bad), Catch::Contains("tv_official_l2") &&
                                                              Catch::Contains("[2, 3, 5, 5]"));
}
