// GradViT's loss scheduler (Eq. 5-6, gradvit::LossSchedule): Gamma(t) and Upsilon(t) at stated iterations, and
// how the attack applies them: Gamma(t) != 1 scales the matching term's value and gradient, Upsilon(t) > 0 adds
// the BN image prior (gradvit::attack_objective, on the fixture ViT of tests/fixtures/gradvit.safetensors and a
// tiny random ResNet), and one attack step is Adam on that objective.
#include "test_util.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "mint/models/init.hpp"
#include "mint/models/resnet.hpp"
#include "mint/models/vit.hpp"
#include "mint/tasks/gradvit.hpp"
#include "tasks/gradvit_fixture.hpp"

using namespace mint;
namespace gv = mint::tasks::gradvit;

namespace {
// A tiny random ResNet on the fixture's images (3 x 8 x 8) with non-trivial BN running statistics (one
// training-mode pass on noise), in eval mode: the image prior's CNN.
ResNet<> schedule_cnn() {
  ResNetConfig c;
  c.in_chans = 3;
  c.img_size = 8;
  c.width = 4;
  c.blocks = {1, 1, 1, 1};
  ResNet<> m(c);
  init_torchvision_like(m, 17);
  m.train(true);
  m.forward(testing::uniform(Shape{8, 3, 8, 8}, 23));
  m.eval();
  return m;
}
double schedule_max_abs(const Tensor<>& t) {
  double m = 0.0;
  for (std::int64_t i = 0; i < t.numel(); ++i) m = std::max(m, static_cast<double>(std::abs(t[i])));
  return m;
}
}  // namespace

TEST_CASE("loss schedule: Gamma halves and Upsilon switches on after T/2 (Eq. 5-6)", "[gradvit][schedule]") {
  // the paper's constants: alpha_grad 4e-3, alpha_image 0.2
  const gv::LossSchedule s{.enabled = true, .alpha_grad = 4e-3f, .alpha_image = 0.2f};
  // T = 10: 0 < t <= 5 is the first half
  for (int t = 1; t <= 5; ++t) {
    REQUIRE(s.gamma(t, 10) == 4e-3f);
    REQUIRE(s.upsilon(t, 10) == 0.0f);
  }
  for (int t = 6; t <= 10; ++t) {
    REQUIRE(s.gamma(t, 10) == 2e-3f);
    REQUIRE(s.upsilon(t, 10) == 0.2f);
  }
  // odd T = 7: T/2 = 3.5, so t = 3 is still in the first half and t = 4 is not
  REQUIRE(s.gamma(3, 7) == 4e-3f);
  REQUIRE(s.upsilon(3, 7) == 0.0f);
  REQUIRE(s.gamma(4, 7) == 2e-3f);
  REQUIRE(s.upsilon(4, 7) == 0.2f);
  // the paper's run: T = 120K, the switch after 60K
  REQUIRE(s.gamma(60000, 120000) == 4e-3f);
  REQUIRE(s.gamma(60001, 120000) == 2e-3f);
  REQUIRE(s.upsilon(60001, 120000) == 0.2f);
  // T = 1: the only iteration is past T/2 = 0.5
  REQUIRE(s.upsilon(1, 1) == 0.2f);
}

TEST_CASE("loss schedule disabled: both weights constant (the ablation's rows without the scheduler)", "[gradvit][schedule]") {
  const gv::LossSchedule s{.enabled = false, .alpha_grad = 1.0f, .alpha_image = 0.5f};
  for (int t : {1, 5, 6, 10}) {
    REQUIRE(s.gamma(t, 10) == 1.0f);
    REQUIRE(s.upsilon(t, 10) == 0.5f);
  }
  REQUIRE_THROWS_WITH(s.gamma(0, 10), Catch::Contains("iteration 0 outside 1..10"));
  REQUIRE_THROWS_WITH(s.upsilon(11, 10), Catch::Contains("iteration 11 outside 1..10"));
}

