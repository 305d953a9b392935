// mint/tasks/label_recovery.hpp -- labels WITH REPEATS from the classification head's bias gradient, for
// gradient-inversion attacks on batches (docs/gradvit.md, "Label recovery"). gradvit.hpp's rules return sets
// (Eq. 2: N distinct classes; the bias sign: the certainly present classes); these return a multiset of B labels.
//
// For the batch-mean cross-entropy the head-bias gradient is  g_c = (P_c - n_c) / B,  P_c = sum_b p_bc the
// batch's softmax mass on class c and n_c its label count (sum_c g_c = 0). Two ways to read n_c from it:
//
//   labels_from_bias_and_probs   n_c = B (p_c - g_c) with an estimate p_c of the batch-mean softmax P_c / B
//                                (rounded by largest remainder so the counts sum to B). Exact when the estimate
//                                is exact; at initialisation the softmax hardly depends on the input, so the mean
//                                softmax on any probe batch (or 1/C) is a good estimate.
//   labels_with_repeats          no probabilities: the "impact" rule of LLG (Wainakh et al. 2022), which breaching
//                                (JonasGeiping/breaching, label recovery strategies) also follows: every class with
//                                g_c < 0 is present; the mean contribution of one image is estimated as
//                                m = sum_{g_c < 0} g_c / B; each label found removes m from its class, and the
//                                remaining slots go one by one to the class whose corrected gradient is the most
//                                negative. It needs the images' own-class probability to be roughly shared.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <numeric>
#include <vector>

#include "mint/core/error.hpp"
#include "mint/core/tensor.hpp"

namespace mint::tasks::labels {

namespace detail {
inline void check_bias(const Tensor<Cpu>& g, int batch, const char* who) {
  check(g.rank() == 1 && g.numel() >= 1, who, ": the head-bias gradient must be [classes], got ", g.shape().str());
  check(batch >= 1, who, ": batch must be >= 1, got ", batch);
  for (std::int64_t c = 0; c < g.numel(); ++c)
    check(std::isfinite(g[c]), who, ": head-bias gradient entry ", c, " is ", g[c]);
}
}  // namespace detail

// requires: head_bias_grad [C] of a batch-mean cross-entropy over `batch` images; p_mean [C], an estimate of the
//           batch-mean softmax (entries >= 0, summing to 1 within 1e-3).
// ensures:  `batch` labels, ascending (a multiset: a class appears n_c times); n_c = B (p_c - g_c) rounded by
//           largest remainder to integers >= 0 summing to B, with every class of g_c < 0 kept at least once
//           (g_c < 0 proves it present whatever p is).
inline std::vector<int> labels_from_bias_and_probs(const Tensor<Cpu>& head_bias_grad, int batch,
                                                   const std::vector<double>& p_mean) {
  detail::check_bias(head_bias_grad, batch, "labels_from_bias_and_probs");
  const auto nc = static_cast<std::size_t>(head_bias_grad.numel());
  check(p_mean.size() == nc, "labels_from_bias_and_probs: ", p_mean.size(), " probabilities for ", nc, " classes");
  double sum = 0.0;
  for (std::size_t c = 0; c < nc; ++c) {
    check(p_mean[c] >= 0.0 && std::isfinite(p_mean[c]), "labels_from_bias_and_probs: probability ", c, " is ",
          p_mean[c]);
    sum += p_mean[c];
  }
  check(std::abs(sum - 1.0) <= 1e-3, "labels_from_bias_and_probs: the probabilities sum to ", sum, ", not 1");
  const double b = batch;
  std::vector<double> want(nc);
  std::vector<int> n(nc);
  int total = 0;
  for (std::size_t c = 0; c < nc; ++c) {
    want[c] = std::max(b * (p_mean[c] - static_cast<double>(head_bias_grad[static_cast<std::int64_t>(c)])), 0.0);
    n[c] = static_cast<int>(std::floor(want[c]));
    if (head_bias_grad[static_cast<std::int64_t>(c)] < 0.0f) n[c] = std::max(n[c], 1);
    total += n[c];
  }
  // largest remainder: add to the classes whose estimate is furthest above their count, or take from those
  // furthest below (only past the floor when the floors overshoot, which the "present at least once" rule can do)
  while (total != batch) {
    std::size_t best = nc;
    double best_gap = 0.0;
    for (std::size_t c = 0; c < nc; ++c) {
      const double gap = want[c] - n[c];
      const bool may_drop = n[c] > ((head_bias_grad[static_cast<std::int64_t>(c)] < 0.0f) ? 1 : 0);
      if (total < batch ? (best == nc || gap > best_gap) : (may_drop && (best == nc || gap < best_gap)))
        best = c, best_gap = gap;
    }
    check(best < nc, "labels_from_bias_and_probs: ", total, " classes have a negative bias gradient, more than the "
          "batch of ", batch);
    n[best] += total < batch ? 1 : -1;
    total += total < batch ? 1 : -1;
  }
  std::vector<int> out;
  for (std::size_t c = 0; c < nc; ++c) out.insert(out.end(), static_cast<std::size_t>(n[c]), static_cast<int>(c));
  return out;
}

// requires: head_bias_grad [C] of a batch-mean cross-entropy over `batch` images, with at least one negative
//           entry and at most `batch` negative entries.
// ensures:  `batch` labels, ascending: each class with g_c < 0 once, the remaining slots by the impact rule above.
inline std::vector<int> labels_with_repeats(const Tensor<Cpu>& head_bias_grad, int batch) {
  detail::check_bias(head_bias_grad, batch, "labels_with_repeats");
  const std::int64_t nc = head_bias_grad.numel();
  std::vector<double> r(static_cast<std::size_t>(nc));
  std::vector<int> out;
  double negative = 0.0;
  for (std::int64_t c = 0; c < nc; ++c) {
    r[static_cast<std::size_t>(c)] = head_bias_grad[c];
    if (head_bias_grad[c] < 0.0f) negative += head_bias_grad[c], out.push_back(static_cast<int>(c));
  }
  check(!out.empty(), "labels_with_repeats: no class has a negative bias gradient (not a cross-entropy gradient?)");
  check(static_cast<int>(out.size()) <= batch, "labels_with_repeats: ", out.size(), " classes have a negative bias "
        "gradient, more than the batch of ", batch);
  const double impact = negative / batch;  // < 0: one image's estimated share
  for (int c : out) r[static_cast<std::size_t>(c)] -= impact;
  while (static_cast<int>(out.size()) < batch) {
    const auto c = static_cast<int>(std::min_element(r.begin(), r.end()) - r.begin());
    out.push_back(c);
    r[static_cast<std::size_t>(c)] -= impact;
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The number of labels two multisets share (|a ∩ b| with multiplicity): how many of B recovered labels are right.
inline int multiset_overlap(std::vector<int> a, std::vector<int> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  std::vector<int> common;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(common));
  return static_cast<int>(common.size());
}

}  // namespace mint::tasks::labels
