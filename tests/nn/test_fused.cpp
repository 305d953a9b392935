// mint/nn/fused.hpp: each fused CPU op against the plain composition that defines it. The tolerance is 0 (bit for
// bit): the fused loops perform the composition's float operations in its order, and with K <= 64 the GEMM has one
// K panel, so its beta = 1 update of a bias-filled C and its beta = 0 product plus the bias are the same single
// rounding of acc + b. Shapes are chosen so that rows straddle GELU's 16K-element chunks and the residual is the
// leading rows of a longer token axis (a ViT's last block).
#include "test_util.hpp"

#include "mint/nn/activation.hpp"
#include "mint/nn/elementwise.hpp"
#include "mint/nn/fused.hpp"
#include "mint/nn/layernorm.hpp"
#include "mint/nn/linear.hpp"

using namespace mint;
using testing::uniform;

namespace fused_test {
// x [B, T, D]'s first R rows per image, [B, R, D].
Tensor<> leading(const Tensor<>& x, std::int64_t rows) {
  const std::int64_t b = x.dim(0), t = x.dim(1), d = x.dim(2);
  auto y = Tensor<>::empty(Shape{b, rows, d});
  copy_rows(y, 0, rows * d, x, 0, t * d, rows * d, b);
  return y;
}
constexpr testing::Tolerance kExact{0, 0};
}  // namespace fused_test

TEST_CASE("fused linear_gelu is linear then gelu across chunk boundaries", "[nn][fused][gelu]") {
  // 300 x 77 = 23100 outputs: the second 16K chunk starts inside a row, so the bias index wraps mid-chunk
  auto x = uniform(Shape{3, 100, 24}, 301, -2.f, 2.f), w = uniform(Shape{77, 24}, 302), b = uniform(Shape{77}, 303);
  Tensor<> pre;
  auto y = nn::linear_gelu(x, w, b, pre);
  auto ref_pre = nn::linear(x, w, &b);
  MINT_REQUIRE_CLOSE(testing::compare(pre, ref_pre, fused_test::kExact, "linear_gelu pre-activation"));
  MINT_REQUIRE_CLOSE(testing::compare(y, nn::gelu(ref_pre), fused_test::kExact, "linear_gelu activation"));
  CHECK_THROWS_WITH(nn::linear_gelu(x, w, uniform(Shape{76}, 304), pre),
                    Catch::Contains("linear_gelu: bias"));
}

TEST_CASE("fused linear_residual is linear plus the residual's leading rows", "[nn][fused]") {
  const std::int64_t rows = GENERATE(7, 2);  // all tokens, and a last block's CLS + distillation rows
  auto a = uniform(Shape{3, rows, 40}, 311), w = uniform(Shape{48, 40}, 312), b = uniform(Shape{48}, 313);
  auto x = uniform(Shape{3, 7, 48}, 314, -3.f, 3.f);
  auto ref = nn::linear(a, w, &b);
  nn::add_inplace(ref, fused_test::leading(x, rows));
  MINT_REQUIRE_CLOSE(testing::compare(nn::linear_residual(a, w, b, x), ref, fused_test::kExact, "linear_residual"));
  CHECK_THROWS_WITH(nn::linear_residual(a, w, b, uniform(Shape{3, 1, 48}, 315)),
                    Catch::Contains("linear_residual: residual [3, 1, 48]"));
}

TEST_CASE("fused linear_residual_layernorm is linear_residual then layernorm", "[nn][fused][layernorm]") {
  const std::int64_t rows = GENERATE(9, 1);
  auto a = uniform(Shape{2, rows, 64}, 321), w = uniform(Shape{32, 64}, 322), b = uniform(Shape{32}, 323);
  auto x = uniform(Shape{2, 9, 32}, 324, 5.f, 9.f);  // a large mean, as deep ViT activations
  auto g = uniform(Shape{32}, 325), bt = uniform(Shape{32}, 326);
  nn::LayerNormSaved saved, ref_saved;
  Tensor<> sum;
  auto h = nn::linear_residual_layernorm(a, w, b, x, g, bt, 1e-6f, &saved, sum);
  auto ref_sum = nn::linear(a, w, &b);
  nn::add_inplace(ref_sum, fused_test::leading(x, rows));
  auto ref_h = nn::layernorm(ref_sum, g, bt, 1e-6f, &ref_saved);
  MINT_REQUIRE_CLOSE(testing::compare(sum, ref_sum, fused_test::kExact, "x_mid"));
  MINT_REQUIRE_CLOSE(testing::compare(h, ref_h, fused_test::kExact, "LN(x_mid)"));
  MINT_REQUIRE_CLOSE(testing::compare(saved.mean, ref_saved.mean, fused_test::kExact, "saved mean"));
  MINT_REQUIRE_CLOSE(testing::compare(saved.rstd, ref_saved.rstd, fused_test::kExact, "saved 1/std"));
  CHECK_THROWS_WITH(nn::linear_residual_layernorm(a, w, b, x, uniform(Shape{31}, 327), bt, 1e-6f, nullptr, sum),
                    Catch::Contains("linear_residual_layernorm: LayerNorm weight"));
}

TEST_CASE("fused gelu_backward_inplace is gelu_backward into a zero buffer", "[nn][fused][gelu]") {
  auto x = uniform(Shape{5, 4001}, 331, -5.f, 5.f), dy = uniform(x.shape(), 332);  // 20005: two chunks
  auto ref = Tensor<>::zeros(x.shape());
  nn::gelu_backward(dy, x, ref);
  nn::gelu_backward_inplace(dy, x);
  MINT_REQUIRE_CLOSE(testing::compare(dy, ref, fused_test::kExact, "gelu_backward_inplace"));
}

TEST_CASE("fused layernorm_backward_residual is the residual gradient plus layernorm_backward",
          "[nn][fused][layernorm]") {
  const std::int64_t rows = GENERATE(6, 2);
  auto x = uniform(Shape{3, 6, 20}, 341, -4.f, 6.f), g = uniform(Shape{20}, 342), bt = uniform(Shape{20}, 343);
  nn::LayerNormSaved saved;
  (void)nn::layernorm(x, g, bt, 1e-6f, &saved);
  auto dy = uniform(x.shape(), 344), dres = uniform(Shape{3, rows, 20}, 345);
  auto dg = Tensor<>::zeros(Shape{20}), db = Tensor<>::zeros(Shape{20});
  auto ref = Tensor<>::zeros(x.shape());
  copy_rows(ref, 0, 6 * 20, dres, 0, rows * 20, rows * 20, 3);
  auto ref_dg = Tensor<>::zeros(Shape{20}), ref_db = Tensor<>::zeros(Shape{20});
  nn::layernorm_backward(dy, x, g, saved, &ref, &ref_dg, &ref_db);
  auto dx = nn::layernorm_backward_residual(dy, x, g, saved, dres, &dg, &db);
  MINT_REQUIRE_CLOSE(testing::compare(dx, ref, fused_test::kExact, "layernorm_backward_residual dx"));
  MINT_REQUIRE_CLOSE(testing::compare(dg, ref_dg, fused_test::kExact, "dgamma"));
  MINT_REQUIRE_CLOSE(testing::compare(db, ref_db, fused_test::kExact, "dbeta"));
}
