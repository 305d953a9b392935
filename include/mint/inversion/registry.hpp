// mint/inversion/registry.hpp -- the run-time names of the inversion policies, one table per policy kind, so
// CLIs, their --help, their error messages and their reports all read the same names (DESIGN.md "A registry
// names every policy"). A table maps a name to a default-constructed policy inside a std::variant; std::visit
// over the variants instantiates every combination at compile time. Adding a policy is one row here.
#pragma once

#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "mint/core/error.hpp"
#include "mint/inversion/augmentation.hpp"
#include "mint/inversion/schedules.hpp"
#include "mint/inversion/selectors.hpp"

namespace mint {

// Names of the policies of one kind (`kind` is how messages call it: "selector", ...).
template <class Variant>
struct PolicyTable {
  std::string kind;
  std::vector<std::pair<std::string, Variant>> entries;

  [[nodiscard]] std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : entries) out.push_back(e.first);
    return out;
  }
  [[nodiscard]] bool contains(const std::string& name) const {
    for (const auto& e : entries)
      if (e.first == name) return true;
    return false;
  }
  // The policy called `name`. Throws mint::Error listing the known names when there is none.
  [[nodiscard]] Variant make(const std::string& name) const {
    for (const auto& e : entries)
      if (e.first == name) return e.second;
    std::string known;
    for (const auto& e : entries) known += (known.empty() ? "" : ", ") + e.first;
    throw Error("unknown " + kind + " '" + name + "' (known: " + known + ")");
  }
};

// The schedules by method name: DMI (dense), SMI (progressive pruning), PRI (patch rebirth).
using ScheduleChoice = std::variant<Dense, ProgressivePrune, Rebirth>;
inline const PolicyTable<ScheduleChoice>& schedules() {
  static const PolicyTable<ScheduleChoice> t{"method",
                                             {{"dmi", Dense{}}, {"smi", ProgressivePrune{}}, {"pri", Rebirth{}}}};
  return t;
}

using SelectorChoice = std::variant<HighAttention, LowAttention, Random, TopRegion>;
inline const PolicyTable<SelectorChoice>& selectors() {
  static const PolicyTable<SelectorChoice> t{
      "selector", {{"high", HighAttention{}}, {"low", LowAttention{}}, {"random", Random{}}, {"top", TopRegion{}}}};
  return t;
}

using AugmentationChoice = std::variant<NoAugmentation, JitterFlip>;
inline const PolicyTable<AugmentationChoice>& augmentations() {
  static const PolicyTable<AugmentationChoice> t{"augmentation",
                                                 {{"none", NoAugmentation{}}, {"jitterflip", JitterFlip{}}}};
  return t;
}

}  // namespace mint
