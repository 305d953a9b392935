// tasks/april.hpp: APRIL's closed-form batch-1 recovery from the position-embedding gradient (exact up to float
// rounding on the teacher, whose position embedding is learned), its refusals, and its optimisation term as
// gradvit::AttackOptions::extra_match.
#include "test_util.hpp"
#include "tasks/teacher_fixture.hpp"

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "mint/tasks/april.hpp"
#include "mint/tasks/gradvit.hpp"
#include "mint/tasks/metrics.hpp"

using namespace mint;
namespace gv = mint::tasks::gradvit;

namespace april_test {

// Test image i as a [1, 1, 28, 28] batch and its label.
std::pair<Tensor<>, int> image(std::int64_t i) {
  const auto& d = test::test_images();
  auto x = Tensor<>::empty(Shape{1, 1, 28, 28});
  std::copy(d.images.data() + i * 784, d.images.data() + (i + 1) * 784, x.data());
  return {x, d.labels[static_cast<std::size_t>(i)]};
}

double max_abs_diff(const Tensor<>& a, const Tensor<>& b) {
  double m = 0.0;
  for (std::int64_t i = 0; i < a.numel(); ++i) m = std::max(m, static_cast<double>(std::abs(a[i] - b[i])));
  return m;
}

}  // namespace april_test

TEST_CASE("APRIL: the closed form recovers a batch-1 input from the position-embedding gradient", "[april]") {
  auto& model = test::teacher();
  for (std::int64_t i : {0, 7, 42}) {
    const auto [x, y] = april_test::image(i);
    const auto g = gv::parameter_gradients(model, x, {y});
    const auto r = tasks::april::closed_form(g, 1, 28);
    INFO("test image " << i << ": rank " << r.rank << ", condition " << r.condition << ", residual " << r.residual);
    CHECK(r.rank == 49);
    // float32 gradients carry a relative rounding error of ~1e-6 (summed over 50 tokens); the solve amplifies it
    // by at most the condition number. Pixels are in normalised units (range 2.83), so 1e-2 is 0.35 % of the range
    // (PSNR > 49 dB): far from any approximate recovery, and a wrong token offset or transposition gives O(1).
    CHECK(r.residual < 1e-4);
    CHECK(april_test::max_abs_diff(r.image, x) < 1e-2);
  }
}

TEST_CASE("APRIL: the closed form does not determine a batch of two", "[april]") {
  auto& model = test::teacher();
  const auto [x0, y0] = april_test::image(0);
  const auto [x1, y1] = april_test::image(1);
  auto x = Tensor<>::empty(Shape{2, 1, 28, 28});
  std::copy(x0.data(), x0.data() + 784, x.data());
  std::copy(x1.data(), x1.data() + 784, x.data() + 784);
  const auto r = tasks::april::closed_form(gv::parameter_gradients(model, x, {y0, y1}), 1, 28);
  // the sum over two images is not Gpos^T X for any X: the residual is far above the batch-1 rounding level
  CHECK(r.residual > 1e-2);
}

TEST_CASE("APRIL: the closed form names what it needs", "[april]") {
  gv::GradMap g;
  g["patch_embed.proj.weight"] = Tensor<>::zeros(Shape{8, 3, 2, 2});
  REQUIRE_THROWS_WITH(tasks::april::closed_form(g, 1, 8), Catch::Contains("no 'pos_embed'"));
  g["pos_embed"] = Tensor<>::zeros(Shape{1, 17, 8});
  REQUIRE_THROWS_WITH(tasks::april::closed_form(g, 1, 8), Catch::Contains("dim 8 < 16 patches"));
  REQUIRE_THROWS_WITH(tasks::april::closed_form(g, 1, 7), Catch::Contains("not a multiple of the patch size 2"));
  REQUIRE_THROWS_WITH(tasks::april::closed_form(g, 2, 8), Catch::Contains("expected [1, 18, 8]"));
  g["patch_embed.proj.weight"] = Tensor<>::zeros(Shape{16, 3, 2, 2});
  g["pos_embed"] = Tensor<>::zeros(Shape{1, 17, 16});
  REQUIRE_THROWS_WITH(tasks::april::closed_form(g, 1, 8), Catch::Contains("position-embedding gradient is zero"));
}

TEST_CASE("APRIL: the position-embedding term adds to the attack objective with Gamma(t)", "[april]") {
  auto& model = test::teacher();
  const auto [xs, y] = april_test::image(3);
  const auto g = gv::parameter_gradients(model, xs, {y});
  gv::GradientMatch main(g, {y}, {.distance = gv::MatchDistance::Cosine});
  const auto extra = tasks::april::position_embedding_match(g, {y}, 0.5f);
  REQUIRE(extra.matched() == std::vector<std::string>{"pos_embed"});
  auto x = Tensor<>::empty(xs.shape());
  fill_normal(x, 5, 0, 0.0f, 1.0f);
  gv::AttackOptions opt{.iterations = 10, .tv = 1e-3f, .schedule = {.enabled = true, .alpha_grad = 1.0f}};
  auto d0 = Tensor<>::zeros(x.shape()), d1 = Tensor<>::zeros(x.shape()), de = Tensor<>::zeros(x.shape());
  const int t = 8;  // after T/2: Gamma = 1/2
  const double v0 = gv::attack_objective(model, main, x, opt, t, nullptr, &d0);
  opt.extra_match = &extra;
  const double v1 = gv::attack_objective(model, main, x, opt, t, nullptr, &d1);
  const double ve = extra.evaluate(model, x, &de).loss;
  // same passes in the same order: the sums agree to float32 rounding of the added terms
  CHECK(v1 == Approx(v0 + 0.5 * ve).epsilon(1e-6));
  double worst = 0.0, scale = 0.0;
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    worst = std::max(worst, std::abs(static_cast<double>(d1[i]) - d0[i] - 0.5 * de[i]));
    scale = std::max(scale, std::abs(0.5 * static_cast<double>(de[i])));
  }
  REQUIRE(scale > 0.0);
  CHECK(worst <= 1e-5 * scale + 1e-9);
}
