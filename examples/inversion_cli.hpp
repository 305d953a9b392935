// examples/inversion_cli.hpp -- what the CLIs that invert a model share (mint-invert, mint-synthesize): the
// method and its policies, T, the batch, Adam, the priors, the seed and the model with its settings, as options
// (names from the engine's policy registry), their checks before any long work, the model source, and the
// method's policies from the registry (mint/inversion/registry.hpp): read from a policies file (--policies) and
// recorded in reports as the same JSON. Requires MINT_DEFAULT_MODEL (the embedded teacher; examples/CMakeLists.txt
// defines it).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <mint/mint.hpp>

#include "cli.hpp"

namespace mint::cli {

struct InversionArgs {
  std::string method = "pri", selector = "high", augment = "none";
  std::vector<int> prune{50, 100, 200, 300};
  std::string model = MINT_DEFAULT_MODEL, recipe;
  int v = 4, iterations = 400, batch = 10;
  float ratio = 0.3f, lr = 0.25f, tv = 1e-4f, l2 = 0.0f;
  std::uint64_t seed = 0;
  int heads = 0;                 // 0: not given
  std::string arch;
  std::vector<float> mean, std;  // per channel, or one for all
  std::string policies;          // a policies file (--policies)
  std::optional<AugmentationChoice> augmentation;  // set by a policies file (with its parameters)
};

inline void add_inversion_options(Command& c, InversionArgs& a) {
  c.choice("--method", a.method, "inversion method (its schedule): " + schedules().help(), schedules().names());
  c.choice("--selector", a.selector, "patch ranking for SMI's pruning and PRI's detachment: " + selectors().help(),
           selectors().names());
  c.choice("--augment", a.augment, "per-iteration augmentation: " + augmentations().help(), augmentations().names());
  c.existing("--policies", a.policies, "a policies file: JSON {\"schedule\", \"selector\", \"augmentation\", "
             "\"prior\", \"objective\"}, each {\"name\", \"params\"} (mint-policies --defaults; a report.json's "
             "\"policies\"; docs/policies.md)");
  c.number("--v", a.v, "PRI: images per trajectory", 1, 1 << 20);
  c.numbers("--prune", a.prune, "SMI: iterations after which to prune, increasing", 1, 10'000'000);
  c.number("--ratio", a.ratio, "SMI: share of the active patches pruned at each point (< 1)", 0, 1);
  c.number("--iterations", a.iterations, "iterations T per trajectory", 1, 10'000'000);
  c.number("--batch", a.batch, "trajectories per batch (labels 0, 1, ... cycling over the classes)", 1, 4096);
  c.number("--lr", a.lr, "Adam learning rate", 1e-9, 1e3);
  c.number("--tv", a.tv, "total-variation prior weight", 0, 1e6);
  c.number("--l2", a.l2, "L2 prior weight", 0, 1e6);
  c.number("--seed", a.seed, "seed of the noise, random selector and augmentation", 0,
           std::numeric_limits<std::uint64_t>::max());
  c.existing("--model", a.model, "a ViT as .safetensors, torch.save .pth/.bin, or a timm hub folder");
  c.existing("--recipe", a.recipe, "a timm config.json or a mint recipe (default: the one beside the model)");
  c.number("--heads", a.heads, "attention heads (default: config, metadata, then the timm table)", 1, 4096);
  c.text("--arch", a.arch, "a known timm architecture name (gives heads and normalisation)");
  c.numbers("--mean", a.mean, "input mean per channel in [0, 1] units (with --std)", -1e6, 1e6);
  c.numbers("--std", a.std, "input std per channel (with --mean)", 1e-12, 1e6);
}

// The model with its settings and where each came from (open_model: the config is checked before the weights).
inline ModelSource open_inversion_model(const Command& c, const InversionArgs& a) {
  ModelOverrides ov;
  if (c.given("--heads")) ov.heads = a.heads;
  ov.arch = a.arch, ov.mean = a.mean, ov.std = a.std, ov.config = a.recipe;
  return open_model(a.model, ov);
}

// Everything about the method's options that can be wrong for this model, checked before the run: options the
// method ignores, PRI with fewer iterations than images (or more images than patches), SMI's pruning points
// after the last iteration or out of order. Throws mint::Error naming the option.
inline void validate_inversion(const Command& c, const InversionArgs& a, const ViTConfig& cfg) {
  auto only_for = [&](const char* option, const std::string& method) {
    check(!c.given(option) || a.method == method, option, " applies to --method ", method, " only; --method ",
          a.method, " would ignore it");
  };
  only_for("--v", "pri");
  only_for("--prune", "smi");
  only_for("--ratio", "smi");
  check(!c.given("--selector") || a.method != "dmi", "--selector: --method dmi never ranks patches; it would "
        "ignore --selector ", a.selector);
  check(a.ratio < 1.0f, "--ratio ", a.ratio, " must be < 1 (1 would prune every patch)");
  if (a.method == "pri") {
    check(a.v <= cfg.num_patches(), "--v ", a.v, " exceeds the model's ", cfg.num_patches(),
          " patches (each of the v images needs at least one)");
    check(a.iterations >= a.v, "--method pri with --v ", a.v, " needs --iterations >= ", a.v,
          " (a detachment every floor(T / v) iterations), got ", a.iterations, ": it would give fewer than v "
          "images per trajectory");
  }
  if (a.method == "smi") {
    for (std::size_t i = 0; i < a.prune.size(); ++i)
      check(a.prune[i] <= a.iterations, "--prune ", a.prune[i], " is after the last iteration (--iterations ",
            a.iterations, "): that pruning would never happen");
    for (std::size_t i = 1; i < a.prune.size(); ++i)
      check(a.prune[i] > a.prune[i - 1], "--prune must be increasing, got ", a.prune[i - 1], " then ", a.prune[i]);
  }
}

// The method's schedule from the engine's policy table, with its options (PRI's v, SMI's points and ratio).
inline ScheduleChoice schedule_of(const InversionArgs& a) {
  auto s = schedules().make(a.method);
  if (auto* p = std::get_if<Rebirth>(&s)) p->v = a.v;
  if (auto* p = std::get_if<ProgressivePrune>(&s)) p->iterations = a.prune, p->ratio = a.ratio;
  return s;
}

// The augmentation: the policies file's (with its parameters), else --augment's with its defaults.
inline AugmentationChoice augmentation_of(const InversionArgs& a) {
  return a.augmentation ? *a.augmentation : augmentations().make(a.augment);
}

// The policies the run uses, as the registry writes them (report.json's and the manifest's "policies"; a valid
// --policies file). The official preset runs its own prior, selector and augmentation (presets.hpp).
inline nlohmann::json policies_json(const InversionArgs& a, PresetForm form = PresetForm::Paper) {
  nlohmann::json j = {{"objective", policy_to_json(ClassObjective{})},
                      {"schedule", schedules().to_json(schedule_of(a))}};
  if (form == PresetForm::Official) {
    j["prior"] = policy_to_json(TVOfficial{a.tv});
    j["selector"] = policy_to_json(HighAttention{});
    j["augmentation"] = policy_to_json(JitterFlipOfficial{});
  } else {
    j["prior"] = policy_to_json(Sum<TV, L2>{TV{a.tv}, L2{a.l2}});
    j["selector"] = selectors().to_json(selectors().make(a.selector));
    j["augmentation"] = augmentations().to_json(augmentation_of(a));
  }
  return j;
}

// Reads --policies (when given) into `a`, before any long work. The file sets the policies it names; an option
// that sets the same policy is refused (say it once), as are unknown keys and any policy the registry refuses
// (its message names the policy, the key and the value). Under the official preset the prior must be tv_official
// and the selector and augmentation those the preset runs. Throws mint::Error naming --policies and the file.
inline void apply_policies_file(const Command& c, InversionArgs& a, PresetForm form = PresetForm::Paper) {
  if (a.policies.empty()) return;
  const std::string what = "--policies '" + a.policies + "'";
  const nlohmann::json j = read_json(a.policies, "--policies");
  check(j.is_object(), what, ": expected a JSON object of policies, got ", j.dump());
  const std::vector<std::pair<std::string, std::vector<const char*>>> keys = {
      {"schedule", {"--method", "--v", "--prune", "--ratio"}}, {"selector", {"--selector"}},
      {"augmentation", {"--augment"}}, {"prior", {"--tv", "--l2"}}, {"objective", {}}};
  for (const auto& [key, value] : j.items()) {
    const auto k = std::find_if(keys.begin(), keys.end(), [&](const auto& e) { return e.first == key; });
    check(k != keys.end(), what, ": unknown key '", key, "' (known: schedule, selector, augmentation, prior, "
          "objective)");
    for (const char* o : k->second)
      check(!c.given(o), o, ": ", what, " sets the ", key, "; give it in one place only");
  }
  const bool official = form == PresetForm::Official;
  try {
    if (j.contains("schedule")) {
      const auto s = schedules().from_json(j["schedule"]);
      a.method = j["schedule"]["name"].get<std::string>();
      if (const auto* p = std::get_if<Rebirth>(&s)) a.v = p->v;
      if (const auto* p = std::get_if<ProgressivePrune>(&s)) a.prune = p->iterations, a.ratio = p->ratio;
    }
    if (j.contains("objective")) (void)policy_from_json<ClassObjective>(j["objective"]);
    if (official) {
      if (j.contains("selector")) (void)policy_from_json<HighAttention>(j["selector"]);
      if (j.contains("augmentation")) {
        const auto aug = policy_from_json<JitterFlipOfficial>(j["augmentation"]);
        check(aug.flip && aug.jitter, "augmentation 'jitterflip_official': --preset official runs it with flip "
              "and jitter on");
      }
      if (j.contains("prior")) a.tv = policy_from_json<TVOfficial>(j["prior"]).weight;
    } else {
      if (j.contains("selector")) {
        (void)selectors().from_json(j["selector"]);
        a.selector = j["selector"]["name"].get<std::string>();
      }
      if (j.contains("augmentation")) {
        a.augmentation = augmentations().from_json(j["augmentation"]);
        a.augment = j["augmentation"]["name"].get<std::string>();
      }
      if (j.contains("prior")) {
        const auto prior = policy_from_json<Sum<TV, L2>>(j["prior"]);
        a.tv = std::get<0>(prior.terms).weight, a.l2 = std::get<1>(prior.terms).weight;
      }
    }
  } catch (const Error& e) {
    throw Error(what + (official ? " (--preset official)" : "") + ": " + e.what());
  }
  check(a.method != "dmi" || a.selector == "high", what, ": schedule 'dmi' never ranks patches; it would ignore "
        "selector '", a.selector, "'");
}

}  // namespace mint::cli
