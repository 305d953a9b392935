// The GradViT attack's issue-19 levers (mint/tasks/gradvit.hpp): the per-tensor cosine distance
// (MatchDistance::LayerCosine: its value from the per-tensor cosines, its input gradient against central
// differences), signed gradients (Adam fed sign(g)), and given start images (the oracle start at the hidden batch,
// where the distance and its gradient are exactly zero, so the attack does not move; start_std spreading the seeds
// around one start).
#include "test_util.hpp"
#include "tasks/gradvit_fixture.hpp"
#include "tasks/teacher_fixture.hpp"

#include <cmath>
#include <cstring>

#include "mint/tasks/gradvit.hpp"

using namespace mint;
namespace gv = mint::tasks::gradvit;

namespace gradvit_levers_test {

// the hidden batch of the start tests: test images 0 and 1, their labels, the valid normalised pixel range
struct TwoImages {
  Tensor<> x = Tensor<>::empty(Shape{2, 1, 28, 28});
  std::vector<int> y;
  float lo = (0.0f - tasks::kFashionMnistMean) / tasks::kFashionMnistStd,
        hi = (1.0f - tasks::kFashionMnistMean) / tasks::kFashionMnistStd;
  TwoImages() {
    const auto& data = test::test_images();
    std::copy(data.images.data(), data.images.data() + x.numel(), x.data());
    y = {data.labels[0], data.labels[1]};
  }
  // the teacher's gradient of the two images, matched by the total cosine
  [[nodiscard]] gv::GradientMatch match() const {
    return {gv::parameter_gradients(test::teacher(), x, y), y, {.distance = gv::MatchDistance::Cosine}};
  }
};

}  // namespace gradvit_levers_test


TEST_CASE("GradientMatch LayerCosine: the mean of the per-tensor cosines, and its input gradient",
          "[gradvit][levers]") {
  auto f = test::gradvit_fixture();
  const gv::GradientMatch match(f.gstar, f.labels, {.distance = gv::MatchDistance::LayerCosine});
  // by hand: G(x^) from the model's own backward, then mean over tensors of 1 - cos
  const auto g = gv::parameter_gradients(f.vit, f.xhat, f.labels);
  double sum = 0.0;
  int layers = 0;
  for (const auto& n : match.matched()) {
    double gg = 0, gt = 0, tt = 0;
    const auto &a = g.at(n), &b = f.gstar.at(n);
    for (std::int64_t i = 0; i < a.numel(); ++i)
      gg += double(a[i]) * a[i], gt += double(a[i]) * b[i], tt += double(b[i]) * b[i];
    if (tt == 0.0) continue;
    sum += 1.0 - gt / std::sqrt(gg * tt);
    ++layers;
  }
  REQUIRE(layers == static_cast<int>(match.matched().size()));  // the fixture's G* has no zero tensor
  auto dx = Tensor<>::zeros(f.xhat.shape());
  const auto v = match.evaluate(f.vit, f.xhat, &dx);
  CAPTURE(v.distance, sum / layers);
  // the same float gradients summed in double in the same order: equal up to the last bits
  REQUIRE(std::abs(v.distance - sum / layers) <= 1e-12);
  // it is not the total cosine (the per-tensor weights differ), so a mix-up of the two forms fails here
  const gv::GradientMatch total(f.gstar, f.labels, {.distance = gv::MatchDistance::Cosine});
  REQUIRE(std::abs(total.evaluate(f.vit, f.xhat).distance - v.distance) > 1e-3);
  // d distance / d x^ (the central-difference HVP) against central differences of the distance itself: the
  // HVP's own error is ~1e-4 of max |d/dx| (docs/gradvit.md); the distance's float32 gradients make the outer
  // differences at step 1e-2 good to about 1e-3 of max |d/dx| (measured 2e-4 here), so 2 % + 2e-3 of the
  // largest coordinate is a bound that a wrong per-tensor normalisation (off by the tensor's share) exceeds
  double amax = 0.0;
  for (std::int64_t i = 0; i < dx.numel(); ++i) amax = std::max(amax, static_cast<double>(std::abs(dx[i])));
  MINT_REQUIRE_CLOSE(testing::check_gradient([&] { return match.evaluate(f.vit, f.xhat).distance; }, f.xhat, dx,
                                             "LayerCosine d/dx",
                                             {.eps = 1e-2, .tol = {2e-3 * amax, 2e-2}, .max_coords = 32}));
}

