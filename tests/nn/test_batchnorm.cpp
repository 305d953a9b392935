// batch_norm2d (train and eval) and channel_stats: forward and running statistics against naive double loops,
// gradients against finite differences in both backward modes, shape errors, and PyTorch parity
// (tests/fixtures/cnn_ops.safetensors, written by make_cnn_fixtures.py).
#include "test_util.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "mint/autodiff/backward.hpp"
#include "mint/io/safetensors.hpp"
#include "mint/nn/batchnorm.hpp"

using namespace mint;
using testing::uniform;

namespace {

// x [N, C, H, W] with per-channel offsets and scales, so channels have different non-zero means.
Tensor<> channel_input(const Shape& s, std::uint64_t seed) {
  auto x = uniform(s, seed, -1.f, 1.f);
  const std::int64_t c = s[1], hw = s[2] * s[3];
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    const auto ch = (i / hw) % c;
    x[i] = x[i] * (0.5f + static_cast<float>(ch)) + 0.7f * static_cast<float>(ch) - 1.0f;
  }
  return x;
}

struct NaiveStats {
  std::vector<double> mean, var;  // biased
};

NaiveStats naive_stats(const Tensor<>& x) {
  const auto n = x.dim(0), c = x.dim(1), hw = x.dim(2) * x.dim(3);
  NaiveStats s{std::vector<double>(static_cast<std::size_t>(c)), std::vector<double>(static_cast<std::size_t>(c))};
  for (std::int64_t ch = 0; ch < c; ++ch) {
    double m = 0, v = 0;
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t k = 0; k < hw; ++k) m += x[(i * c + ch) * hw + k];
    m /= static_cast<double>(n * hw);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t k = 0; k < hw; ++k) v += (x[(i * c + ch) * hw + k] - m) * (x[(i * c + ch) * hw + k] - m);
    s.mean[static_cast<std::size_t>(ch)] = m;
    s.var[static_cast<std::size_t>(ch)] = v / static_cast<double>(n * hw);
  }
  return s;
}

Tensor<> naive_bn(const Tensor<>& x, const std::vector<double>& mean, const std::vector<double>& var, const Tensor<>& g,
                  const Tensor<>& b, double eps) {
  const auto c = x.dim(1), hw = x.dim(2) * x.dim(3);
  auto y = Tensor<>::empty(x.shape());
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    const auto ch = static_cast<std::size_t>((i / hw) % c);
    y[i] = static_cast<float>((x[i] - mean[ch]) / std::sqrt(var[ch] + eps) * g[static_cast<std::int64_t>(ch)] +
                              b[static_cast<std::int64_t>(ch)]);
  }
  return y;
}

}  // namespace

TEST_CASE("channel_stats matches a naive loop, its backward matches finite differences", "[nn][batchnorm]") {
  auto x = channel_input(Shape{3, 4, 5, 6}, 1);
  auto st = nn::channel_stats(x);
  const auto ref = naive_stats(x);
  for (std::int64_t c = 0; c < 4; ++c) {
    REQUIRE(st.mean[c] == Approx(ref.mean[static_cast<std::size_t>(c)]).epsilon(1e-6).margin(1e-7));
    REQUIRE(st.var[c] == Approx(ref.var[static_cast<std::size_t>(c)]).epsilon(1e-6));
  }
  auto dm = uniform(Shape{4}, 2), dv = uniform(Shape{4}, 3);
  auto loss = [&] {
    auto s = nn::channel_stats(x);
    return testing::dot(s.mean, dm) + testing::dot(s.var, dv);
  };
  auto dx = Tensor<>::zeros(x.shape());
  nn::channel_stats_backward(x, st, &dm, &dv, dx);
  MINT_REQUIRE_CLOSE(testing::check_gradient(loss, x, dx, "channel_stats dx"));
  // each statistic alone (nullptr = zero gradient)
  auto dx_m = Tensor<>::zeros(x.shape()), dx_v = Tensor<>::zeros(x.shape());
  nn::channel_stats_backward(x, st, &dm, nullptr, dx_m);
  nn::channel_stats_backward(x, st, nullptr, &dv, dx_v);
  for (std::int64_t i = 0; i < x.numel(); ++i) REQUIRE(dx_m[i] + dx_v[i] == Approx(dx[i]).margin(1e-7));
  MINT_REQUIRE_CLOSE(testing::check_gradient([&] { return testing::dot(nn::channel_stats(x).var, dv); }, x, dx_v,
                                             "channel_stats dx (var only)"));
}

