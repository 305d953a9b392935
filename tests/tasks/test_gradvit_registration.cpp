// GradViT's registration across seeds (Eq. 9-10): the integer shift / flip alignment that stands in for
// RANSAC-flow, the consensus, the L2 pull (gradient check), and an attack in which the pull brings the seeds
// together.
#include "test_util.hpp"
#include "tasks/teacher_fixture.hpp"

#include <cstdio>

#include "mint/tasks/gradvit.hpp"

using namespace mint;
namespace gv = mint::tasks::gradvit;
using testing::uniform;

namespace {
double sqdist(const Tensor<>& a, const Tensor<>& b) {
  double s = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return s;
}
// a smooth image with structure in every direction (so that every shift and the flip change it)
Tensor<> blob(std::int64_t b, std::int64_t h, std::int64_t w) {
  auto x = Tensor<>::empty(Shape{b, 1, h, w});
  for (std::int64_t n = 0; n < b; ++n)
    for (std::int64_t i = 0; i < h; ++i)
      for (std::int64_t j = 0; j < w; ++j)
        x[(n * h + i) * w + j] = static_cast<float>(std::exp(-((i - 4.0 - n) * (i - 4.0 - n) + (j - 3.0) * (j - 3.0)) / 6.0) +
                                                    0.5 * std::exp(-((i - 9.0) * (i - 9.0) + (j - 10.0 + n) * (j - 10.0 + n)) / 3.0));
  return x;
}
}  // namespace

TEST_CASE("registration: the alignment search finds a known shift and flip", "[gradvit][registration]") {
  const auto src = blob(2, 14, 14);
  for (const gv::Alignment a0 : {gv::Alignment{1, -2, false}, gv::Alignment{-2, 0, true}, gv::Alignment{0, 0, false}}) {
    auto target = Tensor<>::empty(src.shape());
    for (int b = 0; b < 2; ++b) gv::apply_alignment(a0, src, target, b);
    for (int b = 0; b < 2; ++b) {
      const auto a = gv::best_alignment(src, target, b, 2, true);
      CAPTURE(a0.dy, a0.dx, a0.flip, a.dy, a.dx, a.flip, a.correlation);
      REQUIRE((a.dy == a0.dy && a.dx == a0.dx && a.flip == a0.flip));
      REQUIRE(a.correlation > 0.999);  // the blobs lie inside the frame: the zero fill loses (almost) nothing
    }
  }
  REQUIRE_THROWS_WITH(gv::best_alignment(src, blob(1, 14, 14), 0, 2, true), Catch::Contains("differ"));
}

TEST_CASE("registration: consensus of aligned copies and the L2 pull's gradient", "[gradvit][registration]") {
  const auto x = blob(2, 14, 14);
  // identical seeds: the consensus is the seed
  REQUIRE(sqdist(gv::consensus({x, x, x}), x) < 1e-10);
  // x and x shifted down by 2 rows: their plain mean is a blend of two copies; each seed is aligned to that
  // mean, and the alignments must differ by exactly the shift, so the aligned copies coincide and the consensus
  // is one copy of the image (shifted by the common offset), not a blend
  auto shifted = Tensor<>::empty(x.shape());
  for (int b = 0; b < 2; ++b) gv::apply_alignment({2, 0, false}, x, shifted, b);
  std::vector<gv::Alignment> al;
  const auto c = gv::consensus({x, shifted}, 2, true, &al);
  REQUIRE(al.size() == 4);  // seed-major: (seed 0, image 0), (seed 0, image 1), (seed 1, image 0), ...
  for (int b = 0; b < 2; ++b) {
    const auto& a0 = al[static_cast<std::size_t>(b)];
    const auto& a1 = al[static_cast<std::size_t>(2 + b)];
    CAPTURE(b, a0.dy, a0.dx, a1.dy, a1.dx);
    REQUIRE((a0.dy - a1.dy == 2 && a0.dx == a1.dx && !a0.flip && !a1.flip));
  }
  auto copy = Tensor<>::empty(x.shape()), mean = Tensor<>::empty(x.shape());
  for (int b = 0; b < 2; ++b) gv::apply_alignment(al[static_cast<std::size_t>(b)], x, copy, b);
  for (std::int64_t i = 0; i < x.numel(); ++i) mean[i] = 0.5f * (x[i] + shifted[i]);
  std::printf("[gradvit] consensus: distance to one aligned copy %.3g (plain mean to it: %.3g)\n", sqdist(c, copy), sqdist(mean, copy));
  // not exactly 0: the zero fill of the shift drops the blobs' tails at the frame's edge (measured 1.4e-3 of
  // the plain mean's distance)
  REQUIRE(sqdist(c, copy) < 1e-2 * sqdist(mean, copy));
  // Eq. 10's pull: value and gradient
  auto y = uniform(x.shape(), 81);
  auto dy = Tensor<>::zeros(x.shape());
  const float v = gv::registration_pull(y, c, 0.25f, &dy);
  REQUIRE(v == Approx(0.25 * sqdist(y, c) / 2.0).epsilon(1e-6));
  // a quadratic: exact central differences up to float32 rounding of the loss
  MINT_REQUIRE_CLOSE(testing::check_gradient([&] { return gv::registration_pull(y, c, 0.25f); }, y, dy, "registration dx",
                                             {.eps = 1e-2, .tol = {1e-3, 1e-2}, .max_coords = 100}));
}

TEST_CASE("registration: the pull brings the seeds of an attack together", "[gradvit][registration][attack]") {
  auto& model = test::teacher();
  const auto& data = test::test_images();
  auto x = Tensor<>::empty(Shape{1, 1, 28, 28});
  std::copy(data.images.data(), data.images.data() + 784, x.data());
  const std::vector<int> y{data.labels[0]};
  gv::GradientMatch match(gv::parameter_gradients(model, x, y), y, {.distance = gv::MatchDistance::Cosine});
  const float lo = (0.0f - tasks::kFashionMnistMean) / tasks::kFashionMnistStd, hi = (1.0f - tasks::kFashionMnistMean) / tasks::kFashionMnistStd;
  auto spread = [&](float registration) {
    gv::AttackOptions opt{.iterations = 60, .tv = 1e-3f, .seeds = 2, .registration = registration, .register_every = 10,
                          .seed = 5, .pixel_lo = lo, .pixel_hi = hi};
    const auto res = gv::attack(model, match, x.shape(), opt);
    REQUIRE(res.distance.size() == 2);
    return sqdist(res.images, res.consensus);  // how far the returned seed is from the consensus of both
  };
  REQUIRE_THROWS_WITH(gv::attack(model, match, x.shape(), {.seeds = 2, .registration = 1.0f, .register_from = 1.0f}),
                      Catch::Contains("register_from must be in [0, 1)"));
  const double free = spread(0.0f), pulled = spread(1.0f);
  std::printf("[gradvit] registration: ||x_best - x_C||^2 without the pull %.3f, with it %.3f\n", free, pulled);
  REQUIRE(pulled < 0.5 * free);
}
