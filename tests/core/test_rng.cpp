// Philox4x32-10: the Random123 known-answer vectors, ranges, moments, and independence from thread count.
#include "test_util.hpp"

#include <cmath>

#include "mint/backend/cpu/parallel.hpp"
#include "mint/core/rng.hpp"

using namespace mint;

TEST_CASE("philox4x32_10 reproduces the Random123 known-answer vectors", "[core][rng]") {
  auto r = philox4x32_10(0, 0, 0, 0, 0, 0);
  REQUIRE(r.w[0] == 0x6627e8d5u);
  REQUIRE(r.w[1] == 0xe169c58du);
  REQUIRE(r.w[2] == 0xbc57ac4cu);
  REQUIRE(r.w[3] == 0x9b00dbd8u);
  r = philox4x32_10(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu);
  REQUIRE(r.w[0] == 0x408f276du);
  REQUIRE(r.w[1] == 0x41c83b0eu);
  REQUIRE(r.w[2] == 0xa20bc7c6u);
  REQUIRE(r.w[3] == 0x6d5451fdu);
  r = philox4x32_10(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u);
  REQUIRE(r.w[0] == 0xd16cfe09u);
  REQUIRE(r.w[1] == 0x94fdccebu);
  REQUIRE(r.w[2] == 0x5001e420u);
  REQUIRE(r.w[3] == 0x24126ea1u);
}

TEST_CASE("uniform and normal fills: range, moments, determinism", "[core][rng]") {
  auto u = Tensor<>::empty(Shape{200000});
  fill_uniform(u, 42, 3, -2.f, 6.f);
  double s = 0;
  for (std::int64_t i = 0; i < u.numel(); ++i) {
    REQUIRE(u[i] >= -2.f);
    REQUIRE(u[i] < 6.f);
    s += u[i];
  }
  // mean of U(-2, 6) is 2, sd 8/sqrt(12); 5 standard errors of 200000 draws is 0.026
  REQUIRE(std::abs(s / u.numel() - 2.0) < 0.026);
  auto z = Tensor<>::empty(Shape{200000});
  fill_normal(z, 42, 0, 1.f, 3.f);
  double m = 0, v = 0;
  for (std::int64_t i = 0; i < z.numel(); ++i) m += z[i];
  m /= z.numel();
  for (std::int64_t i = 0; i < z.numel(); ++i) v += (z[i] - m) * (z[i] - m);
  v /= z.numel();
  REQUIRE(std::abs(m - 1.0) < 5 * 3.0 / std::sqrt(2e5));  // 5 standard errors
  REQUIRE(std::abs(std::sqrt(v) - 3.0) < 0.05);
  // a different seed or stream gives different numbers; the same gives the same
  auto u2 = Tensor<>::empty(Shape{200000}), u3 = Tensor<>::empty(Shape{200000});
  fill_uniform(u2, 42, 4, -2.f, 6.f);
  fill_uniform(u3, 42, 3, -2.f, 6.f);
  REQUIRE(u2[0] != u[0]);
  MINT_REQUIRE_CLOSE(testing::compare(u3, u, {0, 0}, "same seed and stream"));
}

TEST_CASE("fills do not depend on the thread count", "[core][rng]") {
  const int saved = cpu::num_threads();
  auto a = Tensor<>::empty(Shape{300001}), b = Tensor<>::empty(Shape{300001});
  cpu::set_num_threads(1);
  fill_normal(a, 7, 1, 0.f, 1.f);
  cpu::set_num_threads(std::max(2, saved));
  fill_normal(b, 7, 1, 0.f, 1.f);
  cpu::set_num_threads(saved);
  MINT_REQUIRE_CLOSE(testing::compare(a, b, {0, 0}, "1 thread vs several"));
}
