// total variation exactly as SMI Eq. 2, and the L2 prior: values and gradients.
#include "test_util.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

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

namespace tv_near_test {
// Images [B, C, 12, 12] of 4-pixel patches (a 3 x 3 grid) and `count` random active patches per image.
nn::TokenIndex random_active(std::int64_t b, std::int64_t count, std::uint64_t seed) {
  nn::TokenIndex t{b, count, {}};
  std::mt19937_64 rng(seed);
  for (std::int64_t i = 0; i < b; ++i) {
    std::vector<std::int32_t> all{0, 1, 2, 3, 4, 5, 6, 7, 8};
    std::shuffle(all.begin(), all.end(), rng);
    t.index.insert(t.index.end(), all.begin(), all.begin() + count);
  }
  return t;
}
bool pixel_active(const nn::TokenIndex& a, std::int64_t i, std::int64_t y, std::int64_t x) {
  for (std::int64_t k = 0; k < a.count; ++k)
    if (a.at(i, k) == (y / 4) * 3 + x / 4) return true;
  return false;
}
}  // namespace tv_near_test

TEST_CASE("total variation split by active patches: the parts add up, active pixels get the full gradient",
          "[nn][tv]") {
  const std::int64_t count = GENERATE(1, 4, 8);
  auto x = uniform(Shape{3, 3, 12, 12}, 351, -2.f, 2.f);
  const auto active = tv_near_test::random_active(3, count, 352);
  auto g_full = Tensor<>::zeros(x.shape()), g_near = Tensor<>::zeros(x.shape());
  const auto full = nn::total_variation_per_image(x, &g_full, 0.25f);
  const auto near = nn::total_variation_per_image_near(x, active, 4, true, &g_near, 0.25f);
  const auto far = nn::total_variation_per_image_near(x, active, 4, false);
  for (std::size_t i = 0; i < full.size(); ++i) {
    INFO("image " << i);
    // two partial double sums of at most 4 * 144 norms in another grouping: relative error ~ 1e-16 * 576
    CHECK(std::abs(near[i] + far[i] - full[i]) <= 1e-12 * full[i]);
    CHECK(near[i] > 0.0);
    CHECK(far[i] > 0.0);
  }
  // at every active pixel the same pairs, in the same order, add to the gradient: bit for bit
  for (std::int64_t i = 0; i < 3; ++i)
    for (std::int64_t ch = 0; ch < 3; ++ch)
      for (std::int64_t y = 0; y < 12; ++y)
        for (std::int64_t xx = 0; xx < 12; ++xx) {
          if (!tv_near_test::pixel_active(active, i, y, xx)) continue;
          const std::int64_t o = ((i * 3 + ch) * 12 + y) * 12 + xx;
          INFO("pixel " << o);
          REQUIRE(g_near[o] == g_full[o]);
        }
}

TEST_CASE("total variation split by active patches: all active is the full loop", "[nn][tv]") {
  auto x = uniform(Shape{2, 1, 8, 8}, 353);
  auto g_full = Tensor<>::zeros(x.shape()), g_near = Tensor<>::zeros(x.shape());
  const auto full = nn::total_variation_per_image(x, &g_full);
  const auto near = nn::total_variation_per_image_near(x, nn::TokenIndex::all(2, 4), 4, true, &g_near);
  const auto far = nn::total_variation_per_image_near(x, nn::TokenIndex::all(2, 4), 4, false);
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(near[i] == full[i]);  // the same pairs in the same order
    CHECK(far[i] == 0.0);
  }
  MINT_REQUIRE_CLOSE(testing::compare(g_near, g_full, {0, 0}, "TV gradient, all active"));
  CHECK_THROWS_WITH(nn::total_variation_per_image_near(x, nn::TokenIndex::all(2, 4), 3, true),
                    Catch::Contains("are not a grid of 3-pixel patches"));
}
