// Optimal assignment (tasks::optimal_assignment, the Hungarian algorithm) and match_images, which pairs each
// recovered image with its original before PSNR / SSIM / FFT2D.
#include "test_util.hpp"

#include <algorithm>
#include <numeric>

#include "mint/core/rng.hpp"
#include "mint/tasks/metrics.hpp"

using namespace mint;

TEST_CASE("optimal assignment beats greedy and equals brute force", "[metrics][assignment]") {
  // greedy (row 0 takes its cheapest column 0) pays 1 + 100; the optimum swaps: 2 + 1
  REQUIRE(tasks::optimal_assignment({1, 2, 1, 100}, 2) == std::vector<int>{1, 0});
  REQUIRE(tasks::optimal_assignment({5}, 1) == std::vector<int>{0});
  // random 6 x 6 costs (with ties from rounding to 1 decimal): the total equals the best of all 720 permutations
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    const int n = 6;
    std::vector<double> cost(36);
    for (int k = 0; k < 36; ++k) cost[k] = std::round(10.0 * philox_uniform(seed, 3, k)) / 10.0;
    const auto col = tasks::optimal_assignment(cost, n);
    std::vector<int> seen(col);
    std::sort(seen.begin(), seen.end());
    REQUIRE(seen == std::vector<int>{0, 1, 2, 3, 4, 5});  // a permutation
    double got = 0;
    for (int i = 0; i < n; ++i) got += cost[i * n + col[i]];
    std::vector<int> p(n);
    std::iota(p.begin(), p.end(), 0);
    double best = 1e300;
    do {
      double s = 0;
      for (int i = 0; i < n; ++i) s += cost[i * n + p[i]];
      best = std::min(best, s);
    } while (std::next_permutation(p.begin(), p.end()));
    REQUIRE(got == Approx(best).margin(1e-12));
  }
  REQUIRE_THROWS_WITH(tasks::optimal_assignment({1, 2, 3}, 2), Catch::Contains("need n * n"));
  REQUIRE_THROWS_WITH(tasks::optimal_assignment({1, 2, 3, std::nan("")}, 2), Catch::Contains("not finite"));
}

TEST_CASE("match_images undoes a known permutation of noisy copies", "[metrics][assignment]") {
  const int n = 7;
  auto orig = testing::uniform(Shape{n, 1, 5, 5}, 61, 0.0f, 1.0f);
  const std::vector<int> perm{3, 0, 6, 1, 5, 2, 4};  // recovered image perm[i] is a noisy copy of original i
  auto rec = Tensor<>::empty(orig.shape());
  auto noise = testing::uniform(orig.shape(), 62, -0.1f, 0.1f);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < 25; ++k) rec[perm[i] * 25 + k] = orig[i * 25 + k] + noise[i * 25 + k];
  std::vector<int> order;
  const auto m = tasks::match_images(rec, orig, &order);
  REQUIRE(order == perm);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < 25; ++k) REQUIRE(m[i * 25 + k] == rec[perm[i] * 25 + k]);
  REQUIRE_THROWS_WITH(tasks::match_images(rec, Tensor<>::zeros(Shape{n, 1, 5, 4})), Catch::Contains("shapes differ"));
}
