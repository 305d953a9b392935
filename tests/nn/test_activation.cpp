// ReLU, GELU (erf form), the fused linear+GELU, scaling and softmax: values and gradients. These ops have no weights, so input-only and full
// backward are the same computation; the gradient check covers both.
#include "test_util.hpp"

#include <cmath>
#include <limits>

#include "mint/nn/activation.hpp"
#include "mint/nn/elementwise.hpp"
#include "mint/nn/fused.hpp"
#include "mint/nn/softmax.hpp"

using namespace mint;
using testing::uniform;

TEST_CASE("gelu matches the erf form at known points", "[nn][gelu]") {
  auto x = Tensor<>::from(Shape{4}, {-2.f, 0.f, 1.f, 3.f});
  auto y = nn::gelu(x);
  // x * Phi(x): Phi(-2) = 0.0227501319, Phi(1) = 0.8413447461, Phi(3) = 0.9986501020
  auto ref = Tensor<>::from(Shape{4}, {-0.0455002638f, 0.f, 0.8413447461f, 2.9959503060f});
  MINT_REQUIRE_CLOSE(testing::compare(y, ref, {1e-6, 1e-6}, "gelu"));
}

TEST_CASE("gelu: the vectorised CPU path, the shared functor and double-precision erf agree", "[nn][gelu]") {
  // 20001 points on [-10, 10]: beyond +-4/sqrt(1/2) erf saturates, which the approximation clamps.
  auto x = Tensor<>::empty(Shape{20001});
  for (std::int64_t i = 0; i < x.numel(); ++i) x[i] = -10.0f + 20.0f * static_cast<float>(i) / 20000.0f;
  auto y = nn::gelu(x);
  auto dx = Tensor<>::zeros(x.shape());
  nn::gelu_backward(Tensor<>::full(x.shape(), 1.0f), x, dx);
  auto f_ref = Tensor<>::empty(x.shape()), g_ref = Tensor<>::empty(x.shape());
  auto f_fn = Tensor<>::empty(x.shape()), g_fn = Tensor<>::empty(x.shape());
  const fn::Gelu f;
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    const double v = x[i], cdf = 0.5 * (1.0 + std::erf(v / std::sqrt(2.0)));
    f_ref[i] = static_cast<float>(v * cdf);
    g_ref[i] = static_cast<float>(cdf + v * std::exp(-0.5 * v * v) / std::sqrt(2.0 * M_PI));
    f_fn[i] = f(x[i]);
    g_fn[i] = f.grad(x[i]);
  }
  // Eigen's float erf is a rational approximation good to a few ulp of erf (~1e-7 absolute); GELU scales
  // that error by |x| / 2 <= 5 here, hence 2e-6 absolute (measured max: 1.5e-6 for GELU, 2.3e-7 for GELU').
  MINT_REQUIRE_CLOSE(testing::compare(y, f_ref, {2e-6, 1e-6}, "gelu (vectorised) vs double erf"));
  MINT_REQUIRE_CLOSE(testing::compare(dx, g_ref, {1e-6, 1e-6}, "gelu' (vectorised) vs double erf"));
  MINT_REQUIRE_CLOSE(testing::compare(y, f_fn, {1e-6, 1e-6}, "gelu vectorised vs functor"));
  MINT_REQUIRE_CLOSE(testing::compare(dx, g_fn, {1e-6, 1e-6}, "gelu' vectorised vs functor"));
}

TEST_CASE("gelu backward: finite differences", "[nn][gelu][gradcheck]") {
  auto x = uniform(Shape{5, 7}, 41, -4.f, 4.f), r = uniform(x.shape(), 42);
  auto dx = Tensor<>::zeros(x.shape());
  nn::gelu_backward(r, x, dx);
  MINT_REQUIRE_CLOSE(testing::check_gradient([&] { return testing::dot(nn::gelu(x), r); }, x, dx, "gelu dx"));
}

