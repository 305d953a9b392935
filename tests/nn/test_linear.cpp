// linear and bmm: forward against a naive loop, gradients against finite differences in both modes.
#include "test_util.hpp"

#include "mint/autodiff/backward.hpp"
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
