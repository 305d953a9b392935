// PSNR and SSIM (mint/tasks/metrics.hpp) against references computed in float64 by
// tests/fixtures/make_resnet_fixtures.py (two independent SSIM implementations there agree to 1e-12), and on
// known cases: identical images (SSIM 1, PSNR +inf), a constant offset (closed-form PSNR), error messages.
#include "test_util.hpp"

#include <cmath>
#include <limits>
#include <string>

#include "mint/io/safetensors.hpp"
#include "mint/tasks/metrics.hpp"

using namespace mint;

TEST_CASE("PSNR and SSIM match the float64 reference (gray [0,1] 28x28 and RGB [0,255] 16x20)", "[metrics]") {
  const auto f = io::load_safetensors(std::string(MINT_FIXTURE_DIR) + "/image_metrics.safetensors");
  for (const std::string c : {"gray", "rgb255"}) {
    const auto& a = f.tensors.at(c + ".a");
    const auto& b = f.tensors.at(c + ".b");
    const float range = f.tensors.at(c + ".data_range")[0];
    const auto p = tasks::psnr(a, b, range);
    const auto s = tasks::ssim(a, b, range);
    const auto& pr = f.tensors.at(c + ".psnr");
    const auto& sr = f.tensors.at(c + ".ssim");
    REQUIRE(static_cast<std::int64_t>(p.size()) == a.dim(0));
    for (std::int64_t i = 0; i < a.dim(0); ++i) {
      CAPTURE(c, i, p[static_cast<std::size_t>(i)], pr[i], s[static_cast<std::size_t>(i)], sr[i]);
      // inputs are exact float32; the only differences are double summation order and float32 storage of the
      // reference: 1e-4 dB and 1e-5 SSIM
      CHECK(std::abs(p[static_cast<std::size_t>(i)] - pr[i]) <= 1e-4);
      CHECK(std::abs(s[static_cast<std::size_t>(i)] - sr[i]) <= 1e-5);
    }
  }
}

TEST_CASE("PSNR and SSIM known cases: identical images, constant offset, errors", "[metrics]") {
  auto a = testing::uniform(Shape{2, 3, 12, 13}, 5, 0.0f, 1.0f);
  const auto p = tasks::psnr(a, a, 1.0f);
  REQUIRE(std::isinf(p[0]));
  REQUIRE(p[0] > 0);
  const auto s = tasks::ssim(a, a, 1.0f);
  REQUIRE(std::abs(s[0] - 1.0) < 1e-12);
  REQUIRE(std::abs(s[1] - 1.0) < 1e-12);
  auto b = a.clone();
  for (std::int64_t i = 0; i < b.numel(); ++i) b[i] += 0.1f;
  const auto q = tasks::psnr(a, b, 1.0f);
  REQUIRE(std::abs(q[0] - 20.0) < 1e-4);  // 10 log10(1 / 0.01)
  const auto q255 = tasks::psnr(a, b, 255.0f);
  REQUIRE(std::abs(q255[0] - (20.0 + 20.0 * std::log10(255.0))) < 1e-4);
  // SSIM is below 1 for a different image, symmetric, and near 0 for unrelated noise
  auto n = testing::uniform(Shape{2, 3, 12, 13}, 6, 0.0f, 1.0f);
  const auto s1 = tasks::ssim(a, n, 1.0f), s2 = tasks::ssim(n, a, 1.0f);
  REQUIRE(std::abs(s1[0] - s2[0]) < 1e-12);
  REQUIRE(std::abs(s1[0]) < 0.2);
  REQUIRE_THROWS_WITH(tasks::ssim(testing::uniform(Shape{1, 1, 10, 28}, 1), testing::uniform(Shape{1, 1, 10, 28}, 2), 1.0f),
                      Catch::Contains("smaller than the 11 x 11 window"));
  REQUIRE_THROWS_WITH(tasks::psnr(a, testing::uniform(Shape{2, 3, 12, 12}, 1), 1.0f), Catch::Contains("shapes differ"));
  REQUIRE_THROWS_WITH(tasks::psnr(a, a, 0.0f), Catch::Contains("data_range must be finite and > 0"));
}
