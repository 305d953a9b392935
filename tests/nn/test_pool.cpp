// max_pool2d, avg_pool2d, adaptive / global average pooling: forward against naive loops, the max-pool tie and
// NaN rules, gradients against finite differences, shape errors, and PyTorch parity
// (tests/fixtures/cnn_ops.safetensors, written by make_cnn_fixtures.py).
#include "test_util.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "mint/io/safetensors.hpp"
#include "mint/nn/pool.hpp"

using namespace mint;
using testing::uniform;

namespace {

// Distinct values at least 0.05 apart (a Philox shuffle of -1 + 0.05 k): a finite-difference step of 1e-2 never
// changes which element is a window's maximum.
Tensor<> spaced(const Shape& s, std::uint64_t seed) {
  auto keys = uniform(s, seed);
  std::vector<std::int64_t> order(static_cast<std::size_t>(keys.numel()));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](auto a, auto b) { return keys[a] < keys[b]; });
  auto x = Tensor<>::empty(s);
  for (std::size_t k = 0; k < order.size(); ++k) x[order[k]] = -1.0f + 0.05f * static_cast<float>(k);
  return x;
}

// Naive pooling over the padded window; max uses -inf padding, avg divides by the clipped-to-padded window size.
Tensor<> naive_pool(const Tensor<>& x, const nn::Pool2dOptions& o, bool max) {
  const auto planes = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
  const auto sh = o.stride_h ? o.stride_h : o.kernel_h, sw = o.stride_w ? o.stride_w : o.kernel_w;
  const auto oh = (h + 2 * o.pad_h - o.kernel_h) / sh + 1, ow = (w + 2 * o.pad_w - o.kernel_w) / sw + 1;
  auto y = Tensor<>::empty(Shape{x.dim(0), x.dim(1), oh, ow});
  for (std::int64_t p = 0; p < planes; ++p)
    for (std::int64_t i = 0; i < oh; ++i)
      for (std::int64_t j = 0; j < ow; ++j) {
        double best = -std::numeric_limits<double>::infinity(), sum = 0;
        std::int64_t count = 0;
        for (std::int64_t a = 0; a < o.kernel_h; ++a)
          for (std::int64_t c = 0; c < o.kernel_w; ++c) {
            const auto iy = i * sh - o.pad_h + a, ix = j * sw - o.pad_w + c;
            if (iy >= h + o.pad_h || ix >= w + o.pad_w) continue;  // beyond the padded border: not in the window
            ++count;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;  // padding: 0 for avg, -inf for max
            const double v = x[(p * h + iy) * w + ix];
            best = std::max(best, v);
            sum += v;
          }
        y[(p * oh + i) * ow + j] = static_cast<float>(max ? best : sum / static_cast<double>(count));
      }
  return y;
}

Tensor<> naive_adaptive(const Tensor<>& x, std::int64_t oh, std::int64_t ow) {
  const auto planes = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
  auto y = Tensor<>::empty(Shape{x.dim(0), x.dim(1), oh, ow});
  for (std::int64_t p = 0; p < planes; ++p)
    for (std::int64_t i = 0; i < oh; ++i)
      for (std::int64_t j = 0; j < ow; ++j) {
        const auto y0 = static_cast<std::int64_t>(std::floor(static_cast<double>(i * h) / static_cast<double>(oh)));
        const auto y1 = static_cast<std::int64_t>(std::ceil(static_cast<double>((i + 1) * h) / static_cast<double>(oh)));
        const auto x0 = static_cast<std::int64_t>(std::floor(static_cast<double>(j * w) / static_cast<double>(ow)));
        const auto x1 = static_cast<std::int64_t>(std::ceil(static_cast<double>((j + 1) * w) / static_cast<double>(ow)));
        double s = 0;
        for (auto a = y0; a < y1; ++a)
          for (auto c = x0; c < x1; ++c) s += x[(p * h + a) * w + c];
        y[(p * oh + i) * ow + j] = static_cast<float>(s / static_cast<double>((y1 - y0) * (x1 - x0)));
      }
  return y;
}

const std::vector<nn::Pool2dOptions> kPoolCases = {
    nn::Pool2dOptions::square(3, 2, 1), nn::Pool2dOptions::square(2),     nn::Pool2dOptions::square(3, 1, 0),
    nn::Pool2dOptions{3, 2, 2, 1, 1, 0}, nn::Pool2dOptions::square(2, 3, 1),
};

}  // namespace

TEST_CASE("max_pool2d and avg_pool2d forward match naive loops", "[nn][pool]") {
  auto x = uniform(Shape{2, 3, 9, 8}, 1);
  for (const auto& o : kPoolCases) {
    CAPTURE(o.kernel_h, o.kernel_w, o.stride_h, o.stride_w, o.pad_h, o.pad_w);
    nn::MaxPoolSaved saved;
    auto ym = nn::max_pool2d(x, o, &saved);
    MINT_REQUIRE_CLOSE(testing::compare(ym, naive_pool(x, o, true), {0, 0}, "max_pool2d"));
    for (std::int64_t i = 0; i < ym.numel(); ++i) {  // the saved argmax points at the max of the right plane
      const auto plane = i / (ym.dim(2) * ym.dim(3));
      REQUIRE(x[plane * 72 + saved.argmax[static_cast<std::size_t>(i)]] == ym[i]);
    }
    MINT_REQUIRE_CLOSE(testing::compare(nn::avg_pool2d(x, o), naive_pool(x, o, false), {1e-6, 1e-6}, "avg_pool2d"));
  }
}