TEST_CASE("batch_norm2d train forward: batch statistics, running statistics with the unbiased variance", "[nn][batchnorm]") {
  auto x = channel_input(Shape{2, 3, 4, 5}, 11);
  auto g = uniform(Shape{3}, 12, 0.5f, 1.5f), b = uniform(Shape{3}, 13);
  auto rm = uniform(Shape{3}, 14), rv = uniform(Shape{3}, 15, 0.5f, 2.f);
  const auto rm0 = rm.clone(), rv0 = rv.clone();
  nn::BatchNormSaved saved;
  auto y = nn::batch_norm2d(x, &g, &b, &rm, &rv, {}, &saved);
  const auto st = naive_stats(x);
  MINT_REQUIRE_CLOSE(testing::compare(y, naive_bn(x, st.mean, st.var, g, b, 1e-5), {2e-6, 1e-5}, "batch_norm2d train"));
  const double m = 2 * 4 * 5;
  for (std::int64_t c = 0; c < 3; ++c) {
    const auto k = static_cast<std::size_t>(c);
    REQUIRE(rm[c] == Approx(0.9 * rm0[c] + 0.1 * st.mean[k]).epsilon(1e-6).margin(1e-7));
    REQUIRE(rv[c] == Approx(0.9 * rv0[c] + 0.1 * st.var[k] * m / (m - 1)).epsilon(1e-6));
  }
  REQUIRE(saved.training);
  // eps and momentum are options; affine = False is nullptr weight and bias
  nn::BatchNormOptions opt{true, 0.3f, 1e-2f};
  auto rm2 = rm0.clone(), rv2 = rv0.clone();
  auto y2 = nn::batch_norm2d(x, nullptr, nullptr, &rm2, &rv2, opt, nullptr);
  auto ones = Tensor<>::full(Shape{3}, 1.f), zeros = Tensor<>::zeros(Shape{3});
  MINT_REQUIRE_CLOSE(testing::compare(y2, naive_bn(x, st.mean, st.var, ones, zeros, 1e-2), {2e-6, 1e-5}, "batch_norm2d no affine"));
  REQUIRE(rm2[1] == Approx(0.7 * rm0[1] + 0.3 * st.mean[1]).epsilon(1e-6));
  // without running statistics (track_running_stats = False)
  auto y3 = nn::batch_norm2d(x, &g, &b, nullptr, nullptr, {}, nullptr);
  MINT_REQUIRE_CLOSE(testing::compare(y3, y, {0, 0}, "batch_norm2d without running stats"));
}

TEST_CASE("batch_norm2d eval forward uses the running statistics", "[nn][batchnorm]") {
  auto x = channel_input(Shape{2, 3, 4, 5}, 21);
  auto g = uniform(Shape{3}, 22, 0.5f, 1.5f), b = uniform(Shape{3}, 23);
  auto rm = uniform(Shape{3}, 24), rv = uniform(Shape{3}, 25, 0.5f, 2.f);
  const auto rm0 = rm.clone(), rv0 = rv.clone();
  nn::BatchNormSaved saved;
  auto y = nn::batch_norm2d(x, &g, &b, &rm, &rv, {false}, &saved);
  std::vector<double> mean, var;
  for (std::int64_t c = 0; c < 3; ++c) mean.push_back(rm0[c]), var.push_back(rv0[c]);
  MINT_REQUIRE_CLOSE(testing::compare(y, naive_bn(x, mean, var, g, b, 1e-5), {2e-6, 1e-5}, "batch_norm2d eval"));
  MINT_REQUIRE_CLOSE(testing::compare(rm, rm0, {0, 0}, "running_mean unchanged in eval"));
  MINT_REQUIRE_CLOSE(testing::compare(rv, rv0, {0, 0}, "running_var unchanged in eval"));
  REQUIRE_FALSE(saved.training);
  // a single value per channel is fine in eval mode (torch too)
  REQUIRE_NOTHROW(nn::batch_norm2d(uniform(Shape{1, 3, 1, 1}, 26), &g, &b, &rm, &rv, {false}, nullptr));
}

