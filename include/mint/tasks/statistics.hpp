// mint/tasks/statistics.hpp -- the few statistics a study over seeds reports: mean and sample standard deviation
// (n - 1 in the denominator, as numpy's std(ddof=1)), smallest and largest value, paired per-seed differences,
// and histogram shares over [0, 1] (PRI Figs. 5, 6: the teacher's confidence in bins of equal width).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "mint/core/error.hpp"

namespace mint::tasks {

struct Summary {
  double mean = 0.0, sd = 0.0, min = 0.0, max = 0.0;
  int n = 0;
};

// ensures: n = v.size(); for n = 0 every field is 0; sd = 0 for n = 1; otherwise the sample sd (n - 1).
inline Summary summarize(const std::vector<double>& v) {
  Summary s;
  s.n = static_cast<int>(v.size());
  if (v.empty()) return s;
  double sum = 0.0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  if (v.size() > 1) {
    double q = 0.0;
    for (double x : v) q += (x - s.mean) * (x - s.mean);
    s.sd = std::sqrt(q / static_cast<double>(v.size() - 1));
  }
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  s.min = *lo, s.max = *hi;
  return s;
}

// x[i] - y[i] for every seed i. requires: x and y of equal length (else an error naming `what` and both lengths).
inline std::vector<double> paired_differences(const std::vector<double>& x, const std::vector<double>& y,
                                              const std::string& what = "paired_differences") {
  check(x.size() == y.size(), what, ": ", x.size(), " values against ", y.size(), " (one per seed on both sides)");
  std::vector<double> d(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) d[i] = x[i] - y[i];
  return d;
}

// The share (in [0, 1]) of `v` in each of `bins` equal bins over [0, 1]; the last bin is closed ([0.9, 1] for
// 10 bins). requires: bins >= 1, every value finite and in [0, 1] (an error names the first one outside).
// ensures: the shares sum to 1 when v is non-empty, and are all 0 when it is empty.
inline std::vector<double> unit_histogram(const std::vector<double>& v, int bins) {
  check(bins >= 1, "unit_histogram: bins must be >= 1, got ", bins);
  std::vector<double> share(static_cast<std::size_t>(bins), 0.0);
  for (std::size_t i = 0; i < v.size(); ++i) {
    check(std::isfinite(v[i]) && v[i] >= 0.0 && v[i] <= 1.0, "unit_histogram: value ", i, " = ", v[i],
          " is outside [0, 1]");
    share[static_cast<std::size_t>(std::min(bins - 1, static_cast<int>(v[i] * bins)))] += 1.0;
  }
  for (double& s : share) s = v.empty() ? 0.0 : s / static_cast<double>(v.size());
  return share;
}

}  // namespace mint::tasks