TEST_CASE("max_pool2d ties go to the first maximum in scan order, NaN propagates", "[nn][pool]") {
  // One 1x1x2x3 plane, kernel 2x2 stride 1: windows over columns {0,1} and {1,2}.
  auto x = Tensor<>::from(Shape{1, 1, 2, 3}, {1.f, 5.f, 5.f, 5.f, 2.f, 5.f});
  nn::MaxPoolSaved saved;
  auto y = nn::max_pool2d(x, nn::Pool2dOptions::square(2, 1), &saved);
  REQUIRE(y.shape() == Shape{1, 1, 1, 2});
  REQUIRE(saved.argmax == std::vector<std::int32_t>{1, 1});  // both windows: (0,1) is scanned before (0,2), (1,0)
  auto dx = Tensor<>::zeros(x.shape());
  nn::max_pool2d_backward(Tensor<>::from(Shape{1, 1, 1, 2}, {1.f, 10.f}), saved, dx);
  MINT_REQUIRE_CLOSE(testing::compare(dx, Tensor<>::from(Shape{1, 1, 2, 3}, {0, 11, 0, 0, 0, 0}), {0, 0}, "max_pool2d ties"));
  x[4] = std::numeric_limits<float>::quiet_NaN();
  auto yn = nn::max_pool2d(x, nn::Pool2dOptions::square(2, 1), &saved);
  REQUIRE(std::isnan(yn[0]));
  REQUIRE(std::isnan(yn[1]));
  REQUIRE(saved.argmax == std::vector<std::int32_t>{4, 4});
}

TEST_CASE("max_pool2d and avg_pool2d backward: finite differences", "[nn][pool][gradcheck]") {
  auto x = spaced(Shape{2, 2, 7, 6}, 11);
  for (const auto& o : kPoolCases) {
    CAPTURE(o.kernel_h, o.kernel_w, o.stride_h, o.stride_w, o.pad_h, o.pad_w);
    nn::MaxPoolSaved saved;
    auto ym = nn::max_pool2d(x, o, &saved);
    auto r = uniform(ym.shape(), 12);
    auto dx = Tensor<>::zeros(x.shape());
    nn::max_pool2d_backward(r, saved, dx);
    MINT_REQUIRE_CLOSE(testing::check_gradient([&] { return testing::dot(nn::max_pool2d(x, o, nullptr), r); }, x, dx,
                                               "max_pool2d dx", {.max_coords = 200}));
    auto dxa = Tensor<>::zeros(x.shape());
    nn::avg_pool2d_backward(r, o, dxa);
    MINT_REQUIRE_CLOSE(testing::check_gradient([&] { return testing::dot(nn::avg_pool2d(x, o), r); }, x, dxa,
                                               "avg_pool2d dx", {.max_coords = 200}));
  }
}

TEST_CASE("adaptive and global average pooling: naive loop and finite differences", "[nn][pool][gradcheck]") {
  auto x = uniform(Shape{2, 3, 7, 9}, 21);
  for (const auto& size : std::vector<std::pair<int, int>>{{1, 1}, {3, 4}, {7, 9}, {2, 5}, {4, 2}}) {
    const int oh = size.first, ow = size.second;
    CAPTURE(oh, ow);
    auto y = nn::adaptive_avg_pool2d(x, oh, ow);
    MINT_REQUIRE_CLOSE(testing::compare(y, naive_adaptive(x, oh, ow), {1e-6, 1e-6}, "adaptive_avg_pool2d"));
    auto r = uniform(y.shape(), 22);
    auto dx = Tensor<>::zeros(x.shape());
    nn::adaptive_avg_pool2d_backward(r, dx);
    MINT_REQUIRE_CLOSE(testing::check_gradient([&] { return testing::dot(nn::adaptive_avg_pool2d(x, oh, ow), r); }, x,
                                               dx, "adaptive_avg_pool2d dx"));
  }
  auto g = nn::global_avg_pool2d(x);
  REQUIRE(g.shape() == Shape{2, 3, 1, 1});
  for (std::int64_t p = 0; p < 6; ++p) {
    double s = 0;
    for (std::int64_t k = 0; k < 63; ++k) s += x[p * 63 + k];
    REQUIRE(g[p] == Approx(s / 63).margin(1e-6));
  }
  auto dx = Tensor<>::full(x.shape(), 1.f);  // backward adds
  nn::global_avg_pool2d_backward(Tensor<>::full(g.shape(), 63.f), dx);
  MINT_REQUIRE_CLOSE(testing::compare(dx, Tensor<>::full(x.shape(), 2.f), {1e-6, 0}, "global_avg_pool2d backward"));
}

