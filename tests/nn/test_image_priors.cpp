// total variation exactly as SMI Eq. 2, and the L2 prior: values and gradients.
#include "test_util.hpp"

#include <cmath>

#include "mint/nn/image_priors.hpp"

using namespace mint;
using testing::uniform;

namespace {
// Eq. 2 transcribed with 1-based indices, independent of the implementation's term table.
double tv_eq2(const Tensor<>& x, int b) {
  const int c = x.dim(1), h = x.dim(2), w = x.dim(3);
  auto px = [&](int ch, int i, int j) { return static_cast<double>(x[((b * c + ch) * h + (i - 1)) * w + (j - 1)]); };
  auto nrm = [&](int i, int j, int i2, int j2) {
    double s = 0;
    for (int ch = 0; ch < c; ++ch) s += (px(ch, i, j) - px(ch, i2, j2)) * (px(ch, i, j) - px(ch, i2, j2));
    return std::sqrt(s);
  };
  double tv = 0;
  for (int i = 2; i <= h; ++i)
    for (int j = 2; j <= w; ++j) tv += nrm(i, j, i - 1, j) + nrm(i, j, i, j - 1) + nrm(i, j, i - 1, j - 1);
  for (int i = 2; i <= h; ++i)
    for (int j = 1; j <= w - 1; ++j) tv += nrm(i, j, i - 1, j + 1);
  return tv;
}
}  // namespace

TEST_CASE("total variation equals SMI Eq. 2", "[nn][tv]") {
  auto x = uniform(Shape{2, 3, 5, 6}, 91);
  auto tv = nn::total_variation_per_image(x);
  for (int b = 0; b < 2; ++b) REQUIRE(std::abs(tv[b] - tv_eq2(x, b)) < 1e-9 * std::max(1.0, tv_eq2(x, b)));
  // a hand case: a single bright pixel at (row 1, col 1) 0-based in a 3x3 one-channel image.
  // It enters 4 terms as X_ij (itself vs up, left, up-left, up-right neighbours) and, as a neighbour, the
  // terms of (2,1) vertical, (1,2) horizontal, (2,2) diagonal, (2,0) anti-diagonal: 8 unit norms.
  auto one = Tensor<>::zeros(Shape{1, 1, 3, 3});
  one[4] = 1.f;
  REQUIRE(nn::total_variation_per_image(one)[0] == Approx(8.0));
  // the first column's vertical differences are excluded by Eq. 2's ranges (j starts at 2)
  auto col = Tensor<>::zeros(Shape{1, 1, 3, 3});
  col[3] = 1.f;  // row 1, col 0: enters up-right (as X_ij), and (2,0)-(1,0)? no: j=1 excluded; (1,1) horizontal,
                 // (2,1) diagonal -> 3 unit norms
  REQUIRE(nn::total_variation_per_image(col)[0] == Approx(3.0));
  REQUIRE(tv_eq2(col, 0) == Approx(3.0));
}

TEST_CASE("total variation and L2 gradients: finite differences", "[nn][tv][gradcheck]") {
  auto x = uniform(Shape{2, 3, 5, 4}, 92);
  auto dx = Tensor<>::zeros(x.shape());
  const float v = nn::total_variation(x, 0.3f, &dx);
  double s = 0;
  for (double t : nn::total_variation_per_image(x)) s += t;
  REQUIRE(v == Approx(0.3 * s / 2).epsilon(1e-6));
  MINT_REQUIRE_CLOSE(testing::check_gradient([&] { return nn::total_variation(x, 0.3f); }, x, dx, "tv dx",
                                             {.eps = 1e-3, .tol = {1e-3, 1e-2}, .max_coords = 120}));
  auto dl = Tensor<>::zeros(x.shape());
  nn::l2_prior(x, 0.7f, &dl);
  MINT_REQUIRE_CLOSE(testing::check_gradient([&] { return nn::l2_prior(x, 0.7f); }, x, dl, "l2 dx"));
}
