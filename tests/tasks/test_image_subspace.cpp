// The subspace (PCA) image prior (mint/tasks/image_subspace.hpp) and GradViT's attack on its coordinates
// (gradvit::AttackOptions::subspace): the fit recovers a planted covariance, decode/encode are a projection, the
// chain rule through the clip matches central differences, bad input is refused naming what is wrong, and the
// attack on coordinates keeps its images in the subspace and resumes bit for bit.
#include "test_util.hpp"
#include "tasks/teacher_fixture.hpp"

#include <cmath>
#include <cstring>

#include "mint/core/rng.hpp"
#include "mint/tasks/gradvit.hpp"
#include "mint/tasks/image_subspace.hpp"

using namespace mint;
namespace gv = mint::tasks::gradvit;
using tasks::ImageSubspace;

namespace image_subspace_test {

// n images [n, 1, 4, 4] = m + 3 a u1 + 1 b u2 (+ noise_std e), a, b, e ~ N(0, 1): variances 9 and 1 along the unit
// vectors u1, u2 (orthogonal), noise_std^2 along every direction.
struct Planted {
  Tensor<> images, m = Tensor<>::empty(Shape{16}), u1 = Tensor<>::empty(Shape{16}), u2 = Tensor<>::empty(Shape{16});
  Planted(std::int64_t n, float noise_std) {
    for (int i = 0; i < 16; ++i) {
      m[i] = 0.1f * static_cast<float>(i);
      u1[i] = i < 8 ? 0.25f * std::sqrt(2.0f) : 0.0f;  // |u1| = 1
      u2[i] = (i % 2 ? 1.0f : -1.0f) * 0.25f;           // |u2| = 1, <u1, u2> = 0
    }
    auto coef = Tensor<>::empty(Shape{n, 18});
    fill_normal(coef, 5, 0, 0.0f, 1.0f);
    images = Tensor<>::empty(Shape{n, 1, 4, 4});
    for (std::int64_t k = 0; k < n; ++k)
      for (int i = 0; i < 16; ++i)
        images[k * 16 + i] = m[i] + 3.0f * coef[k * 18] * u1[i] + coef[k * 18 + 1] * u2[i] +
                             noise_std * coef[k * 18 + 2 + i];
  }
};

double dot_row(const ImageSubspace& s, int j, const Tensor<>& u) {  // <B_j / |B_j|, u>
  double d = 0.0, n = 0.0;
  for (int i = 0; i < 16; ++i) d += double{s.basis[j * 16 + i]} * u[i], n += double{s.basis[j * 16 + i]} * s.basis[j * 16 + i];
  return d / std::sqrt(n);
}

}  // namespace image_subspace_test

using image_subspace_test::Planted;

TEST_CASE("fit_image_subspace recovers a planted covariance", "[subspace]") {
  const Planted p(4000, 0.0f);
  const ImageSubspace s = tasks::fit_image_subspace(p.images, 2);
  REQUIRE(s.k() == 2);
  REQUIRE(s.dim() == 16);
  // sample variances of 4000 draws: relative standard error sqrt(2 / 4000) = 2.2 %, so 10 % is > 4 sigma
  CHECK(s.variance[0] == Approx(9.0).epsilon(0.10));
  CHECK(s.variance[1] == Approx(1.0).epsilon(0.10));
  // no noise: two components hold all the variance (up to float rounding of the covariance)
  CHECK(s.explained == Approx(1.0).margin(1e-4));
  // the directions, up to sign (the sampling rotates them by about 1 / sqrt(N) at most)
  CHECK(std::abs(image_subspace_test::dot_row(s, 0, p.u1)) > 0.999);
  CHECK(std::abs(image_subspace_test::dot_row(s, 1, p.u2)) > 0.999);
  // the mean is the sample mean: within 4 standard errors (3 / sqrt(4000) = 0.047 along u1) of m
  for (int i = 0; i < 16; ++i) CHECK(std::abs(s.mean[i] - p.m[i]) < 0.2f);
  // row j has norm sqrt(lambda_j): w ~ N(0, I) draws images with the fitted covariance
  double n0 = 0.0;
  for (int i = 0; i < 16; ++i) n0 += double{s.basis[i]} * s.basis[i];
  CHECK(std::sqrt(n0) == Approx(std::sqrt(s.variance[0])).epsilon(1e-5));
}