TEST_CASE("batch_norm2d backward: finite differences, train and eval, input-only and full", "[nn][batchnorm][gradcheck]") {
  auto x = channel_input(Shape{2, 3, 3, 4}, 31);
  auto g = uniform(Shape{3}, 32, 0.5f, 1.5f), b = uniform(Shape{3}, 33);
  auto rm = uniform(Shape{3}, 34), rv = uniform(Shape{3}, 35, 0.5f, 2.f);
  auto r = uniform(x.shape(), 36);
  for (bool training : {true, false}) {
    CAPTURE(training);
    const nn::BatchNormOptions opt{training};
    // running statistics are read (eval) but not updated by the loss: copies
    auto loss = [&] {
      auto m = rm.clone(), v = rv.clone();
      return testing::dot(nn::batch_norm2d(x, &g, &b, &m, &v, opt, nullptr), r);
    };
    for (auto mode : {Backward::InputOnly, Backward::Full}) {
      Param<> gp{g, {}}, bp{b, {}};
      nn::BatchNormSaved saved;
      auto m = rm.clone(), v = rv.clone();
      nn::batch_norm2d(x, &g, &b, &m, &v, opt, &saved);
      auto dx = Tensor<>::zeros(x.shape());
      nn::batch_norm2d_backward(r, x, &g, saved, &dx, gp.grad_for(mode), bp.grad_for(mode));
      MINT_REQUIRE_CLOSE(testing::check_gradient(loss, x, dx, "batch_norm2d dx"));
      if (mode == Backward::Full) {
        MINT_REQUIRE_CLOSE(testing::check_gradient(loss, g, gp.grad, "batch_norm2d dgamma"));
        MINT_REQUIRE_CLOSE(testing::check_gradient(loss, b, bp.grad, "batch_norm2d dbeta"));
      } else {
        REQUIRE_FALSE(gp.grad.defined());
        REQUIRE_FALSE(bp.grad.defined());
      }
    }
  }
  // affine = False: the gradient through the batch statistics alone
  auto loss0 = [&] { return testing::dot(nn::batch_norm2d(x, nullptr, nullptr, nullptr, nullptr, {}, nullptr), r); };
  nn::BatchNormSaved saved;
  nn::batch_norm2d(x, nullptr, nullptr, nullptr, nullptr, {}, &saved);
  auto dx = Tensor<>::zeros(x.shape());
  nn::batch_norm2d_backward(r, x, nullptr, saved, &dx, nullptr, nullptr);
  MINT_REQUIRE_CLOSE(testing::check_gradient(loss0, x, dx, "batch_norm2d dx (no affine)"));
}

TEST_CASE("batch_norm2d: shape errors name the op, the argument and both shapes", "[nn][batchnorm]") {
  auto x = uniform(Shape{2, 3, 4, 4}, 41), g = uniform(Shape{4}, 42), b = uniform(Shape{3}, 43);
  REQUIRE_THROWS_WITH(nn::batch_norm2d(x, &g, &b, nullptr, nullptr, {}, nullptr),
                      Catch::Contains("batch_norm2d: weight") && Catch::Contains("[3]") && Catch::Contains("[4]"));
  REQUIRE_THROWS_WITH(nn::batch_norm2d(uniform(Shape{2, 3, 4}, 44), &b, &b, nullptr, nullptr, {}, nullptr),
                      Catch::Contains("batch_norm2d") && Catch::Contains("[2, 3, 4]"));
  REQUIRE_THROWS_WITH(nn::batch_norm2d(x, &b, &b, nullptr, nullptr, {false}, nullptr), Catch::Contains("eval mode needs"));
  REQUIRE_THROWS_WITH(nn::batch_norm2d(uniform(Shape{1, 3, 1, 1}, 45), &b, &b, nullptr, nullptr, {}, nullptr),
                      Catch::Contains("more than 1 value per channel"));
  nn::BatchNormSaved saved;
  nn::batch_norm2d(x, &b, &b, nullptr, nullptr, {}, &saved);
  auto dx = Tensor<>::zeros(x.shape());
  REQUIRE_THROWS_WITH(nn::batch_norm2d_backward(uniform(Shape{2, 3, 4, 5}, 46), x, &b, saved, &dx, nullptr, nullptr),
                      Catch::Contains("batch_norm2d_backward: d_output") && Catch::Contains("[2, 3, 4, 4]") &&
                          Catch::Contains("[2, 3, 4, 5]"));
  auto st = nn::channel_stats(x);
  REQUIRE_THROWS_WITH(nn::channel_stats_backward(x, st, &g, nullptr, dx),
                      Catch::Contains("channel_stats_backward: d_mean") && Catch::Contains("[3]") && Catch::Contains("[4]"));
}