TEST_CASE("GradViT attack: signed gradients feed Adam sign(g)", "[gradvit][levers][attack]") {
  auto f = test::gradvit_fixture();
  const gv::GradientMatch match(f.gstar, f.labels, {.distance = gv::MatchDistance::Cosine});
  gv::AttackOptions opt{.iterations = 3, .lr = 0.05f, .tv = 1e-3f, .signed_gradient = true, .seed = 2,
                        .init_std = 0.5f};
  const auto res = gv::attack(f.vit, match, f.xhat.shape(), opt);
  // by hand: the same start, the objective's gradient, its sign, Adam with the cosine-decayed rate
  auto x = Tensor<>::empty(f.xhat.shape());
  fill_normal(x, opt.seed, 0, 0.0f, opt.init_std);
  auto m = Tensor<>::zeros(x.shape()), s = Tensor<>::zeros(x.shape()), g = Tensor<>::empty(x.shape());
  const PixelAdam adam{opt.lr, opt.beta1, opt.beta2, opt.adam_eps};
  for (int t = 1; t <= opt.iterations; ++t) {
    (void)gv::attack_objective(f.vit, match, x, opt, t, nullptr, &g);
    const double lr = 0.5 * opt.lr * (1.0 + std::cos(3.14159265358979323846 * (t - 1) / opt.iterations));
    const auto step = adam.at(t, static_cast<float>(lr));
    for (std::int64_t i = 0; i < x.numel(); ++i) {
      float sg = g[i] > 0.0f ? 1.0f : g[i] < 0.0f ? -1.0f : 0.0f;
      step(x[i], sg, m[i], s[i]);
    }
  }
  REQUIRE(std::memcmp(res.images.data(), x.data(), sizeof(float) * x.numel()) == 0);
  // and it is not the unsigned attack
  opt.signed_gradient = false;
  const auto plain = gv::attack(f.vit, match, f.xhat.shape(), opt);
  REQUIRE(testing::compare(plain.images, res.images, {0, 0}, "signed vs plain").max_abs > 1e-3);
}

TEST_CASE("GradViT attack: started at the hidden batch with TV 0, it stays there", "[gradvit][levers][attack]") {
  auto& model = test::teacher();
  const gradvit_levers_test::TwoImages b;
  const Tensor<>& x = b.x;
  const float lo = b.lo, hi = b.hi;
  const gv::GradientMatch match = b.match();
  gv::AttackOptions opt{.iterations = 4, .tv = 0.0f, .start = &x, .pixel_lo = lo, .pixel_hi = hi};
  // at x* the gradient is G* bit for bit, so the distance's gradient R is exactly 0 and no step moves a pixel
  const auto res = gv::attack(model, match, x.shape(), opt);
  REQUIRE(std::memcmp(res.images.data(), x.data(), sizeof(float) * x.numel()) == 0);
  // 1 - <G, G*> / (||G|| ||G*||) of two equal gradients: 0 up to the double rounding of the norms' product
  // (exactly 0 with GCC -march=native, 1.1e-16 with clang -O1)
  REQUIRE(std::abs(res.distance[0]) <= 1e-12);
  // with the TV prior the objective's minimiser is elsewhere: the same start moves
  opt.tv = 1e-3f;
  REQUIRE(testing::compare(gv::attack(model, match, x.shape(), opt).images, x, {0, 0}, "TV start").max_abs > 1e-3);
  const auto wrong = Tensor<>::zeros(Shape{1, 1, 28, 28});
  opt.start = &wrong;
  REQUIRE_THROWS_WITH(gv::attack(model, match, x.shape(), opt), Catch::Contains("start images"));
}

TEST_CASE("GradViT attack: start_std spreads the seeds around one start", "[gradvit][levers][attack]") {
  auto& model = test::teacher();
  const gradvit_levers_test::TwoImages b;
  const Tensor<>& x = b.x;
  const float lo = b.lo, hi = b.hi;
  const gv::GradientMatch match = b.match();
  const auto start = Tensor<>::zeros(x.shape());  // the dataset-mean image
  // lr 1e-9: the one step before the saved state moves no pixel by more than ~1e-9, so the state shows the start
  gv::AttackOptions opt{.iterations = 2, .lr = 1e-9f, .tv = 0.0f, .seeds = 2, .seed = 6, .start = &start,
                        .start_std = 0.25f, .pixel_lo = lo, .pixel_hi = hi};
  std::vector<gv::AttackState> saved;
  (void)gv::attack(model, match, x.shape(), opt, {},
                   {.every = 1, .save = [&](const gv::AttackState& st) { saved.push_back(st); }});
  REQUIRE(saved.size() == 1);
  for (std::size_t s = 0; s < 2; ++s) {
    // seed s: clip(start + N(0, 0.25^2)) from Philox stream (seed + s, 0), as the noise start draws it
    const auto n = PixelOptimizer<Cpu>::noise(x.shape(), opt.seed + s, 0.25f);
    double worst = 0.0;
    for (std::int64_t i = 0; i < n.numel(); ++i)
      worst = std::max(worst, std::abs(double{saved[0].x[s][i]} - std::clamp(n[i], lo, hi)));
    CHECK(worst < 1e-6);
  }
  CHECK(testing::compare(saved[0].x[0], saved[0].x[1], {0, 0}, "seeds").max_abs > 0.1);
  // start_std without a start is refused
  opt.start = nullptr;
  REQUIRE_THROWS_WITH(gv::attack(model, match, x.shape(), opt), Catch::Contains("start_std 0.25 needs start images"));
}
