// Schedules, selectors and augmentation: the definitions of SMI Sec. 4.2 and PRI Algorithm 1.
#include "test_util.hpp"

#include <numeric>
#include <set>

#include "mint/inversion/augmentation.hpp"
#include "mint/inversion/schedules.hpp"
#include "mint/inversion/selectors.hpp"

using namespace mint;

TEST_CASE("ProgressivePrune: 30% at 50/100/200/300 takes 196 patches to 137, 95, 66, 46", "[inversion][schedule]") {
  ProgressivePrune s;
  int active = 196;
  std::vector<int> after;
  for (int t = 1; t <= 400; ++t) {
    auto e = s.event(t, 4000, active, 196);
    if (e.kind == ScheduleEvent::Kind::Prune) {
      active -= e.count;
      after.push_back(active);
    } else {
      REQUIRE(e.kind == ScheduleEvent::Kind::None);
    }
  }
  REQUIRE(after == std::vector<int>{137, 95, 66, 46});
}

TEST_CASE("Rebirth: detach floor(N/v) at k*floor(T/v), k = 1..v-1", "[inversion][schedule]") {
  for (int v : {2, 4, 7}) {
    CAPTURE(v);
    Rebirth s{v};
    const int total = 1000, n = 49;
    std::vector<int> at;
    for (int t = 1; t <= total; ++t) {
      auto e = s.event(t, total, 0, n);
      if (e.kind == ScheduleEvent::Kind::Detach) {
        REQUIRE(e.count == n / v);
        at.push_back(t);
      }
    }
    REQUIRE(static_cast<int>(at.size()) == v - 1);
    for (int k = 1; k < v; ++k) REQUIRE(at[k - 1] == k * (total / v));
  }
  REQUIRE(Dense{}.event(10, 100, 5, 5).kind == ScheduleEvent::Kind::None);
}

TEST_CASE("selectors rank active patches: high, low attention, random (seeded), top region", "[inversion][selector]") {
  const std::vector<std::int32_t> active{12, 3, 40, 7, 25};
  const std::vector<float> attn{0.1f, 0.5f, 0.05f, 0.3f, 0.05f};
  RankInput in{active, attn, 7, 0, 50, 123};
  REQUIRE(HighAttention{}.rank(in) == std::vector<std::int32_t>{3, 7, 12, 40, 25});  // ties keep token order
  REQUIRE(LowAttention{}.rank(in) == std::vector<std::int32_t>{40, 25, 12, 7, 3});
  REQUIRE(TopRegion{}.rank(in) == std::vector<std::int32_t>{3, 7, 12, 25, 40});
  auto r1 = Random{}.rank(in), r2 = Random{}.rank(in);
  REQUIRE(r1 == r2);  // a function of (seed, image, iteration)
  REQUIRE(std::set<std::int32_t>(r1.begin(), r1.end()) == std::set<std::int32_t>(active.begin(), active.end()));
  RankInput other = in;
  other.seed = 124;
  int differ = 0;
  for (int s = 0; s < 20; ++s) {  // different seeds give different permutations (almost surely)
    other.seed = 1000 + s;
    differ += Random{}.rank(other) != r1;
  }
  REQUIRE(differ >= 15);
  const std::vector<float> short_attn{0.1f};
  REQUIRE_THROWS_WITH(HighAttention{}.rank(RankInput{active, short_attn, 7, 0, 1, 0}), Catch::Contains("1 attention values"));
}

TEST_CASE("JitterFlip moves whole patches: pixels and patch numbers agree, the inverse restores", "[inversion][augmentation]") {
  const int p = 4, g = 7;
  auto img = testing::uniform(Shape{2, 1, 28, 28}, 5);
  JitterFlip aug;
  bool flipped = false, shifted = false;
  for (int t = 1; t <= 20; ++t) {
    auto tf = aug.sample(t, 1, 9, g);
    REQUIRE(std::abs(tf.shift_x) <= 1);  // H/8 = 3.5 px rounds to one 4 px patch
    REQUIRE(std::abs(tf.shift_y) <= 1);
    flipped |= tf.flip, shifted |= tf.shift_x != 0 || tf.shift_y != 0;
    auto out = Tensor<>::zeros(img.shape()), back = Tensor<>::zeros(img.shape());
    apply_transform(tf, img, out, 1, p, false);
    apply_transform(tf, out, back, 1, p, true);
    for (std::int64_t i = 784; i < 1568; ++i) REQUIRE(back[i] == img[i]);
    // patch q of the original, as a set of pixels, is patch transform_patch(q) of the output
    auto pin = nn::patchify(img, p), pout = nn::patchify(out, p);
    for (int q = 0; q < 49; ++q) {
      const int q2 = transform_patch(tf, q, g);
      double sin = 0, sout = 0;
      for (int e = 0; e < 16; ++e) sin += pin[(49 + q) * 16 + e], sout += pout[(49 + q2) * 16 + e];
      REQUIRE(sin == Approx(sout).margin(1e-5));
    }
  }
  REQUIRE(flipped);
  REQUIRE(shifted);
}
