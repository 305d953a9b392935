// mint/inversion/schedules.hpp -- when patches leave the inversion and how many. Each schedule validates its
// parameters once, in begin(RunInfo), which the engine calls before the first iteration; event() then only
// decides (requires: begin() accepted the parameters for this run).
#pragma once

#include <cmath>
#include <vector>

#include "mint/core/error.hpp"
#include "mint/inversion/concepts.hpp"

namespace mint {

// DMI / DeepInversion: every patch is inverted for all T iterations.
struct Dense {
  ScheduleEvent event(int, int, int, int) const { return {}; }
};

// SMI (progressive early stopping, Sec. 4.2): after each listed iteration, prune the lowest-ranked `ratio` of
// the active patches, keeping floor(active * (1 - ratio)). The paper's default, 30% after 50/100/200/300,
// takes N = 196 to 137, 95, 66, 46.
struct ProgressivePrune {
  std::vector<int> iterations{50, 100, 200, 300};
  float ratio = 0.3f;
  void begin(const RunInfo&) const {
    check(ratio >= 0.0f && ratio < 1.0f, "ProgressivePrune: ratio ", ratio, " outside [0, 1)");
  }
  ScheduleEvent event(int t, int, int active, int) const {
    for (int it : iterations)
      if (it == t) {
        const int keep = std::max(1, static_cast<int>(std::floor(static_cast<double>(active) * (1.0 - ratio))));
        return {ScheduleEvent::Kind::Prune, active - keep};
      }
    return {};
  }
};

// PRI (Patch Rebirth, Algorithm 1): after iteration t_k = k * floor(T / v), k = 1..v-1, detach the top-ranked
// K = floor(N / v) active patches into a stored sparse image and keep inverting the rest; at T the remaining
// patches form the last image, so each trajectory yields v images.
struct Rebirth {
  int v = 4;
  void begin(const RunInfo& run) const {
    check(v >= 1 && v <= run.patches, "Rebirth: v = ", v, " must be in 1..", run.patches, " (the number of patches)");
  }
  ScheduleEvent event(int t, int total, int, int n) const {
    if (v < 1) return {};  // (begin() refuses it; no division by zero when called without begin())
    const int period = total / v;
    if (v > 1 && period > 0 && t % period == 0 && t / period <= v - 1) return {ScheduleEvent::Kind::Detach, n / v};
    return {};
  }
};

}  // namespace mint
