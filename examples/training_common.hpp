// What mint's training CLIs share besides the command line (examples/cli.hpp): the reproducibility helpers of the
// trainers' JSON recipes, the seeded shuffle and comma-separated lists.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <numeric>
#include <string>
#include <vector>

#include <mint/core/error.hpp>
#include <mint/core/rng.hpp>

namespace mint::examples {

// A seeded permutation of 0..n-1 (Fisher-Yates on 64 Philox bits per swap).
inline std::vector<std::int32_t> permutation(std::int64_t n, std::uint64_t seed, std::uint32_t stream) {
  std::vector<std::int32_t> p(static_cast<std::size_t>(n));
  std::iota(p.begin(), p.end(), 0);
  for (std::int64_t i = n - 1; i > 0; --i) {
    const auto w = philox_block(seed, stream, static_cast<std::uint64_t>(i));
    const std::uint64_t r = (static_cast<std::uint64_t>(w.w[0]) << 32) | w.w[1];
    std::swap(p[static_cast<std::size_t>(i)], p[static_cast<std::size_t>(r % static_cast<std::uint64_t>(i + 1))]);
  }
  return p;
}

// A float option as the decimal the user typed (0.002, not 0.0020000000949949026) for the JSON recipe.
inline double dec(float x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.7g", static_cast<double>(x));
  return std::stod(buf);
}

inline std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// The comma-separated items of s, empty items dropped ("a,,b" -> {a, b}).
inline std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    const auto comma = std::min(s.find(',', pos), s.size());
    if (comma > pos) out.push_back(s.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return out;
}

}  // namespace mint::examples