TEST_CASE("ImageSubspace: decode(encode(x)) is the orthogonal projection onto the subspace", "[subspace]") {
  const Planted p(500, 0.05f);
  const ImageSubspace s = tasks::fit_image_subspace(p.images, 3);
  // a point of the affine subspace is kept (to float rounding: values of order 1, 1e-5 is ~100 ulp)
  auto w = Tensor<>::empty(Shape{2, 3});
  fill_normal(w, 9, 0, 0.0f, 1.0f);
  const auto x = s.decode(w);
  REQUIRE(x.shape() == Shape{2, 1, 4, 4});
  const auto w2 = s.encode(x);
  for (std::int64_t i = 0; i < w.numel(); ++i) CHECK(w2[i] == Approx(w[i]).margin(1e-4));
  // any image: the residual x - P(x) is orthogonal to every basis row
  const auto px = s.decode(s.encode(p.images.reshape(Shape{500, 1, 4, 4})));
  for (std::int64_t k = 0; k < 5; ++k)
    for (int j = 0; j < 3; ++j) {
      double d = 0.0, scale = 0.0;
      for (int i = 0; i < 16; ++i) {
        d += (double{p.images[k * 16 + i]} - px[k * 16 + i]) * s.basis[j * 16 + i];
        scale += std::abs(double{p.images[k * 16 + i]} * s.basis[j * 16 + i]);
      }
      CHECK(std::abs(d) < 1e-4 * (1.0 + scale));
    }
}

TEST_CASE("ImageSubspace::pull_back is the chain rule through decode and the clip", "[subspace]") {
  const Planted p(300, 0.2f);
  const ImageSubspace s = tasks::fit_image_subspace(p.images, 4);
  const ClipRange range = ClipRange::uniform(1, 0.0f, 1.2f);  // clips part of every image (values span ~ -2..4)
  auto w = Tensor<>::empty(Shape{2, 4});
  fill_normal(w, 11, 0, 0.0f, 1.0f);
  auto c = Tensor<>::empty(Shape{2, 1, 4, 4});
  fill_normal(c, 12, 0, 0.0f, 1.0f);
  // f(w) = <c, clip(decode(w))>, in double from the float decode
  const auto f = [&](const Tensor<>& ww) {
    const auto x = s.decode(ww);
    double v = 0.0;
    for (std::int64_t i = 0; i < x.numel(); ++i) v += double{c[i]} * std::clamp(x[i], 0.0f, 1.2f);
    return v;
  };
  const auto raw = s.decode(w);
  int clipped = 0;
  for (std::int64_t i = 0; i < raw.numel(); ++i) clipped += raw[i] < 0.0f || raw[i] > 1.2f;
  REQUIRE(clipped > 0);
  REQUIRE(clipped < raw.numel());
  const auto g = s.pull_back(c, raw, range);
  REQUIRE(g.shape() == Shape{2, 4});
  // f is piecewise linear: a step of 1e-3 crosses no clip boundary unless a value lies within ~1e-3 of one; the
  // central difference is then exact up to float rounding of decode (values ~1, ulp 1e-7, over a 2e-3 step: 1e-3)
  for (std::int64_t i = 0; i < w.numel(); ++i) {
    auto wp = w.clone(), wm = w.clone();
    wp[i] += 1e-3f, wm[i] -= 1e-3f;
    const double fd = (f(wp) - f(wm)) / (double{wp[i]} - double{wm[i]});
    CHECK(g[i] == Approx(fd).margin(5e-3));
  }
}

TEST_CASE("fit_image_subspace and ImageSubspace refuse bad input, naming it", "[subspace][errors]") {
  const Planted p(50, 0.0f);
  CHECK_THROWS_WITH(tasks::fit_image_subspace(p.images, 0), Catch::Contains("k = 0"));
  CHECK_THROWS_WITH(tasks::fit_image_subspace(p.images, 17), Catch::Contains("min(D = 16"));
  // the planted set spans 2 dimensions: a third component is refused, not returned as noise
  CHECK_THROWS_WITH(tasks::fit_image_subspace(p.images, 3), Catch::Contains("span only 2 dimension"));
  CHECK_THROWS_WITH(tasks::fit_image_subspace(Tensor<>::full(Shape{5, 1, 4, 4}, 0.5f), 1),
                    Catch::Contains("do not vary"));
  auto bad = p.images.clone();
  bad[37] = std::nanf("");
  CHECK_THROWS_WITH(tasks::fit_image_subspace(bad, 1), Catch::Contains("images[37]"));
  CHECK_THROWS_WITH(tasks::fit_image_subspace(Tensor<>::zeros(Shape{3, 1, 80, 80}), 1),
                    Catch::Contains("at most 4096"));
  CHECK_THROWS_WITH(tasks::fit_image_subspace(p.images.reshape(Shape{1, 50, 4, 4}), 1),
                    Catch::Contains("at least 2"));
  const ImageSubspace s = tasks::fit_image_subspace(p.images, 2);
  CHECK_THROWS_WITH(s.decode(Tensor<>::zeros(Shape{2, 3})), Catch::Contains("expected [B, 2]"));
  CHECK_THROWS_WITH(s.encode(Tensor<>::zeros(Shape{2, 1, 4, 5})), Catch::Contains("the subspace's are"));
}

