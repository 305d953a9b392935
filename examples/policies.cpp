// mint-policies: prints the policy registry (include/mint/inversion/registry.hpp): every policy with its
// parameters, defaults and sources, as JSON (default) or as the catalogue of docs/policies.md (--markdown), and
// the policies file of a run's defaults (--defaults), a starting point for `mint-invert --policies FILE`.
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include <mint/mint.hpp>

#include "inversion_cli.hpp"

namespace {

// Every registered policy of one kind as {"name", "summary", "source", "params": [{name, type, default, ...}]}.
template <class... Ps>
nlohmann::json kind_json() {
  nlohmann::json out = nlohmann::json::array();
  auto one = [&](const auto& def) {
    using I = mint::PolicyInfo<std::decay_t<decltype(def)>>;
    nlohmann::json params = nlohmann::json::array();
    for (const auto& q : I::params())
      params.push_back({{"name", q.name}, {"type", q.type}, {"default", q.get(def)}, {"range", q.range},
                        {"meaning", q.meaning}, {"source", q.source}});
    out.push_back({{"name", I::name}, {"summary", I::summary}, {"source", I::source}, {"params", params}});
  };
  (one(Ps{}), ...);
  return out;
}

int run(bool markdown, bool defaults) {
  if (markdown) {
    std::fputs(mint::policy_catalogue_markdown().c_str(), stdout);
    return 0;
  }
  if (defaults) {
    const mint::cli::InversionArgs a;
    std::printf("%s\n", mint::cli::policies_json(a).dump(2).c_str());
    return 0;
  }
  using namespace mint;
  const nlohmann::json j = {
      {"schedule", kind_json<Dense, ProgressivePrune, Rebirth>()},
      {"selector", kind_json<HighAttention, LowAttention, Random, TopRegion>()},
      {"augmentation", kind_json<NoAugmentation, JitterFlip, JitterFlipOfficial>()},
      {"prior", kind_json<TV, L2, TVOfficial, TVOfficialL1, L2Official, BNPrior, BorrowedBNPrior, NoPrior>()},
      {"objective", kind_json<ClassObjective>()},
      {"preset", {preset_to_json(PresetForm::Paper), preset_to_json(PresetForm::Official)}}};
  std::printf("%s\n", j.dump(2).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool markdown = false, defaults = false;
  mint::cli::Command cmd("mint-policies", "Prints the inversion policies, their parameters, defaults and sources.");
  cmd.app().add_flag("--markdown", markdown, "the catalogue of docs/policies.md instead of JSON");
  cmd.app().add_flag("--defaults", defaults, "the policies file of mint-invert's defaults (for --policies)");
  return mint::cli::main(cmd, argc, argv, [&] { return run(markdown, defaults); });
}
