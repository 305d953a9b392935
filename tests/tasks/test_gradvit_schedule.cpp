// GradViT's loss scheduler (Eq. 5-6, gradvit::LossSchedule): Gamma(t) and Upsilon(t) at stated iterations.
#include "test_util.hpp"

#include "mint/tasks/gradvit.hpp"

using namespace mint;
namespace gv = mint::tasks::gradvit;

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
