// cross-entropy (hard and soft targets), KL divergence with temperature and the squared error: values against
// closed forms, gradients.
#include "test_util.hpp"

#include <cmath>

#include "mint/nn/losses.hpp"

using namespace mint;
using testing::uniform;

TEST_CASE("cross_entropy value and gradient", "[nn][losses][gradcheck]") {
  auto z = Tensor<>::from(Shape{1, 3}, {1.f, 2.f, 3.f});
  // -log(e^1 / (e^1 + e^2 + e^3)) = 2.4076059644
  REQUIRE(std::abs(nn::cross_entropy(z, {0}) - 2.4076059644) < 1e-6);
  auto x = uniform(Shape{4, 6}, 81, -3.f, 3.f);
  std::vector<int> y{0, 5, 2, 2};
  auto dx = Tensor<>::zeros(x.shape());
  nn::cross_entropy(x, y, &dx);
  MINT_REQUIRE_CLOSE(testing::check_gradient([&] { return nn::cross_entropy(x, y); }, x, dx, "cross_entropy dlogits",
                                             {.eps = 1e-2, .tol = {1e-4, 1e-2}}));
  REQUIRE_THROWS_WITH(nn::cross_entropy(x, {0, 1, 9, 2}), Catch::Contains("label 9"));
  REQUIRE_THROWS_WITH(nn::cross_entropy(x, {0, 1}), Catch::Contains("2 labels"));
}

TEST_CASE("soft_cross_entropy: one-hot targets are cross_entropy, smoothed targets the closed form",
          "[nn][losses][gradcheck]") {
  auto x = uniform(Shape{4, 6}, 84, -3.f, 3.f);
  const std::vector<int> y{0, 5, 2, 2};
  auto onehot = Tensor<>::zeros(x.shape());
  for (int i = 0; i < 4; ++i) onehot[i * 6 + y[static_cast<std::size_t>(i)]] = 1.0f;
  auto d_hard = Tensor<>::zeros(x.shape()), d_soft = Tensor<>::zeros(x.shape());
  // Bit for bit: the extra terms are 0 * log p, which add nothing (the trainer relies on it).
  REQUIRE(nn::soft_cross_entropy(x, onehot, &d_soft) == nn::cross_entropy(x, y, &d_hard));
  for (std::int64_t i = 0; i < x.numel(); ++i) REQUIRE(d_soft[i] == d_hard[i]);

  // Smoothed, mixed targets (rows sum to 1): value against the sum written out in double, and the gradient.
  auto t = Tensor<>::zeros(x.shape());
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 6; ++j)
      t[i * 6 + j] = (j == y[static_cast<std::size_t>(i)] ? 0.6f : 0.0f) + (j == 3 ? 0.3f : 0.0f) + 0.1f / 6;
  double want = 0.0;
  for (int i = 0; i < 4; ++i) {
    double z = 0.0;
    for (int j = 0; j < 6; ++j) z += std::exp(static_cast<double>(x[i * 6 + j]));
    for (int j = 0; j < 6; ++j) want -= t[i * 6 + j] * (x[i * 6 + j] - std::log(z));
  }
  REQUIRE(std::abs(nn::soft_cross_entropy(x, t) - want / 4) < 1e-6);  // float result of a double sum
  auto dx = Tensor<>::zeros(x.shape());
  nn::soft_cross_entropy(x, t, &dx);
  MINT_REQUIRE_CLOSE(testing::check_gradient([&] { return nn::soft_cross_entropy(x, t); }, x, dx,
                                             "soft_cross_entropy dlogits", {.eps = 1e-2, .tol = {1e-4, 1e-2}}));

  auto bad = t.clone();
  bad[7] += 0.5f;
  REQUIRE_THROWS_WITH(nn::soft_cross_entropy(x, bad), Catch::Contains("targets of image 1 sum to"));
  bad = t.clone();
  bad[0] = -0.1f, bad[1] += 0.1f;
  REQUIRE_THROWS_WITH(nn::soft_cross_entropy(x, bad), Catch::Contains("not a probability"));
  bad[0] = std::nanf("");
  REQUIRE_THROWS_WITH(nn::soft_cross_entropy(x, bad), Catch::Contains("not a probability"));
  REQUIRE_THROWS_WITH(nn::soft_cross_entropy(x, Tensor<>::zeros(Shape{4, 5})), Catch::Contains("targets"));
}

