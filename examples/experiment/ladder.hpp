// examples/experiment/ladder.hpp -- the equal-budget study of mint-experiment (PRI Fig. 1b and Table 2's claim;
// issue 20): for a ladder of compute budgets, each method makes as many images as the budget buys, and the
// students and the quantization settings are measured on those images.
//
// A budget is executed GEMM FLOPs (mint::CostMeter: counted from each iteration's actual active patches, so it
// does not depend on machine noise), given in units of what DMI spends on one image at this T: --budgets
// 35,70,140,280 lets DMI make 35 ... 280 images. Method m buys floor(B * dmi_flops_per_image / flops_per_image(m))
// images, in whole trajectories (PRI v: v images each), flops_per_image(m) being its equal-count set's executed
// FLOPs over its images (the same for every set of m at this T). Each method inverts one set per seed, for the
// largest budget (cached like every set; the equal-count set when that is large enough); a smaller budget takes
// the set's first trajectories. The sets are
// inverted in batches of --inv-batch trajectories, so such a prefix is what a shorter run of the same batches
// makes, except in the batch it cuts through (the official TV couples a batch's images). Wall time per point is
// the set's inversion time pro rata of its images (reported beside the FLOPs).
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "runner.hpp"

namespace mint::experiment {

struct LadderPoint {
  double budget = 0;            // in DMI images
  std::int64_t images = 0;      // what the budget buys
  double gflop = 0, seconds = 0;  // executed GEMM GFLOP of those images; their share of the set's wall time
  Downstream down;
};

// PRI's sets come stage-major within each inversion batch (every trajectory's stage-1 image, then stage 2, ...,
// in trajectory order): reorders them trajectory-major (trajectory j's v images together), so that a prefix is
// whole trajectories. The layout is checked (a stage block shares its detachment iteration; labels follow the
// trajectories, j mod 10) and a set that does not have it is an error, not a silently biased prefix.
inline std::vector<SparseImage> trajectory_major(const std::vector<SparseImage>& set, const Method& m, const Args& a) {
  const std::int64_t v = m.kind == Method::Pri ? m.v : 1, n = static_cast<std::int64_t>(set.size());
  if (v == 1) return set;
  const std::int64_t trajectories = (n + v - 1) / v;
  std::vector<SparseImage> out;
  out.reserve(set.size());
  for (std::int64_t first = 0, pos = 0; first < trajectories; first += a.inv_batch) {
    const std::int64_t b = std::min<std::int64_t>(a.inv_batch, trajectories - first);
    for (std::int64_t k = 0; k < v; ++k)
      for (std::int64_t i = 0; i < b && pos + k * b + i < n; ++i) {
        const auto& x = set[static_cast<std::size_t>(pos + k * b + i)];
        mint::check(x.iteration == set[static_cast<std::size_t>(pos + k * b)].iteration &&
                        x.label == static_cast<int>((first + i) % kClasses),
                    "trajectory_major: ", m.name, "'s set is not stage-major per batch of ", a.inv_batch,
                    " trajectories (image ", pos + k * b + i, ")");
      }
    for (std::int64_t i = 0; i < b; ++i)
      for (std::int64_t k = 0; k < v; ++k)
        if (pos + k * b + i < n) out.push_back(set[static_cast<std::size_t>(pos + k * b + i)]);
    pos += v * b;
  }
  return out;
}

// The points of method m for one seed. `equal_set` and `equal_count` are m's set at --images for this seed and its
// cost (its FLOPs per image); a ladder that needs no more images than it has takes its prefixes.
inline std::vector<LadderPoint> run_ladder(Context& c, Cache& cache, const Method& m, int seed,
                                           const std::vector<SparseImage>& equal_set, const InversionCost& equal_count,
                                           float lo, float hi, const std::string& dtag) {
  const Args& a = c.a;
  const double per_image = equal_count.gflop() / static_cast<double>(equal_count.images());
  const double dmi_per_image = mint::CostMeter(c.teacher.config()).dmi_flops_per_image(a.iterations) / 1e9;
  mint::check(per_image > 0 && dmi_per_image > 0, "run_ladder: ", m.name, " has no executed FLOPs per image");
  const std::int64_t v = m.kind == Method::Pri ? m.v : 1;
  auto bought = [&](double b) {  // whole trajectories of v images
    return v * static_cast<std::int64_t>(std::floor(b * dmi_per_image / (per_image * static_cast<double>(v)) + 1e-9));
  };
  double largest = 0;
  for (double b : a.budgets) largest = std::max(largest, b);
  Args big = a;
  big.images = static_cast<int>(std::max<std::int64_t>(1, bought(largest)));
  InversionCost set_cost = equal_count;
  if (big.images <= a.images) big = a;
  const auto set = trajectory_major(
      big.images == a.images ? equal_set : cached_inversion(c.teacher, cache, m, big, seed, lo, hi, set_cost), m, big);
  mint::check(static_cast<std::int64_t>(set.size()) == big.images, "run_ladder: ", m.name, "'s set has ",
              set.size(), " images, expected ", big.images);
  std::vector<LadderPoint> out;
  for (double b : a.budgets) {
    LadderPoint p;
    p.budget = b;
    p.images = bought(b);
    if (p.images < 1) continue;  // the budget buys no image of m
    const double share = static_cast<double>(p.images) / static_cast<double>(set.size());
    p.gflop = set_cost.gflop() * share, p.seconds = set_cost.seconds() * share;
    const std::vector<SparseImage> prefix(set.begin(), set.begin() + p.images);
    const std::string dk = "downstream/ladder/" + m.name + "_" + set_tag(big) + "_first" + std::to_string(p.images) +
                           "_s" + std::to_string(seed) + "_" + dtag;
    p.down = cached_downstream(c, cache, dk, prefix, static_cast<std::uint64_t>(seed));
    std::printf("[seed %d] ladder %s budget %g: %lld images, %.0f GFLOP; student 5-9 5-way %.1f%%, all %.1f%%\n",
                seed, m.name.c_str(), b, static_cast<long long>(p.images), p.gflop, p.down.student.unseen_within,
                p.down.student.all);
    std::fflush(stdout);
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace mint::experiment