TEST_CASE("relu: values, the shared functor, gradient 0 at 0 and NaN propagation", "[nn][relu]") {
  auto x = Tensor<>::from(Shape{6}, {-2.f, -0.f, 0.f, 1e-30f, 3.f, std::numeric_limits<float>::quiet_NaN()});
  auto y = nn::relu(x);
  const fn::Relu f;
  const float want[5] = {0.f, 0.f, 0.f, 1e-30f, 3.f};
  for (int i = 0; i < 5; ++i) {
    REQUIRE(y[i] == want[i]);
    REQUIRE(f(x[i]) == want[i]);
  }
  REQUIRE(std::isnan(y[5]));  // torch.relu(nan) is nan
  auto dx = Tensor<>::full(x.shape(), 1.f);
  nn::relu_backward(Tensor<>::full(x.shape(), std::numeric_limits<float>::infinity()), x, dx);
  // dx += dy unless x <= 0: torch's threshold_backward, so x = 0 gets 0, NaN passes dy, no 0 * inf = NaN appears
  const float inf = std::numeric_limits<float>::infinity();
  const float dwant[6] = {1.f, 1.f, 1.f, inf, inf, inf};
  for (int i = 0; i < 6; ++i) REQUIRE(dx[i] == dwant[i]);
}

TEST_CASE("relu backward: finite differences", "[nn][relu][gradcheck]") {
  auto x = uniform(Shape{5, 7}, 46, -2.f, 2.f), r = uniform(x.shape(), 47);
  for (std::int64_t i = 0; i < x.numel(); ++i) x[i] += x[i] >= 0 ? 0.05f : -0.05f;  // |x| > 2 eps: no kink inside
  auto dx = Tensor<>::zeros(x.shape());
  nn::relu_backward(r, x, dx);
  MINT_REQUIRE_CLOSE(testing::check_gradient([&] { return testing::dot(nn::relu(x), r); }, x, dx, "relu dx"));
}

TEST_CASE("softmax rows sum to one and are shift invariant", "[nn][softmax]") {
  auto x = uniform(Shape{3, 6}, 43, -50.f, 50.f);
  auto y = nn::softmax(x);
  for (int r = 0; r < 3; ++r) {
    double s = 0;
    for (int j = 0; j < 6; ++j) s += y[r * 6 + j];
    REQUIRE(std::abs(s - 1.0) < 1e-6);
  }
  auto x2 = x.clone();
  for (int i = 0; i < 18; ++i) x2[i] += 1000.f;  // stability: no overflow after a large shift
  MINT_REQUIRE_CLOSE(testing::compare(nn::softmax(x2), y, {1e-5, 1e-3}, "softmax shifted"));
}

TEST_CASE("softmax backward: finite differences", "[nn][softmax][gradcheck]") {
  auto x = uniform(Shape{4, 9}, 44, -3.f, 3.f), r = uniform(x.shape(), 45);
  auto dx = Tensor<>::zeros(x.shape());
  nn::softmax_backward(r, nn::softmax(x), dx);
  MINT_REQUIRE_CLOSE(testing::check_gradient([&] { return testing::dot(nn::softmax(x), r); }, x, dx, "softmax dx"));
}

// On the CPU linear_gelu is defined as the composition, so this pins the definition (and the saved
// pre-activation) that the fused CUDA kernel is compared against in tests/cuda/; the CPU side cannot drift.
TEST_CASE("linear_gelu is linear then gelu, and keeps the pre-activation", "[nn][gelu]") {
  auto x = uniform(Shape{2, 5, 7}, 90), w = uniform(Shape{11, 7}, 91), b = uniform(Shape{11}, 92);
  Tensor<> pre;
  auto y = nn::linear_gelu(x, w, b, pre);
  auto ref_pre = nn::linear(x, w, &b);
  MINT_REQUIRE_CLOSE(testing::compare(pre, ref_pre, {0, 0}, "linear_gelu pre-activation"));
  MINT_REQUIRE_CLOSE(testing::compare(y, nn::gelu(ref_pre), {0, 0}, "linear_gelu activation"));
}

TEST_CASE("scale_inplace multiplies every element", "[nn][elementwise]") {
  auto a = uniform(Shape{3, 7}, 93), ref = a.clone();
  nn::scale_inplace(a, -0.5f);
  for (std::int64_t i = 0; i < a.numel(); ++i) REQUIRE(a[i] == -0.5f * ref[i]);
}

TEST_CASE("add_scalar_inplace adds to every element", "[nn][elementwise]") {
  auto a = uniform(Shape{3, 7}, 94), ref = a.clone();
  nn::add_scalar_inplace(a, 1.5f);
  for (std::int64_t i = 0; i < a.numel(); ++i) REQUIRE(a[i] == ref[i] + 1.5f);
}