TEST_CASE("kl_div_temperature value and gradient", "[nn][losses][gradcheck]") {
  auto s = uniform(Shape{3, 5}, 82, -2.f, 2.f), t = uniform(Shape{3, 5}, 83, -2.f, 2.f);
  REQUIRE(std::abs(nn::kl_div_temperature(t, t, 4.f)) < 1e-7);  // KL(p || p) = 0
  for (float tau : {1.f, 4.f}) {
    // closed form for image 0
    double ps[5], pt[5], zs = 0, zt = 0, kl = 0;
    for (int j = 0; j < 5; ++j) zs += ps[j] = std::exp(s[j] / tau), zt += pt[j] = std::exp(t[j] / tau);
    for (int j = 0; j < 5; ++j) kl += pt[j] / zt * std::log((pt[j] / zt) / (ps[j] / zs));
    auto s0 = Tensor<>::from(Shape{1, 5}, {s[0], s[1], s[2], s[3], s[4]});
    auto t0 = Tensor<>::from(Shape{1, 5}, {t[0], t[1], t[2], t[3], t[4]});
    REQUIRE(std::abs(nn::kl_div_temperature(s0, t0, tau) - kl * tau * tau) < 1e-5);
    auto ds = Tensor<>::zeros(s.shape());
    nn::kl_div_temperature(s, t, tau, &ds);
    MINT_REQUIRE_CLOSE(testing::check_gradient([&] { return nn::kl_div_temperature(s, t, tau); }, s, ds, "kl dstudent",
                                               {.eps = 1e-2, .tol = {1e-4, 1e-2}}));
  }
}

TEST_CASE("kl_div_temperature against PyTorch (tests/fixtures/kl_div.safetensors)", "[nn][losses][fixture]") {
  // torch in float64: tau^2 * F.kl_div(log_softmax(s / tau), softmax(t / tau), 'batchmean') and its autograd
  // gradient, for logits in [-3, 3] and one row in [-60, 60]. mint computes in float32 with double
  // log-softmax rows: loss within 1e-5 relative, gradient within rel_to_max(1e-5, 1e-4) (float32 rounding of
  // softmax differences).
  const auto& f = testing::fixture_file("kl_div.safetensors");
  const auto& s = f.at("student");
  const auto& t = f.at("teacher");
  for (int tau : {1, 4, 20}) {
    const std::string k = "tau" + std::to_string(tau);
    auto ds = Tensor<>::zeros(s.shape());
    const float loss = nn::kl_div_temperature(s, t, static_cast<float>(tau), &ds);
    const float ref = f.at(k + ".loss")[0];
    INFO("tau " << tau << ": mint " << loss << ", torch " << ref);
    REQUIRE(std::abs(loss - ref) <= 1e-5 * std::abs(ref));
    const auto& dref = f.at(k + ".dstudent");
    MINT_REQUIRE_CLOSE(testing::compare(ds, dref, testing::rel_to_max(dref), k + ".dstudent"));
  }
}

TEST_CASE("squared_error value, gradient, scale and shape errors", "[nn][losses][gradcheck]") {
  auto a = Tensor<>::from(Shape{2, 2}, {1.f, 2.f, 3.f, 4.f}), b = Tensor<>::from(Shape{2, 2}, {0.f, 2.f, 5.f, 1.f});
  REQUIRE(nn::squared_error(a, b, 0.25) == Approx((1.0 + 0.0 + 4.0 + 9.0) / 4.0).epsilon(1e-12));  // the mean
  auto da = Tensor<>::full(a.shape(), 1.f);  // the gradient is added, scaled: 1 + 3 * 2 * 0.25 * (a - b)
  nn::squared_error(a, b, 0.25, &da, 3.0);
  const float expected[] = {2.5f, 1.f, -2.f, 5.5f};
  for (int i = 0; i < 4; ++i) REQUIRE(da[i] == Approx(expected[i]).margin(1e-6));
  auto x = uniform(Shape{3, 4}, 84, -2.f, 2.f), y = uniform(Shape{3, 4}, 85, -2.f, 2.f);
  auto dx = Tensor<>::zeros(x.shape());
  nn::squared_error(x, y, 0.1, &dx);
  // a quadratic: central differences are exact up to float rounding of the perturbed inputs
  MINT_REQUIRE_CLOSE(testing::check_gradient([&] { return nn::squared_error(x, y, 0.1); }, x, dx, "squared_error da",
                                             {.eps = 1e-2, .tol = {1e-4, 1e-3}}));
  REQUIRE_THROWS_WITH(nn::squared_error(x, Tensor<>::zeros(Shape{4, 3}), 1.0), Catch::Contains("squared_error: b"));
  auto bad = Tensor<>::zeros(Shape{12});
  REQUIRE_THROWS_WITH(nn::squared_error(x, y, 1.0, &bad), Catch::Contains("squared_error: d_a"));
}
