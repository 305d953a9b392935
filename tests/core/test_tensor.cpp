// Tensor: shapes, sharing semantics, shape errors naming both shapes, the xtensor view.
#include <catch2/catch.hpp>

#include "mint/core/tensor.hpp"
#include "mint/core/xview.hpp"

using mint::Shape;
using mint::Tensor;

TEST_CASE("Tensor is zero-initialised, contiguous and 64-byte aligned", "[core][tensor]") {
  Tensor<> t(Shape{2, 3, 4});
  REQUIRE(t.numel() == 24);
  REQUIRE(t.rank() == 3);
  REQUIRE(t.dim(-1) == 4);
  REQUIRE(reinterpret_cast<std::uintptr_t>(t.data()) % 64 == 0);
  for (std::int64_t i = 0; i < t.numel(); ++i) REQUIRE(t[i] == 0.0f);
}

TEST_CASE("Tensor copies share storage, clone does not", "[core][tensor]") {
  auto a = Tensor<>::full(Shape{4}, 1.0f);
  auto b = a;
  auto c = a.clone();
  b[0] = 5.0f;
  REQUIRE(a[0] == 5.0f);
  REQUIRE(c[0] == 1.0f);
  auto r = a.reshape(Shape{2, 2});
  r[3] = 7.0f;
  REQUIRE(a[3] == 7.0f);
}

TEST_CASE("Shape errors name both shapes", "[core][tensor]") {
  auto a = Tensor<>::zeros(Shape{2, 3});
  REQUIRE_THROWS_WITH(a.reshape(Shape{4, 2}), Catch::Contains("[2, 3]") && Catch::Contains("[4, 2]"));
  REQUIRE_THROWS_WITH(mint::check_shape(a, Shape{3, 2}, "linear: weight"),
                      Catch::Contains("linear: weight") && Catch::Contains("[3, 2]") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(Tensor<>::from(Shape{2, 2}, {1, 2, 3}), Catch::Contains("3 values") && Catch::Contains("[2, 2]"));
  REQUIRE_THROWS_WITH(a.dim(2), Catch::Contains("axis 2"));
}

TEST_CASE("check_finite names the first non-finite element", "[core][tensor]") {
  auto a = Tensor<>::zeros(Shape{3});
  a[1] = std::numeric_limits<float>::quiet_NaN();
  REQUIRE_THROWS_WITH(mint::check_finite(a, "images"), Catch::Contains("images") && Catch::Contains("index 1"));
}

TEST_CASE("xview adapts a tensor without copying", "[core][tensor]") {
  auto a = Tensor<>::zeros(Shape{2, 3});
  auto v = mint::xview(a);
  v(1, 2) = 3.0f;
  REQUIRE(a[5] == 3.0f);
  REQUIRE(v.shape()[0] == 2);
}

TEST_CASE("copy_rows copies strided runs and refuses ones that do not fit, to_backend and to_cpu copy", "[core][tensor]") {
  auto src = Tensor<>::empty(Shape{3, 4, 2});
  for (std::int64_t i = 0; i < src.numel(); ++i) src[i] = static_cast<float>(i);
  auto dst = Tensor<>::zeros(Shape{3, 2, 2});
  mint::copy_rows(dst, 2, 4, src, 2, 8, 2, 3);  // row 1 of each [4, 2] image -> row 1 of each [2, 2] image
  for (int b = 0; b < 3; ++b)
    for (int j = 0; j < 2; ++j) {
      REQUIRE(dst[b * 4 + j] == 0.0f);
      REQUIRE(dst[b * 4 + 2 + j] == static_cast<float>(b * 8 + 2 + j));
    }
  REQUIRE_THROWS_WITH(mint::copy_rows(dst, 2, 4, src, 2, 8, 2, 4), Catch::Contains("do not fit"));
  REQUIRE_THROWS_WITH(mint::copy_rows(dst, 0, 4, src, 0, 8, 5, 1), Catch::Contains("do not fit"));
  auto c = mint::to_backend<mint::Cpu>(src);
  REQUIRE(c.data() != src.data());
  auto h = mint::to_cpu(c);
  REQUIRE(h.data() != c.data());
  for (std::int64_t i = 0; i < src.numel(); ++i) REQUIRE(h[i] == src[i]);
}
