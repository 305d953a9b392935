// mint/tasks/statistics.hpp: summaries over seeds, paired differences and unit histograms, against values worked
// out by hand (the inputs are small integers and halves, exact in binary floating point).
#include "test_util.hpp"

#include <cmath>
#include <vector>

#include "mint/tasks/statistics.hpp"

namespace test_statistics_detail {

using mint::tasks::paired_differences;
using mint::tasks::summarize;
using mint::tasks::unit_histogram;

TEST_CASE("summarize gives mean, the sample sd (n - 1), min and max", "[statistics]") {
  const auto s = summarize({2.0, 4.0, 9.0});
  CHECK(s.n == 3);
  CHECK(s.mean == 5.0);
  // squared deviations 9 + 1 + 16 = 26 over n - 1 = 2: sd = sqrt(13); one ulp of slack for the square root
  CHECK(std::abs(s.sd - std::sqrt(13.0)) <= 1e-15 * std::sqrt(13.0));
  CHECK(s.min == 2.0);
  CHECK(s.max == 9.0);
  const auto one = summarize({7.0});
  CHECK(one.sd == 0.0);
  CHECK(one.min == 7.0);
  CHECK(summarize({}).n == 0);
}

TEST_CASE("paired_differences subtracts seed by seed and refuses unequal lengths", "[statistics]") {
  const auto d = paired_differences({5.0, 1.0, 3.0}, {2.0, 4.0, 3.0});
  REQUIRE(d.size() == 3);
  CHECK(d[0] == 3.0);
  CHECK(d[1] == -3.0);
  CHECK(d[2] == 0.0);
  CHECK_THROWS_WITH(paired_differences({1.0}, {1.0, 2.0}, "dmi - gaussian"),
                    Catch::Contains("dmi - gaussian") &&
                        Catch::Contains("1 values against 2"));
}

TEST_CASE("unit_histogram puts each value in its bin, 1 in the last, and refuses values outside [0, 1]",
          "[statistics]") {
  const auto h = unit_histogram({0.0, 0.05, 0.5, 0.95, 1.0}, 10);
  REQUIRE(h.size() == 10);
  CHECK(h[0] == 0.4);  // 0 and 0.05
  CHECK(h[5] == 0.2);  // 0.5
  CHECK(h[9] == 0.4);  // 0.95 and 1 (the last bin is closed)
  double total = 0.0;
  for (double x : h) total += x;
  CHECK(std::abs(total - 1.0) <= 1e-12);  // five shares of 0.2 or 0.4, rounded once each
  CHECK(unit_histogram({}, 4) == std::vector<double>(4, 0.0));
  CHECK_THROWS_WITH(unit_histogram({0.5, 1.5}, 10), Catch::Contains("value 1 = 1.5"));
  CHECK_THROWS_WITH(unit_histogram({0.5}, 0), Catch::Contains("bins must be >= 1"));
}

}  // namespace test_statistics_detail
