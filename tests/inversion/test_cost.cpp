// Cost accounting: the executed-FLOP count, PRI's Theorem 1 (App. F) closed forms, the peak-memory counter.
#include "test_util.hpp"

#include "mint/inversion/cost.hpp"

using namespace mint;

TEST_CASE("iteration FLOPs: dense blocks plus a CLS-only last block", "[inversion][cost]") {
  ViTConfig c;  // DeiT-Tiny shape
  const double b = 8, t = 197, d = 192, f = 768, e = 1;
  // every block on all tokens (what a framework without the last-block shortcut runs; bench_vit's formula)
  const double nominal = 2 * (2 * b * 196 * 768 * d + 2 * b * e * d * 1000) + 12 * (4 * b * t * (4 * d * d + 2 * d * f) + 12 * b * t * t * d);
  // the last block saves attention queries, projection and MLP on the 196 patch rows
  const double saved = b * (12 * (t - e) * t * d + 4 * (t - e) * d * d + 8 * (t - e) * d * f);
  REQUIRE(inversion_iteration_flops(c, 8, 196) == Approx(nominal - saved).epsilon(1e-12));
  REQUIRE(inversion_iteration_flops(c, 8, 50) < inversion_iteration_flops(c, 8, 196) / 3);
}

TEST_CASE("Theorem 1: PRI < SMI* < DMI, FFN ratio (v+1)/2v", "[inversion][cost]") {
  const Theorem1 th{12, 192, 196};  // N = 196 < 3d = 576
  for (double v : {2.0, 4.0, 7.0}) {
    CAPTURE(v);
    REQUIRE(th.pri(128, 4000, v) < th.smi_ideal(128, 4000, v));
    REQUIRE(th.smi_ideal(128, 4000, v) < th.dmi(128, 4000));
    // FFN part alone: sum over stages of N_k, normalised by I/v and T/v
    double pri_ffn = 0;
    for (int k = 1; k <= v; ++k) pri_ffn += th.ffn(196 * (1 - (k - 1) / v)) * (128 / v) * (4000 / v) * 12;
    const double smi_ffn = 12 * th.ffn(196 / v) * 128 * 4000;
    REQUIRE(pri_ffn / smi_ffn == Approx((v + 1) / (2 * v)).epsilon(1e-12));
  }
}

TEST_CASE("peak tensor memory is tracked", "[inversion][cost][core]") {
  cpu::reset_peak_bytes();
  const auto live = cpu::live_bytes();
  {
    auto a = Tensor<>::empty(Shape{1 << 18});  // 1 MiB
  }
  REQUIRE(cpu::live_bytes() == live);
  REQUIRE(cpu::peak_bytes() >= live + (std::size_t{1} << 20));
}

namespace cost_meter_test {
struct Stats {
  std::int64_t active;
};
}  // namespace cost_meter_test

TEST_CASE("CostMeter: executed FLOPs, one ratio convention (method / DMI), Theorem 1, the peak", "[inversion][cost]") {
  ViTConfig c;  // DeiT-Tiny shape, N = 196
  CostMeter dense(c);
  dense.begin(4);
  for (int t = 0; t < 10; ++t) dense(cost_meter_test::Stats{196});
  dense.end();
  // exact: the same closed form summed; DMI against itself is 1 in both the measured and the theorem's ratio
  REQUIRE(dense.flops() == Approx(10 * inversion_iteration_flops(c, 4, 196)).epsilon(1e-12));
  REQUIRE(dense.cost_vs_dmi(4) == Approx(1.0).epsilon(1e-12));
  REQUIRE(dense.theorem1_cost_vs_dmi(1, 10) == 1.0);

  // a PRI-like run (v = 2): half the iterations on half the patches, two images per trajectory
  CostMeter pri(c);
  pri.begin(4);
  for (int t = 0; t < 5; ++t) pri(cost_meter_test::Stats{196});
  for (int t = 0; t < 5; ++t) pri(cost_meter_test::Stats{98});
  {
    auto held = Tensor<>::empty(Shape{1 << 18});  // 1 MiB alive during the run
  }
  pri.end();
  const double expect = (5 * inversion_iteration_flops(c, 4, 196) + 5 * inversion_iteration_flops(c, 4, 98)) / 8 /
                        (10 * inversion_iteration_flops(c, 1, 196));
  REQUIRE(pri.cost_vs_dmi(8) == Approx(expect).epsilon(1e-12));
  REQUIRE(pri.cost_vs_dmi(8) < 0.5);  // cheaper than DMI: the ratio is method / DMI, below 1
  const Theorem1 th{12, 192, 196};
  REQUIRE(pri.theorem1_cost_vs_dmi(2, 4000) == Approx(th.pri(1, 4000, 2) / th.dmi(1, 4000)).epsilon(1e-12));
  // SMI (one image per trajectory, 98 patches at the end): the theorem's SMI* at v = 196 / 98
  REQUIRE(pri.theorem1_cost_vs_dmi(1, 4000) == Approx(th.smi_ideal(1, 4000, 2) / th.dmi(1, 4000)).epsilon(1e-12));
  REQUIRE(pri.peak_mib() >= 1.0);
  REQUIRE(pri.to_json(8, 2, 4000).at("cost_vs_dmi").get<double>() == Approx(expect).epsilon(1e-12));
  REQUIRE_THROWS_WITH(pri.begin(0), Catch::Matchers::Contains("0 trajectories"));
}
