// mint/inversion/regularizers.hpp: TV's active-set form (what the engine calls on the CPU) against its plain form,
// through a run's life: the stepped patches change between calls, their pixels move, the frozen ones do not.
#include "test_util.hpp"

#include "mint/inversion/regularizers.hpp"

using namespace mint;
using testing::uniform;

namespace regularizers_test {
// Moves every pixel of `stepped`'s patches (patch size 4, 3 x 3 grid) of x [B, C, 12, 12] by a deterministic amount.
void move_stepped(Tensor<>& x, const nn::TokenIndex& stepped, float by) {
  const std::int64_t c = x.dim(1);
  for (std::int64_t i = 0; i < stepped.batch; ++i)
    for (std::int64_t k = 0; k < stepped.count; ++k) {
      const std::int64_t y0 = (stepped.at(i, k) / 3) * 4, x0 = (stepped.at(i, k) % 3) * 4;
      for (std::int64_t ch = 0; ch < c; ++ch)
        for (std::int64_t y = y0; y < y0 + 4; ++y)
          for (std::int64_t xx = x0; xx < x0 + 4; ++xx) x[((i * c + ch) * 12 + y) * 12 + xx] += by * (1 + y - xx);
    }
}
// The plain form's value and gradient on x.
float plain(const TV& tv, const Tensor<>& x, Tensor<>& g) {
  g = Tensor<>::zeros(x.shape());
  return tv.add(x, g);
}
}  // namespace regularizers_test

TEST_CASE("TV over the stepped patches: the value and the stepped pixels' gradient of the plain TV",
          "[inversion][regularizer][tv]") {
  const TV tv{0.5f};
  auto x = uniform(Shape{2, 3, 12, 12}, 361, -1.f, 1.f);
  // a run's stages: all patches, then 5, then 2 of them (each a subset of the one before, as a schedule makes)
  const nn::TokenIndex all = nn::TokenIndex::all(2, 9);
  const nn::TokenIndex five{2, 5, {0, 2, 4, 6, 8, 1, 3, 4, 5, 7}};
  const nn::TokenIndex two{2, 2, {4, 8, 3, 7}};
  for (const nn::TokenIndex* stage : {&all, &five, &five, &five, &two, &two}) {
    Tensor<> g_ref, g = Tensor<>::zeros(x.shape());
    const float ref = regularizers_test::plain(tv, x, g_ref);
    const float v = tv.add(x, g, *stage, 4);
    // the frozen pairs' sum is added as a constant: the double sums differ in grouping only, far below float's 6e-8
    CHECK(v == Approx(ref).epsilon(1e-6));
    for (std::int64_t i = 0; i < 2; ++i)
      for (std::int64_t k = 0; k < stage->count; ++k) {
        const std::int64_t y0 = (stage->at(i, k) / 3) * 4, x0 = (stage->at(i, k) % 3) * 4;
        for (std::int64_t ch = 0; ch < 3; ++ch)
          for (std::int64_t y = y0; y < y0 + 4; ++y)
            for (std::int64_t xx = x0; xx < x0 + 4; ++xx) {
              const std::int64_t o = ((i * 3 + ch) * 12 + y) * 12 + xx;
              REQUIRE(g[o] == g_ref[o]);  // the same pairs in the same order: bit for bit
            }
      }
    regularizers_test::move_stepped(x, *stage, 0.03f);  // the masked step: only the stepped pixels move
  }
  // the sums kept for the frozen pixels belong to this images tensor: another one recomputes them
  auto y = uniform(Shape{2, 3, 12, 12}, 362, -1.f, 1.f);
  Tensor<> g_ref, g = Tensor<>::zeros(y.shape());
  CHECK(tv.add(y, g, two, 4) == Approx(regularizers_test::plain(tv, y, g_ref)).epsilon(1e-6));
}

TEST_CASE("Sum uses TV's stepped form and adds its other terms whole", "[inversion][regularizer][tv]") {
  const Sum<TV, L2> prior{TV{0.5f}, L2{0.25f}};
  auto x = uniform(Shape{2, 1, 12, 12}, 363, -1.f, 1.f);
  const nn::TokenIndex three{2, 3, {0, 4, 8, 1, 2, 3}};
  Tensor<> g_ref = Tensor<>::zeros(x.shape()), g = Tensor<>::zeros(x.shape());
  const float ref = prior.add(x, g_ref);
  CHECK(prior.add(x, g, three, 4) == Approx(ref).epsilon(1e-6));
  std::int64_t same = 0;
  for (std::int64_t o = 0; o < x.numel(); ++o) same += g[o] == g_ref[o];
  CHECK(same >= 3 * 16 * 2);  // at least every stepped pixel's gradient is the plain one's
}