TEST_CASE("attack objective: Gamma(t) != 1 scales the matching term's value and gradient (Eq. 5)", "[gradvit][schedule]") {
  auto f = test::gradvit_fixture();
  gv::GradientMatch match(f.gstar, f.labels, {.distance = gv::MatchDistance::Cosine});
  auto dmatch = Tensor<>::zeros(f.xhat.shape());
  const double m = match.evaluate(f.vit, f.xhat, &dmatch).loss;
  // alpha_grad 3: Gamma = 3 for t <= 5, 1.5 after; no image prior (alpha_image 0), no TV
  const gv::AttackOptions opt{.iterations = 10, .tv = 0.0f, .schedule = {.enabled = true, .alpha_grad = 3.0f}};
  auto x = f.xhat.clone();
  auto dx = Tensor<>::empty(x.shape());
  for (const auto& [t, gamma] : {std::pair{3, 3.0}, std::pair{8, 1.5}}) {
    const double v = gv::attack_objective(f.vit, match, x, opt, t, nullptr, &dx);
    CAPTURE(t, gamma, v, m);
    // gamma (3 or 1.5) is exact in float and double, and the matching loss is deterministic: exactly gamma * m
    REQUIRE(v == gamma * m);
    auto want = Tensor<>::empty(x.shape());
    for (std::int64_t i = 0; i < x.numel(); ++i) want[i] = static_cast<float>(gamma) * dmatch[i];
    // the same float32 products (the HVP is deterministic): 1e-6 of the max only allows for reordering
    MINT_REQUIRE_CLOSE(testing::compare(dx, want, {1e-6 * schedule_max_abs(want), 0.0}, "d objective / dx at t " + std::to_string(t)));
  }
  // and the gradient at t = 8 against central differences of the value: the HVP is accurate to ~2e-4 of max|dx|
  // (test_gradvit's parity test), the differences at eps 1e-3 to float32 rounding of the loss, so 1e-2 of
  // max|dx| + 2e-2 relative; a gradient left unscaled (3 instead of 1.5) is off by max|dx| and fails
  gv::attack_objective(f.vit, match, x, opt, 8, nullptr, &dx);
  const auto rep = testing::check_gradient([&] { return gv::attack_objective(f.vit, match, x, opt, 8); }, x, dx,
                                           "d objective / dx (Gamma 1.5)",
                                           {.eps = 1e-3, .tol = {1e-2 * schedule_max_abs(dx), 2e-2}, .max_coords = 64});
  std::printf("[gradvit] objective (Gamma 1.5): finite differences max|diff| %.3e of max|dx| %.3e\n", rep.max_abs, schedule_max_abs(dx));
  MINT_REQUIRE_CLOSE(rep);
}

