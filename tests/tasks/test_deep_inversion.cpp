// DeepInversion's official loop for a BN CNN (mint/tasks/deep_inversion.hpp): the roll and flip follow torch.roll
// then torch.flip and their backward is the adjoint, the loss's gradient matches a directional finite difference
// with every term on, the cosine schedule has deepinversion.py's shape, best-image keeping returns the best
// iteration's image, runs are deterministic, and bad options fail naming the option. Tiny random ResNet, seconds.
#include "test_util.hpp"

#include <cmath>
#include <vector>

#include "mint/models/init.hpp"
#include "mint/models/resnet.hpp"
#include "mint/tasks/deep_inversion.hpp"

using namespace mint;
using Catch::Matchers::Contains;

namespace deep_inversion_test {
ResNet<> tiny_teacher() {
  ResNetConfig c;
  c.width = 4;
  c.img_size = 16;
  c.blocks = {1, 1, 1, 1};
  ResNet<> m(c);
  init_torchvision_like(m, 5);
  m.train(true);  // one training-mode pass gives the BN layers non-trivial running statistics
  m.forward(testing::uniform(Shape{8, 1, 16, 16}, 4));
  m.eval();
  return m;
}
std::vector<int> labels(int b) {
  std::vector<int> y;
  for (int i = 0; i < b; ++i) y.push_back(i % 10);
  return y;
}
}  // namespace deep_inversion_test

TEST_CASE("deep_inversion: the roll and flip are torch.roll then torch.flip, and their backward is the adjoint",
          "[deep_inversion]") {
  const std::int64_t b = 2, c = 1, h = 3, w = 4;
  auto x = testing::uniform(Shape{b, c, h, w}, 1);
  const tasks::RollFlip t{1, -1, true};
  auto y = Tensor<Cpu>::empty(x.shape());
  tasks::apply_roll_flip(t, x, y, false);
  // torch.roll(x, shifts=(1, -1), dims=(2, 3)): out[i][j] = x[(i - 1) mod h][(j + 1) mod w]; then flip along W
  for (std::int64_t p = 0; p < b * c; ++p)
    for (std::int64_t i = 0; i < h; ++i)
      for (std::int64_t j = 0; j < w; ++j) {
        const std::int64_t jr = w - 1 - j;  // the rolled image's column that the flip puts at j
        const float want = x[p * h * w + ((i - 1 + h) % h) * w + (jr + 1) % w];
        REQUIRE(y[p * h * w + i * w + j] == want);  // a permutation: exact
      }
  // <t(x), g> = <x, t^T(g)> (float sums of 24 products: 1e-5 relative)
  const auto g = testing::uniform(x.shape(), 2);
  auto tg = Tensor<Cpu>::zeros(x.shape());
  tasks::apply_roll_flip(t, g, tg, true);
  double lhs = 0.0, rhs = 0.0;
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    lhs += double(y[i]) * g[i];
    rhs += double(x[i]) * tg[i];
  }
  REQUIRE(std::abs(lhs - rhs) <= 1e-5 * (std::abs(lhs) + 1.0));
}

TEST_CASE("deep_inversion: the loss gradient matches a directional finite difference with every term on",
          "[deep_inversion]") {
  auto teacher = deep_inversion_test::tiny_teacher();
  tasks::DeepInversionOptions o;
  o.tv_l1 = 1e-2f;   // every term on, each with a weight large enough to matter in the sum
  o.l2 = 1e-2f;
  o.tv_l2 = 1e-2f;
  o.r_feature = 0.05f;
  const auto y = deep_inversion_test::labels(4);
  auto x = testing::uniform(Shape{4, 1, 16, 16}, 3);
  auto scratch = Tensor<Cpu>::empty(x.shape());
  for (const tasks::RollFlip t : {tasks::RollFlip{0, 0, false}, tasks::RollFlip{2, -3, true}}) {
    auto dx = Tensor<Cpu>::zeros(x.shape());
    tasks::deep_inversion_loss(teacher, x, y, t, o, dx, scratch);
    // along the gradient's own direction d = g / |g|: the slope is |g|, and the sum over all pixels averages the
    // few ReLU kinks a step crosses; float losses of a few units at h = 1e-2 give ~1e-4 of rounding in the slope.
    // 3% relative covers the kinks (a wrong mapping of the roll or flip gives errors of order 1).
    double norm = 0.0;
    for (std::int64_t i = 0; i < dx.numel(); ++i) norm += double(dx[i]) * dx[i];
    norm = std::sqrt(norm);
    REQUIRE(norm > 0.0);
    const double hstep = 1e-2;
    auto at = [&](double s) {
      auto xs = x.clone();
      for (std::int64_t i = 0; i < xs.numel(); ++i) xs[i] += static_cast<float>(s * dx[i] / norm);
      auto unused = Tensor<Cpu>::zeros(x.shape());
      return double(tasks::deep_inversion_loss(teacher, xs, y, t, o, unused, scratch));
    };
    const double fd = (at(hstep) - at(-hstep)) / (2 * hstep);
    INFO("roll (" << t.dy << ", " << t.dx << ") flip " << t.flip << ": slope " << fd << " vs |g| " << norm);
    REQUIRE(std::abs(fd - norm) <= 0.03 * norm);
  }
}

