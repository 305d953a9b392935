// GradViT's patch prior (Eq. 8, nn::patch_prior): value against the equation transcribed independently, a hand
// case, its gradient against finite differences, and bad input.
#include "test_util.hpp"

#include "mint/nn/image_priors.hpp"

using namespace mint;
using testing::uniform;

namespace {
// Eq. 8 with x in [B, C, H, W]: sum over k = 1 .. H/P - 1 of ||x[:, :, P k, :] - x[:, :, P k - 1, :]||^2 plus
// the same over the width, summed over the batch (the paper's form, before mint's division by B).
double eq8(const Tensor<>& x, int p) {
  const int b = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
  auto at = [&](int n, int ch, int i, int j) { return static_cast<double>(x[((n * c + ch) * h + i) * w + j]); };
  double s = 0;
  for (int k = 1; k <= h / p - 1; ++k)
    for (int n = 0; n < b; ++n)
      for (int ch = 0; ch < c; ++ch)
        for (int j = 0; j < w; ++j) s += std::pow(at(n, ch, p * k, j) - at(n, ch, p * k - 1, j), 2);
  for (int k = 1; k <= w / p - 1; ++k)
    for (int n = 0; n < b; ++n)
      for (int ch = 0; ch < c; ++ch)
        for (int i = 0; i < h; ++i) s += std::pow(at(n, ch, i, p * k) - at(n, ch, i, p * k - 1), 2);
  return s;
}
}  // namespace

TEST_CASE("patch prior equals GradViT Eq. 8 (divided by the batch size)", "[nn][patch_prior]") {
  auto x = uniform(Shape{3, 2, 6, 9}, 71);
  // float32 return of a double sum: relative 1e-6
  REQUIRE(nn::patch_prior(x, 3, 0.5f) == Approx(0.5 * eq8(x, 3) / 3.0).epsilon(1e-6));
  // a hand case, 4 x 4, patch 2: the borders are between rows 1|2 and columns 1|2 (0-based)
  auto one = Tensor<>::zeros(Shape{1, 1, 4, 4});
  one[1 * 4 + 1] = 1.0f;  // (1, 1): differs from (2, 1) below and (1, 2) to the right: 2 unit squares
  REQUIRE(nn::patch_prior(one, 2, 1.0f) == Approx(2.0));
  auto inner = Tensor<>::zeros(Shape{1, 1, 4, 4});
  inner[0] = 3.0f;  // (0, 0) touches no patch border: no penalty, however bright
  REQUIRE(nn::patch_prior(inner, 2, 1.0f) == 0.0f);
  // patch = image size: no inner border at all
  auto whole = uniform(Shape{1, 2, 6, 6}, 74);
  REQUIRE(nn::patch_prior(whole, 6, 1.0f) == 0.0f);
}

TEST_CASE("patch prior gradient: finite differences", "[nn][patch_prior][gradcheck]") {
  auto x = uniform(Shape{2, 3, 8, 8}, 72);
  auto dx = Tensor<>::zeros(x.shape());
  const float v = nn::patch_prior(x, 4, 0.3f, &dx);
  REQUIRE(v > 0.0f);
  // a quadratic: central differences are exact up to float32 rounding of the loss (eps 1e-2, |loss| ~ 10)
  MINT_REQUIRE_CLOSE(testing::check_gradient([&] { return nn::patch_prior(x, 4, 0.3f); }, x, dx, "patch prior dx",
                                             {.eps = 1e-2, .tol = {1e-3, 1e-2}, .max_coords = 200}));
  // pixels away from the borders (row and column not in {3, 4}) get exactly zero gradient
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 8; ++j)
      if (i != 3 && i != 4 && j != 3 && j != 4) REQUIRE(dx[i * 8 + j] == 0.0f);
}

TEST_CASE("patch prior rejects a patch size that does not divide the image", "[nn][patch_prior]") {
  auto x = uniform(Shape{1, 1, 6, 6}, 73);
  REQUIRE_THROWS_WITH(nn::patch_prior(x, 4, 1.0f), Catch::Contains("does not divide"));
  REQUIRE_THROWS_WITH(nn::patch_prior(x, 0, 1.0f), Catch::Contains("patch size 0"));
  auto bad = Tensor<>::zeros(Shape{1, 1, 6, 5});
  REQUIRE_THROWS_WITH(nn::patch_prior(x, 3, 1.0f, &bad), Catch::Contains("d_images"));
}