TEST_CASE("GradViT attack on subspace coordinates: images stay in the subspace, a resume is bit-exact",
          "[subspace][gradvit][attack][resume]") {
  auto& model = test::teacher();
  const auto& data = test::test_images();
  // the hidden batch: test images 0 and 1; the public set: test images 2..999 (disjoint)
  auto x = Tensor<>::empty(Shape{2, 1, 28, 28});
  std::copy(data.images.data(), data.images.data() + x.numel(), x.data());
  const std::vector<int> y = {data.labels[0], data.labels[1]};
  auto pub = Tensor<>::empty(Shape{998, 1, 28, 28});
  std::copy(data.images.data() + x.numel(), data.images.data() + 1000 * 784, pub.data());
  const ImageSubspace s = tasks::fit_image_subspace(pub, 16);
  const gv::GradientMatch match(gv::parameter_gradients(model, x, y), y, {.distance = gv::MatchDistance::Cosine});
  const float lo = (0.0f - tasks::kFashionMnistMean) / tasks::kFashionMnistStd,
              hi = (1.0f - tasks::kFashionMnistMean) / tasks::kFashionMnistStd;
  const gv::AttackOptions opt{.iterations = 6, .tv = 1e-4f, .seeds = 2, .seed = 4, .pixel_lo = lo, .pixel_hi = hi,
                              .subspace = &s};
  std::vector<gv::AttackState> saved;
  Tensor<> seen3;  // seed 0's images after iteration 3, as on_iteration sees them
  const auto straight = gv::attack(
      model, match, x.shape(), opt, [&](int t, double, const Tensor<>& xi) { if (t == 3) seen3 = xi.clone(); },
      {.every = 3, .save = [&](const gv::AttackState& st) { saved.push_back(st); }});
  REQUIRE(saved.size() == 1);
  REQUIRE(saved[0].x[0].shape() == Shape{2, 1, 1, 16});  // the state holds the coordinates
  // the images are clip(mean + w B) of those coordinates, bit for bit
  auto expect = s.decode(saved[0].x[0].reshape(Shape{2, 16}));
  for (std::int64_t i = 0; i < expect.numel(); ++i) expect[i] = std::clamp(expect[i], lo, hi);
  REQUIRE(seen3.shape() == expect.shape());
  CHECK(std::memcmp(seen3.data(), expect.data(), sizeof(float) * expect.numel()) == 0);
  // ... and the coordinates moved from the seeded start w0 ~ N(0, 1) (seed 4), by at most lr = 0.1 per step
  const auto w0 = PixelOptimizer<Cpu>::noise(Shape{2, 1, 1, 16}, opt.seed, 1.0f);
  double moved = 0.0;
  for (std::int64_t i = 0; i < w0.numel(); ++i) moved = std::max(moved, std::abs(double{saved[0].x[0][i]} - w0[i]));
  CHECK(moved > 0.0);
  CHECK(moved < 3 * 0.1 * 1.01);  // Adam's step is at most about lr per coordinate (1.01: its bias correction)
  // resumed after t = 3: the same bytes as the run that was never stopped
  const auto resumed = gv::attack(model, match, x.shape(), opt, {}, {.resume = &saved[0]});
  REQUIRE(resumed.images.shape() == straight.images.shape());
  CHECK(std::memcmp(resumed.images.data(), straight.images.data(), sizeof(float) * straight.images.numel()) == 0);
  CHECK(resumed.loss == straight.loss);
  // a pixel-space state does not fit a subspace run
  gv::AttackOptions pixels = opt;
  pixels.subspace = nullptr;
  std::vector<gv::AttackState> pixel_states;
  (void)gv::attack(model, match, x.shape(), pixels, {},
                   {.every = 3, .save = [&](const gv::AttackState& st) { pixel_states.push_back(st); }});
  CHECK_THROWS_WITH(gv::attack(model, match, x.shape(), opt, {}, {.resume = &pixel_states[0]}),
                    Catch::Contains("[2, 1, 1, 16]"));
  // a subspace of other images is refused before any work
  const ImageSubspace small = tasks::fit_image_subspace(Planted(50, 0.0f).images, 2);
  gv::AttackOptions wrong = opt;
  wrong.subspace = &small;
  CHECK_THROWS_WITH(gv::attack(model, match, x.shape(), wrong), Catch::Contains("subspace prior's"));
}