TEST_CASE("pool: shape errors name the op, the argument and the shapes", "[nn][pool]") {
  auto x = uniform(Shape{2, 3, 8, 8}, 31);
  REQUIRE_THROWS_WITH(nn::max_pool2d(uniform(Shape{3, 8, 8}, 32), nn::Pool2dOptions::square(2), nullptr),
                      Catch::Contains("max_pool2d") && Catch::Contains("[3, 8, 8]"));
  REQUIRE_THROWS_WITH(nn::avg_pool2d(x, nn::Pool2dOptions::square(3, 2, 2)), Catch::Contains("avg_pool2d: padding"));
  REQUIRE_THROWS_WITH(nn::max_pool2d(uniform(Shape{1, 1, 2, 2}, 33), nn::Pool2dOptions::square(5, 1, 1), nullptr),
                      Catch::Contains("larger than the padded input") && Catch::Contains("[1, 1, 2, 2]"));
  auto dx = Tensor<>::zeros(x.shape());
  REQUIRE_THROWS_WITH(nn::avg_pool2d_backward(uniform(Shape{2, 3, 5, 4}, 34), nn::Pool2dOptions::square(2), dx),
                      Catch::Contains("avg_pool2d_backward: d_output") && Catch::Contains("[2, 3, 4, 4]") &&
                          Catch::Contains("[2, 3, 5, 4]"));
  nn::MaxPoolSaved saved;
  nn::max_pool2d(x, nn::Pool2dOptions::square(2), &saved);
  REQUIRE_THROWS_WITH(nn::max_pool2d_backward(uniform(Shape{2, 3, 5, 4}, 35), saved, dx),
                      Catch::Contains("max_pool2d_backward") && Catch::Contains("[2, 3, 5, 4]"));
  auto small_dx = Tensor<>::zeros(Shape{2, 3, 4, 4});  // the argmax points into 8 x 8 planes: refused, not written
  REQUIRE_THROWS_WITH(nn::max_pool2d_backward(uniform(Shape{2, 3, 4, 4}, 37), saved, small_dx),
                      Catch::Contains("do not match the saved forward") && Catch::Contains("8 x 8"));
  REQUIRE_THROWS_WITH(nn::adaptive_avg_pool2d_backward(uniform(Shape{2, 4, 1, 1}, 36), dx),
                      Catch::Contains("adaptive_avg_pool2d_backward") && Catch::Contains("[2, 4, 1, 1]") &&
                          Catch::Contains("[2, 3, 8, 8]"));
}

TEST_CASE("pooling matches PyTorch", "[nn][pool][parity]") {
  const auto& f = testing::fixture_file("cnn_ops.safetensors");
  const auto o = nn::Pool2dOptions::square(3, 2, 1);
  {
    const auto& x = f.at("max_pool2d.x");
    nn::MaxPoolSaved saved;
    auto y = nn::max_pool2d(x, o, &saved);
    // on the 1/8 grid y is exact, and ties must go to the element torch picked: dx is compared too
    MINT_REQUIRE_CLOSE(testing::compare(y, f.at("max_pool2d.y"), {0, 0}, "max_pool2d.y"));
    auto dx = Tensor<>::zeros(x.shape());
    nn::max_pool2d_backward(f.at("max_pool2d.dy"), saved, dx);
    MINT_REQUIRE_CLOSE(testing::compare(dx, f.at("max_pool2d.dx"), testing::rel_to_max(f.at("max_pool2d.dx")), "max_pool2d.dx"));
  }
  {
    const auto& x = f.at("avg_pool2d.x");
    auto y = nn::avg_pool2d(x, o);
    MINT_REQUIRE_CLOSE(testing::compare(y, f.at("avg_pool2d.y"), testing::rel_to_max(f.at("avg_pool2d.y")), "avg_pool2d.y"));
    auto dx = Tensor<>::zeros(x.shape());
    nn::avg_pool2d_backward(f.at("avg_pool2d.dy"), o, dx);
    MINT_REQUIRE_CLOSE(testing::compare(dx, f.at("avg_pool2d.dx"), testing::rel_to_max(f.at("avg_pool2d.dx")), "avg_pool2d.dx"));
  }
  for (std::string p : {"adaptive_avg_pool2d", "global_avg_pool2d"}) {
    const auto& x = f.at(p + ".x");
    const auto& yr = f.at(p + ".y");
    auto y = nn::adaptive_avg_pool2d(x, yr.dim(2), yr.dim(3));
    MINT_REQUIRE_CLOSE(testing::compare(y, yr, testing::rel_to_max(yr), p + ".y"));
    auto dx = Tensor<>::zeros(x.shape());
    nn::adaptive_avg_pool2d_backward(f.at(p + ".dy"), dx);
    MINT_REQUIRE_CLOSE(testing::compare(dx, f.at(p + ".dx"), testing::rel_to_max(f.at(p + ".dx")), p + ".dx"));
  }
}