TEST_CASE("deep_inversion: lr_cosine_policy warms up linearly, then falls by a half cosine", "[deep_inversion]") {
  tasks::DeepInversionOptions o;
  o.iterations = 200;
  o.warmup = 10;
  o.lr = 0.2f;
  const float eps = 1e-6f;  // float arithmetic of one product and a cosine
  REQUIRE(std::abs(tasks::deep_inversion_lr(o, 0) - o.lr / 10) <= eps);
  REQUIRE(std::abs(tasks::deep_inversion_lr(o, 9) - o.lr) <= eps);
  REQUIRE(std::abs(tasks::deep_inversion_lr(o, 10) - o.lr) <= eps);
  REQUIRE(std::abs(tasks::deep_inversion_lr(o, 10 + 95) - o.lr / 2) <= eps);  // halfway through the cosine
  for (int t = 11; t < o.iterations; ++t) REQUIRE(tasks::deep_inversion_lr(o, t) < tasks::deep_inversion_lr(o, t - 1));
  REQUIRE(tasks::deep_inversion_lr(o, o.iterations - 1) < 1e-3f * o.lr);
}

TEST_CASE("deep_inversion: a run lowers the loss, keeps the best iteration's image and is deterministic",
          "[deep_inversion]") {
  auto teacher = deep_inversion_test::tiny_teacher();
  tasks::DeepInversionOptions o;
  o.iterations = 40;
  o.warmup = 2;
  o.jitter = 2;
  o.pixel_lo = -2.0f;
  o.pixel_hi = 2.0f;
  o.seed = 7;
  const auto y = deep_inversion_test::labels(6);
  const auto best = tasks::deep_inversion(teacher, y, o);
  const auto again = tasks::deep_inversion(teacher, y, o);
  REQUIRE(best.images.numel() == 6 * 16 * 16);
  for (std::int64_t i = 0; i < best.images.numel(); ++i) {
    REQUIRE(best.images[i] == again.images[i]);
    REQUIRE(best.images[i] >= o.pixel_lo);
    REQUIRE(best.images[i] <= o.pixel_hi);
  }
  REQUIRE(best.kept_loss <= best.final_loss);
  REQUIRE(best.kept_iteration >= 1);
  REQUIRE(best.kept_iteration <= o.iterations);
  o.keep_best = false;
  const auto last = tasks::deep_inversion(teacher, y, o);
  REQUIRE(last.kept_iteration == o.iterations);
  REQUIRE(last.kept_loss == last.final_loss);
  REQUIRE(last.final_loss == best.final_loss);  // keeping changes only what is returned
  // the loss falls: the first iteration's loss (a 1-iteration run from the same noise) is above the kept one
  o.iterations = 1;
  const auto first = tasks::deep_inversion(teacher, y, o);
  REQUIRE(best.kept_loss < first.final_loss);
}

TEST_CASE("deep_inversion: bad options and labels fail naming what is wrong", "[deep_inversion]") {
  auto teacher = deep_inversion_test::tiny_teacher();
  tasks::DeepInversionOptions o;
  o.iterations = 2;
  REQUIRE_THROWS_WITH(tasks::deep_inversion(teacher, {3}, o), Contains("batch of >= 2"));
  REQUIRE_THROWS_WITH(tasks::deep_inversion(teacher, {3, 10}, o), Contains("label 10"));
  o.jitter = 16;
  REQUIRE_THROWS_WITH(tasks::deep_inversion(teacher, {3, 4}, o), Contains("jitter = 16"));
  o.jitter = 1;
  o.iterations = 0;
  REQUIRE_THROWS_WITH(tasks::deep_inversion(teacher, {3, 4}, o), Contains("iterations = 0"));
  o.iterations = 2;
  o.beta2 = 1.0f;
  REQUIRE_THROWS_WITH(tasks::deep_inversion(teacher, {3, 4}, o), Contains("betas"));
}
