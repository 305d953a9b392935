// examples/inversion_policies.hpp -- the CLIs' table from runtime names to the engine's compile-time policy types
// (mint-invert, mint-synthesize): one small map per policy. std::visit over the three variants instantiates every
// (schedule, selector, augmentation) combination at compile time.
#pragma once

#include <map>
#include <sstream>
#include <string>
#include <variant>

#include <mint/mint.hpp>

namespace mint::examples {

using ScheduleV = std::variant<Dense, ProgressivePrune, Rebirth>;
using SelectorV = std::variant<HighAttention, LowAttention, Random, TopRegion>;
using AugmentV = std::variant<NoAugmentation, JitterFlip>;

// --method dmi|smi|pri with PRI's --v and SMI's --prune (comma-separated positive iterations) and --ratio.
// `who` (the program) starts every error message.
inline ScheduleV schedule_of(const std::string& method, int v, const std::string& prune, float ratio,
                             const std::string& who) {
  if (method == "dmi") return Dense{};
  if (method == "pri") return Rebirth{v};
  check(method == "smi", who, ": --method must be dmi, smi or pri, got '", method, "'");
  ProgressivePrune p;
  p.ratio = ratio;
  p.iterations.clear();
  std::istringstream is(prune);
  for (std::string tok; std::getline(is, tok, ',');) {
    std::size_t used = 0;
    int it = 0;
    try {
      it = std::stoi(tok, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    check(used == tok.size() && it > 0, who, ": --prune: '", tok, "' in '", prune, "' is not a positive iteration");
    p.iterations.push_back(it);
  }
  return p;
}
inline SelectorV selector_of(const std::string& s, const std::string& who) {
  static const std::map<std::string, SelectorV> table{
      {"high", HighAttention{}}, {"low", LowAttention{}}, {"random", Random{}}, {"top", TopRegion{}}};
  auto it = table.find(s);
  check(it != table.end(), who, ": --selector must be high, low, random or top, got '", s, "'");
  return it->second;
}
inline AugmentV augment_of(const std::string& s, const std::string& who) {
  if (s == "jitterflip") return JitterFlip{};
  check(s == "none", who, ": --augment must be none or jitterflip, got '", s, "'");
  return NoAugmentation{};
}

}  // namespace mint::examples