TEST_CASE("batch_norm2d and channel_stats match PyTorch", "[nn][batchnorm][parity]") {
  const auto& f = testing::fixture_file("cnn_ops.safetensors");
  for (std::string p : {"batch_norm2d_train", "batch_norm2d_eval"}) {
    INFO(p);
    const bool training = p == "batch_norm2d_train";
    const auto& x = f.at(p + ".x");
    const auto& g = f.at(p + ".weight");
    const auto& b = f.at(p + ".bias");
    auto rm = f.at(p + ".running_mean").clone(), rv = f.at(p + ".running_var").clone();
    nn::BatchNormSaved saved;
    auto y = nn::batch_norm2d(x, &g, &b, &rm, &rv, {training}, &saved);
    MINT_REQUIRE_CLOSE(testing::compare(y, f.at(p + ".y"), testing::rel_to_max(f.at(p + ".y")), p + ".y"));
    if (training) {
      MINT_REQUIRE_CLOSE(testing::compare(rm, f.at(p + ".running_mean_out"), testing::rel_to_max(f.at(p + ".running_mean_out")), p + ".running_mean_out"));
      MINT_REQUIRE_CLOSE(testing::compare(rv, f.at(p + ".running_var_out"), testing::rel_to_max(f.at(p + ".running_var_out")), p + ".running_var_out"));
    }
    Param<> gp{g, {}}, bp{b, {}};
    auto dx = Tensor<>::zeros(x.shape());
    nn::batch_norm2d_backward(f.at(p + ".dy"), x, &g, saved, &dx, gp.grad_for(Backward::Full), bp.grad_for(Backward::Full));
    MINT_REQUIRE_CLOSE(testing::compare(dx, f.at(p + ".dx"), testing::rel_to_max(f.at(p + ".dx")), p + ".dx"));
    MINT_REQUIRE_CLOSE(testing::compare(gp.grad, f.at(p + ".dweight"), testing::rel_to_max(f.at(p + ".dweight")), p + ".dweight"));
    MINT_REQUIRE_CLOSE(testing::compare(bp.grad, f.at(p + ".dbias"), testing::rel_to_max(f.at(p + ".dbias")), p + ".dbias"));
  }
  const auto& x = f.at("channel_stats.x");
  auto st = nn::channel_stats(x);
  MINT_REQUIRE_CLOSE(testing::compare(st.mean, f.at("channel_stats.mean"), testing::rel_to_max(f.at("channel_stats.mean")), "channel_stats.mean"));
  MINT_REQUIRE_CLOSE(testing::compare(st.var, f.at("channel_stats.var"), testing::rel_to_max(f.at("channel_stats.var")), "channel_stats.var"));
  auto dx = Tensor<>::zeros(x.shape());
  nn::channel_stats_backward(x, st, &f.at("channel_stats.dmean"), &f.at("channel_stats.dvar"), dx);
  MINT_REQUIRE_CLOSE(testing::compare(dx, f.at("channel_stats.dx"), testing::rel_to_max(f.at("channel_stats.dx")), "channel_stats.dx"));
}
