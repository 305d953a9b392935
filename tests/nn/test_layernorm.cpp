// layernorm: forward statistics, gradients in both modes.
#include "test_util.hpp"

#include "mint/autodiff/backward.hpp"
#include "mint/nn/layernorm.hpp"

using namespace mint;
using testing::uniform;

TEST_CASE("layernorm forward normalises each row", "[nn][layernorm]") {
  auto x = uniform(Shape{4, 16}, 1, -3.f, 5.f);
  auto g = Tensor<>::full(Shape{16}, 1.f), b = Tensor<>::zeros(Shape{16});
  auto y = nn::layernorm(x, g, b, 1e-6f, nullptr);
  for (int r = 0; r < 4; ++r) {
    double m = 0, v = 0;
    for (int j = 0; j < 16; ++j) m += y[r * 16 + j];
    for (int j = 0; j < 16; ++j) v += (y[r * 16 + j] - m / 16) * (y[r * 16 + j] - m / 16);
    REQUIRE(std::abs(m / 16) < 1e-5);
    REQUIRE(std::abs(v / 16 - 1.0) < 1e-4);
  }
}

TEST_CASE("layernorm backward: finite differences, input-only and full", "[nn][layernorm][gradcheck]") {
  auto x = uniform(Shape{2, 3, 8}, 31, -2.f, 2.f), g = uniform(Shape{8}, 32, 0.5f, 1.5f), b = uniform(Shape{8}, 33);
  auto r = uniform(x.shape(), 34);
  auto loss = [&] { return testing::dot(nn::layernorm(x, g, b, 1e-6f, nullptr), r); };
  for (auto mode : {Backward::InputOnly, Backward::Full}) {
    Param<> gp{g, {}}, bp{b, {}};
    nn::LayerNormSaved saved;
    nn::layernorm(x, g, b, 1e-6f, &saved);
    auto dx = Tensor<>::zeros(x.shape());
    nn::layernorm_backward(r, x, g, saved, &dx, gp.grad_for(mode), bp.grad_for(mode));
    MINT_REQUIRE_CLOSE(testing::check_gradient(loss, x, dx, "layernorm dx"));
    if (mode == Backward::Full) {
      MINT_REQUIRE_CLOSE(testing::check_gradient(loss, g, gp.grad, "layernorm dgamma"));
      MINT_REQUIRE_CLOSE(testing::check_gradient(loss, b, bp.grad, "layernorm dbeta"));
    } else {
      REQUIRE_FALSE(gp.grad.defined());
    }
  }
}
