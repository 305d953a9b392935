// linear and bmm: forward against a naive loop, gradients against finite differences in both modes; how
// linear_backward writes d-input (GradInto).
#include "test_util.hpp"

#include <limits>

#include "mint/autodiff/backward.hpp"
#include "mint/backend/cpu/gemm_backends.hpp"
#include "mint/nn/linear.hpp"
#include "mint/nn/matmul.hpp"

using namespace mint;
using testing::uniform;

TEST_CASE("linear forward matches a naive loop", "[nn][linear]") {
  auto x = uniform(Shape{2, 3, 5}, 1), w = uniform(Shape{4, 5}, 2), b = uniform(Shape{4}, 3);
  auto y = nn::linear(x, w, &b);
  REQUIRE(y.shape() == Shape{2, 3, 4});
  auto ref = Tensor<>::zeros(y.shape());
  for (int m = 0; m < 6; ++m)
    for (int n = 0; n < 4; ++n) {
      double s = b[n];
      for (int k = 0; k < 5; ++k) s += static_cast<double>(x[m * 5 + k]) * w[n * 5 + k];
      ref[m * 4 + n] = static_cast<float>(s);
    }
  MINT_REQUIRE_CLOSE(testing::compare(y, ref, {1e-6, 1e-5}, "linear"));
  REQUIRE_THROWS_WITH(nn::linear(x, uniform(Shape{4, 6}, 4), nullptr), Catch::Contains("[2, 3, 5]") && Catch::Contains("[4, 6]"));
}

TEST_CASE("linear backward: finite differences, input-only and full", "[nn][linear][gradcheck]") {
  auto x = uniform(Shape{3, 7}, 11), w = uniform(Shape{5, 7}, 12), b = uniform(Shape{5}, 13);
  auto r = uniform(Shape{3, 5}, 14);  // the loss is <linear(x), r>
  auto loss = [&] { return testing::dot(nn::linear(x, w, &b), r); };
  for (auto mode : {Backward::InputOnly, Backward::Full}) {
    Param<> wp{w, {}}, bp{b, {}};
    auto dx = Tensor<>::zeros(x.shape());
    nn::linear_backward(r, x, w, &dx, wp.grad_for(mode), bp.grad_for(mode));
    MINT_REQUIRE_CLOSE(testing::check_gradient(loss, x, dx, "linear dx"));
    if (mode == Backward::Full) {
      MINT_REQUIRE_CLOSE(testing::check_gradient(loss, w, wp.grad, "linear dW"));
      MINT_REQUIRE_CLOSE(testing::check_gradient(loss, b, bp.grad, "linear db"));
    } else {
      REQUIRE_FALSE(wp.grad.defined());  // no weight gradient exists in input-only mode
      REQUIRE_FALSE(bp.grad.defined());
    }
  }
}

TEST_CASE("bmm: all transpose combinations, forward and backward", "[nn][matmul][gradcheck]") {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      CAPTURE(ta, tb);
      auto a = uniform(ta ? Shape{2, 4, 3} : Shape{2, 3, 4}, 21), b = uniform(tb ? Shape{2, 5, 4} : Shape{2, 4, 5}, 22);
      auto c = nn::bmm(a, b, ta, tb);
      REQUIRE(c.shape() == Shape{2, 3, 5});
      auto ref = Tensor<>::zeros(c.shape());
      for (int i = 0; i < 2; ++i)
        for (int m = 0; m < 3; ++m)
          for (int n = 0; n < 5; ++n) {
            double s = 0;
            for (int k = 0; k < 4; ++k)
              s += static_cast<double>(ta ? a[i * 12 + k * 3 + m] : a[i * 12 + m * 4 + k]) *
                   (tb ? b[i * 20 + n * 4 + k] : b[i * 20 + k * 5 + n]);
            ref[(i * 3 + m) * 5 + n] = static_cast<float>(s);
          }
      MINT_REQUIRE_CLOSE(testing::compare(c, ref, {1e-6, 1e-5}, "bmm"));
      auto r = uniform(c.shape(), 23);
      auto loss = [&] { return testing::dot(nn::bmm(a, b, ta, tb), r); };
      auto da = Tensor<>::zeros(a.shape()), db = Tensor<>::zeros(b.shape());
      nn::bmm_backward(r, a, b, ta, tb, &da, &db);
      MINT_REQUIRE_CLOSE(testing::check_gradient(loss, a, da, "bmm da"));
      MINT_REQUIRE_CLOSE(testing::check_gradient(loss, b, db, "bmm db"));
    }
}

// GradInto::Overwrite is what lets the ViT backward hand linear_backward a fresh Tensor::empty: dx must come out as
// dy W whatever it held (here NaN, the worst garbage: any read of it would show), on every GEMM candidate in this
// build. Exact equality against Add into zeros: both are one GEMM of the same operands, at beta 0 or at beta 1 over
// zeros (== also equates a -0 with a +0). Add into other values is checked to float rounding (1e-6 relative, 1e-5
// absolute on O(1) values): the GEMM adds its sum into dx in its own order, the reference after it.
TEST_CASE("linear backward: GradInto::Overwrite ignores what dx held, Add adds into it", "[nn][linear]") {
  auto x = uniform(Shape{40, 24}, 21), w = uniform(Shape{32, 24}, 22), dy = uniform(Shape{40, 32}, 23);
  auto held = uniform(Shape{40, 24}, 24);
  for (auto g : cpu::kGemmBackends) {
    if (!cpu::gemm_backend_available(g)) continue;
    INFO("GEMM " << cpu::gemm_backend_name(g));
    const cpu::ScopedGemmChoice choice({g, g});
    auto into_zeros = Tensor<>::zeros(x.shape());
    nn::linear_backward(dy, x, w, &into_zeros, nullptr, nullptr);
    auto over_nan = Tensor<>::empty(x.shape());
    for (std::int64_t i = 0; i < over_nan.numel(); ++i) over_nan[i] = std::numeric_limits<float>::quiet_NaN();
    nn::linear_backward(dy, x, w, &over_nan, nullptr, nullptr, GradInto::Overwrite);
    for (std::int64_t i = 0; i < x.numel(); ++i) REQUIRE(over_nan[i] == into_zeros[i]);
    auto added = held.clone();
    nn::linear_backward(dy, x, w, &added, nullptr, nullptr, GradInto::Add);
    auto sum = held.clone();
    for (std::int64_t i = 0; i < x.numel(); ++i) sum[i] += into_zeros[i];
    MINT_REQUIRE_CLOSE(testing::compare(added, sum, {1e-6, 1e-5}, "dx += dy W"));
  }
}