TEST_CASE("attack objective: Upsilon(t) > 0 adds the BN image prior after T/2 (Eq. 6)", "[gradvit][schedule]") {
  auto f = test::gradvit_fixture();
  auto cnn = schedule_cnn();
  gv::GradientMatch match(f.gstar, f.labels, {.distance = gv::MatchDistance::Cosine});
  auto dmatch = Tensor<>::zeros(f.xhat.shape());
  const double m = match.evaluate(f.vit, f.xhat, &dmatch).loss;
  const gv::AttackOptions opt{.iterations = 10, .tv = 0.0f, .schedule = {.enabled = true, .alpha_grad = 1.0f, .alpha_image = 0.5f},
                              .image_prior = {&cnn, 0.1f, 10.0f}};
  auto x = f.xhat.clone();
  auto dx = Tensor<>::empty(x.shape());
  // t = 3 <= T/2: Upsilon 0, the prior is off (Gamma 1: the matching term alone, bit for bit)
  REQUIRE(gv::attack_objective(f.vit, match, x, opt, 3, nullptr, &dx) == m);
  REQUIRE(std::equal(dx.data(), dx.data() + dx.numel(), dmatch.data()));
  // t = 8 > T/2: Gamma 0.5 and Upsilon 0.5, so the prior's weight is 0.5 * 0.1 (first layer x 10): the
  // separately tested BNPrior (tests/inversion) at that weight gives the expected extra value and gradient
  const double v = gv::attack_objective(f.vit, match, x, opt, 8, nullptr, &dx);
  const BNPrior prior{&cnn, 0.05f, 10.0f};
  cnn.forward(x);
  auto dprior = Tensor<>::zeros(x.shape());
  const double p = prior.add(x, dprior);
  std::printf("[gradvit] objective (Upsilon 0.5): match %.4e, image prior %.4e, max|d match| %.3e, max|d prior| %.3e\n", m, p,
              schedule_max_abs(dmatch), schedule_max_abs(dprior));
  CAPTURE(v, m, p);
  REQUIRE(p > 0.0);
  REQUIRE(std::abs(v - (0.5 * m + p)) <= 1e-6 * (0.5 * m + p));
  auto want = Tensor<>::empty(x.shape());
  for (std::int64_t i = 0; i < x.numel(); ++i) want[i] = 0.5f * dmatch[i] + dprior[i];
  // a sum of the same two float32 gradients: 1e-6 of the max allows for the order of the additions
  MINT_REQUIRE_CLOSE(testing::compare(dx, want, {1e-6 * schedule_max_abs(want), 0.0}, "d objective / dx (Upsilon 0.5)"));
  // without a CNN the prior cannot run: attack refuses alpha_image > 0, the objective refuses Upsilon > 0
  gv::AttackOptions none = opt;
  none.image_prior.model = nullptr;
  REQUIRE_THROWS_WITH(gv::attack_objective(f.vit, match, x, none, 8), Catch::Contains("no image-prior CNN"));
  REQUIRE_THROWS_WITH(gv::attack(f.vit, match, x.shape(), none), Catch::Contains("no image-prior CNN"));
}

TEST_CASE("attack: one step is Adam on the objective's gradient (Gamma, Upsilon, patch, L2 all on)", "[gradvit][schedule][attack]") {
  // T = 1: the single iteration lies past T/2, so Gamma = alpha_grad / 2 = 1.5 and Upsilon = alpha_image
  auto f = test::gradvit_fixture();
  auto cnn = schedule_cnn();
  gv::GradientMatch match(f.gstar, f.labels, {.distance = gv::MatchDistance::L2});
  const gv::AttackOptions opt{.iterations = 1, .lr = 0.05f, .tv = 1e-3f, .l2 = 0.1f, .patch = 0.05f, .patch_size = 2,
                              .schedule = {.enabled = true, .alpha_grad = 3.0f, .alpha_image = 0.5f},
                              .image_prior = {&cnn, 0.1f, 10.0f}, .seed = 4, .init_std = 0.5f};
  const auto res = gv::attack(f.vit, match, f.xhat.shape(), opt);
  // the start: the seeded Gaussian noise attack draws (no clipping: the default pixel range is unbounded)
  auto x = Tensor<>::empty(f.xhat.shape());
  fill_normal(x, opt.seed, 0, 0.0f, opt.init_std);
  auto g = Tensor<>::empty(x.shape());
  const double v = gv::attack_objective(f.vit, match, x, opt, 1, nullptr, &g);
  CAPTURE(v, res.loss);
  REQUIRE(res.loss.size() == 1);
  REQUIRE(std::abs(res.loss[0] - v) <= 1e-6 * std::abs(v));
  // Adam's first step from m = v = 0 at the full rate (the cosine starts at lr)
  const fn::AdamStep step{opt.lr, opt.beta1, opt.beta2, opt.adam_eps, 1.0f - opt.beta1, 1.0f - opt.beta2};
  auto m = Tensor<>::zeros(x.shape()), s = Tensor<>::zeros(x.shape());
  for (std::int64_t i = 0; i < x.numel(); ++i) step(x[i], g[i], m[i], s[i]);
  // the same float32 operations on the same gradient: 1e-6 absolute (x ~ 1) allows only for reordering
  MINT_REQUIRE_CLOSE(testing::compare(res.images, x, {1e-6, 0.0}, "x after one attack step"));
}
