// mint/inversion/registry.hpp -- the one table of the inversion policies (DESIGN.md "A registry names every
// policy"; tiny-cuda-nn's create_encoding(json) is the model). For every policy it holds a name, a one-line
// summary, the source it follows (paper equation or reference-code file:line) and its parameters (name, JSON type,
// default, range, meaning, source), kept outside the policy structs as PolicyInfo<P> specialisations. From it come:
//   - policy_to_json(p)          {"name": ..., "params": {...}}, what report.json and manifests record;
//   - policy_from_json<P>(j)     the inverse, refusing unknown keys, wrong types and out-of-range values with a
//                                message naming the policy, the key and the value;
//   - PolicyTable<Variant>       name -> policy inside a std::variant, for the CLIs (--method, --selector, ...),
//                                their --help (help()) and the same JSON (to_json / from_json);
//   - policy_catalogue_markdown() the catalogue of docs/policies.md (tests/inversion/test_registry.cpp checks the
//                                page holds exactly this text, so the two cannot drift).
// Adding a policy is one PolicyInfo specialisation (and a table entry if a CLI offers it).
#pragma once

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "mint/core/error.hpp"
#include "mint/inversion/augmentation.hpp"
#include "mint/inversion/bn_prior.hpp"
#include "mint/inversion/objectives.hpp"
#include "mint/inversion/presets.hpp"
#include "mint/inversion/regularizers.hpp"
#include "mint/inversion/schedules.hpp"
#include "mint/inversion/selectors.hpp"

namespace mint {

// One parameter of policy P. `set` throws mint::Error naming the key and the value (the caller adds the policy).
template <class P>
struct PolicyParam {
  std::string name, type, range, meaning, source;
  std::function<nlohmann::json(const P&)> get;
  std::function<void(P&, const nlohmann::json&)> set;
};

// PolicyInfo<P>: kind ("schedule", ...), name, summary, source, params() and check(p) (what no single parameter
// can say, e.g. an order across a list). Specialised below for every policy; a policy without one is not in the
// registry.
template <class P>
struct PolicyInfo;

template <class P>
concept RegisteredPolicy = requires(const P& p) {
  { PolicyInfo<P>::kind } -> std::convertible_to<const char*>;
  { PolicyInfo<P>::name } -> std::convertible_to<const char*>;
  PolicyInfo<P>::params();
  PolicyInfo<P>::check(p);
};

namespace registry_detail {

inline std::string show(const nlohmann::json& v) { return v.dump(); }

// A parameter's value as JSON; a float as the shortest decimal that reads back as it (0.3, not 0.30000001...).
template <class T>
nlohmann::json value_json(T v) {
  if constexpr (std::is_same_v<T, float>) {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::strtod(std::string(buf, r.ptr).c_str(), nullptr);
  } else {
    return v;
  }
}

template <class T>
std::string bound(T v) {
  std::ostringstream s;
  s << +v;
  return s.str();
}

// A number parameter in [lo, hi] (hi excluded when hi_open).
template <class P, class T>
PolicyParam<P> number(const char* name, T P::*member, T lo, T hi, bool hi_open, const char* meaning,
                      const char* source) {
  static_assert(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>);
  PolicyParam<P> q;
  q.name = name, q.meaning = meaning, q.source = source;
  q.type = std::is_integral_v<T> ? "integer" : "number";
  q.range = "[" + bound(lo) + ", " + bound(hi) + (hi_open ? ")" : "]");
  q.get = [member](const P& p) { return value_json(p.*member); };
  q.set = [member, lo, hi, hi_open, name, range = q.range, type = q.type](P& p, const nlohmann::json& v) {
    const bool ok_type = std::is_integral_v<T> ? v.is_number_integer() : v.is_number();
    check(ok_type, name, " = ", show(v), " must be a JSON ", type);
    const double d = v.get<double>();
    check(std::isfinite(d) && d >= static_cast<double>(lo) && (hi_open ? d < static_cast<double>(hi)
                                                                       : d <= static_cast<double>(hi)),
          name, " = ", show(v), " is outside ", range);
    if constexpr (std::is_integral_v<T>) {
      check(v.get<long long>() == static_cast<long long>(v.get<T>()), name, " = ", show(v), " is outside ", range);
      p.*member = v.get<T>();
    } else {
      p.*member = static_cast<T>(d);
    }
  };
  return q;
}

template <class P>
PolicyParam<P> boolean(const char* name, bool P::*member, const char* meaning, const char* source) {
  PolicyParam<P> q;
  q.name = name, q.meaning = meaning, q.source = source, q.type = "boolean", q.range = "true, false";
  q.get = [member](const P& p) { return nlohmann::json(p.*member); };
  q.set = [member, name](P& p, const nlohmann::json& v) {
    check(v.is_boolean(), name, " = ", show(v), " must be a JSON boolean");
    p.*member = v.get<bool>();
  };
  return q;
}

// A list of whole numbers, each in [lo, hi].
template <class P>
PolicyParam<P> integers(const char* name, std::vector<int> P::*member, int lo, int hi, const char* meaning,
                        const char* source) {
  PolicyParam<P> q;
  q.name = name, q.meaning = meaning, q.source = source, q.type = "integer list";
  q.range = "each in [" + bound(lo) + ", " + bound(hi) + "]";
  q.get = [member](const P& p) { return nlohmann::json(p.*member); };
  q.set = [member, lo, hi, name](P& p, const nlohmann::json& v) {
    check(v.is_array(), name, " = ", show(v), " must be a JSON array of integers");
    std::vector<int> out;
    for (const auto& e : v) {
      check(e.is_number_integer(), name, " = ", show(v), ": ", show(e), " is not an integer");
      const auto x = e.get<long long>();
      check(x >= lo && x <= hi, name, " = ", show(v), ": ", show(e), " is outside [", lo, ", ", hi, "]");
      out.push_back(static_cast<int>(x));
    }
    p.*member = std::move(out);
  };
  return q;
}

// No cross-parameter rule.
template <class P>
void no_rule(const P&) {}

}  // namespace registry_detail

// ---- objectives -------------------------------------------------------------------------------------------
template <>
struct PolicyInfo<ClassObjective> {
  static constexpr const char* kind = "objective";
  static constexpr const char* name = "class";
  static constexpr const char* summary = "cross-entropy of the logits to the target labels, batch mean";
  static constexpr const char* source = "SMI Eq. 1 (L_cls); Egg-Hu/SMI synthesis/smi.py:205 (F.cross_entropy)";
  static std::vector<PolicyParam<ClassObjective>> params() { return {}; }
  static void check(const ClassObjective&) {}
};

// ---- priors (Regularizer) -----------------------------------------------------------------------------------
template <>
struct PolicyInfo<TV> {
  static constexpr const char* kind = "prior";
  static constexpr const char* name = "tv";
  static constexpr const char* summary = "total variation over four neighbour directions, L2 across channels, "
                                         "batch mean";
  static constexpr const char* source = "SMI Eq. 2";
  static std::vector<PolicyParam<TV>> params() {
    return {registry_detail::number("weight", &TV::weight, 0.0f, 1e6f, false, "weight of the prior in the loss",
                                    "Egg-Hu/SMI test_kt.py:137 (tv2 = 0.0001)")};
  }
  static void check(const TV&) {}
};

template <>
struct PolicyInfo<L2> {
  static constexpr const char* kind = "prior";
  static constexpr const char* name = "l2";
  static constexpr const char* summary = "squared L2 norm of each image, batch mean";
  static constexpr const char* source = "DeepInversion's l2 prior, squared (NVlabs/DeepInversion "
                                        "deepinversion.py:318 takes the unsquared norm)";
  static std::vector<PolicyParam<L2>> params() {
    return {registry_detail::number("weight", &L2::weight, 0.0f, 1e6f, false, "weight of the prior in the loss",
                                    "NVlabs/DeepInversion imagenet_inversion.py:204 (l2 = 1e-5)")};
  }
  static void check(const L2&) {}
};

template <>
struct PolicyInfo<TVOfficial> {
  static constexpr const char* kind = "prior";
  static constexpr const char* name = "tv_official";
  static constexpr const char* summary = "sum of the four directions' Frobenius norms over the whole batch (CPU)";
  static constexpr const char* source = "Egg-Hu/SMI synthesis/smi.py:45-51 (get_image_prior_losses, loss_var_l2)";
  static std::vector<PolicyParam<TVOfficial>> params() {
    return {registry_detail::number("weight", &TVOfficial::weight, 0.0f, 1e6f, false,
                                    "weight of the prior in the loss (smi.py's tv2)",
                                    "Egg-Hu/SMI test_kt.py:137 (tv2 = 0.0001)")};
  }
  static void check(const TVOfficial&) {}
};

template <>
struct PolicyInfo<TVOfficialL1> {
  static constexpr const char* kind = "prior";
  static constexpr const char* name = "tv_official_l1";
  static constexpr const char* summary = "sum of the four directions' mean absolute difference over the whole "
                                         "batch (CPU)";
  static constexpr const char* source = "Egg-Hu/SMI synthesis/smi.py:52-54 (get_image_prior_losses, loss_var_l1)";
  static std::vector<PolicyParam<TVOfficialL1>> params() {
    return {registry_detail::number("weight", &TVOfficialL1::weight, 0.0f, 1e6f, false,
                                    "weight of the prior in the loss (smi.py's tv1)",
                                    "Egg-Hu/SMI test_kt.py:136 uses tv1 = 0")};
  }
  static void check(const TVOfficialL1&) {}
};

template <>
struct PolicyInfo<L2Official> {
  static constexpr const char* kind = "prior";
  static constexpr const char* name = "l2_official";
  static constexpr const char* summary = "unsquared L2 norm of the whole batch tensor (CPU)";
  static constexpr const char* source = "Egg-Hu/SMI synthesis/smi.py:212 (loss_l2 = torch.norm(inputs, 2))";
  static std::vector<PolicyParam<L2Official>> params() {
    return {registry_detail::number("weight", &L2Official::weight, 0.0f, 1e6f, false,
                                    "weight of the prior in the loss (smi.py's l2)",
                                    "Egg-Hu/SMI test_kt.py:138 uses l2 = 0")};
  }
  static void check(const L2Official&) {}
};

template <>
struct PolicyInfo<NoPrior> {
  static constexpr const char* kind = "prior";
  static constexpr const char* name = "none";
  static constexpr const char* summary = "no image prior";
  static constexpr const char* source = "-";
  static std::vector<PolicyParam<NoPrior>> params() { return {}; }
  static void check(const NoPrior&) {}
};

// The model pointer is not a parameter: code sets it (BNPrior{.model = &resnet}); from_json leaves it null.
template <>
struct PolicyInfo<BNPrior> {
  static constexpr const char* kind = "prior";
  static constexpr const char* name = "bn";
  static constexpr const char* summary = "BatchNorm-statistics prior of a CNN: norms of the batch mean and "
                                         "variance minus the running ones, per BN layer (model set in code)";
  static constexpr const char* source = "GradViT Eq. 4; NVlabs/DeepInversion deepinversion.py:45 (r_feature)";
  static std::vector<PolicyParam<BNPrior>> params() {
    return {registry_detail::number("weight", &BNPrior::weight, 0.0f, 1e6f, false, "weight of the whole prior",
                                    "NVlabs/DeepInversion deepinversion.py:141 (bn_reg_scale = r_feature)"),
            registry_detail::number("first_multiplier", &BNPrior::first_multiplier, 0.0f, 1e6f, false,
                                    "extra factor m_1 on the first BN layer",
                                    "NVlabs/DeepInversion deepinversion.py:285; imagenet_inversion.py:200 (10)")};
  }
  static void check(const BNPrior&) {}
};

// The CNN pointer and the two normalisations are not parameters: code sets them; from_json leaves them unset.
template <>
struct PolicyInfo<BorrowedBNPrior> {
  static constexpr const char* kind = "prior";
  static constexpr const char* name = "bn_borrowed";
  static constexpr const char* summary = "the bn prior of a borrowed CNN (in eval mode) run on the images themselves, "
                                         "for a model without BatchNorm such as a ViT (CNN set in code)";
  static constexpr const char* source = "Egg-Hu/SMI synthesis/smi.py:127-158, 198-203 (bn, bnsource, loss_bn)";
  static std::vector<PolicyParam<BorrowedBNPrior>> params() {
    return {registry_detail::number("weight", &BorrowedBNPrior::weight, 0.0f, 1e6f, false,
                                    "weight of the whole prior (0: off)",
                                    "Egg-Hu/SMI synthesis/smi.py:213 (self.bn * loss_bn); test_kt.py:134 (bn = 0)"),
            registry_detail::number("first_multiplier", &BorrowedBNPrior::first_multiplier, 0.0f, 1e6f, false,
                                    "extra factor m_1 on the first BN layer",
                                    "Egg-Hu/SMI synthesis/smi.py:200 (rescale = [10.0] + ...)")};
  }
  static void check(const BorrowedBNPrior&) {}
};

// ---- selectors (PatchSelector) ------------------------------------------------------------------------------
template <>
struct PolicyInfo<HighAttention> {
  static constexpr const char* kind = "selector";
  static constexpr const char* name = "high";
  static constexpr const char* summary = "highest last-block CLS attention first";
  static constexpr const char* source = "SMI's semantic patch identification; Egg-Hu/SMI synthesis/smi.py:27 "
                                        "(get_top_k_relative_indices_including_first)";
  static std::vector<PolicyParam<HighAttention>> params() { return {}; }
  static void check(const HighAttention&) {}
};

template <>
struct PolicyInfo<LowAttention> {
  static constexpr const char* kind = "selector";
  static constexpr const char* name = "low";
  static constexpr const char* summary = "lowest last-block CLS attention first";
  static constexpr const char* source = "PRI's ablation (least attended patches detached first)";
  static std::vector<PolicyParam<LowAttention>> params() { return {}; }
  static void check(const LowAttention&) {}
};

template <>
struct PolicyInfo<Random> {
  static constexpr const char* kind = "selector";
  static constexpr const char* name = "random";
  static constexpr const char* summary = "a seeded random permutation of (seed, image, iteration)";
  static constexpr const char* source = "PRI's random-selection baseline";
  static std::vector<PolicyParam<Random>> params() { return {}; }
  static void check(const Random&) {}
};

template <>
struct PolicyInfo<TopRegion> {
  static constexpr const char* kind = "selector";
  static constexpr const char* name = "top";
  static constexpr const char* summary = "raster order: patches from the top of the image first";
  static constexpr const char* source = "PRI's fixed top-region baseline";
  static std::vector<PolicyParam<TopRegion>> params() { return {}; }
  static void check(const TopRegion&) {}
};

// ---- schedules ----------------------------------------------------------------------------------------------
template <>
struct PolicyInfo<Dense> {
  static constexpr const char* kind = "schedule";
  static constexpr const char* name = "dmi";
  static constexpr const char* summary = "every patch inverted for all T iterations (DMI, DeepInversion)";
  static constexpr const char* source = "DeepInversion's dense inversion; NVlabs/DeepInversion "
                                        "deepinversion.py:179 (get_images)";
  static std::vector<PolicyParam<Dense>> params() { return {}; }
  static void check(const Dense&) {}
};

template <>
struct PolicyInfo<ProgressivePrune> {
  static constexpr const char* kind = "schedule";
  static constexpr const char* name = "smi";
  static constexpr const char* summary = "after each listed iteration prune the lowest-ranked share `ratio` of "
                                         "the active patches";
  static constexpr const char* source = "SMI Sec. 4.2 (progressive early stopping); Egg-Hu/SMI "
                                        "synthesis/smi.py:182-185";
  static std::vector<PolicyParam<ProgressivePrune>> params() {
    return {registry_detail::integers("iterations", &ProgressivePrune::iterations, 1, 10'000'000,
                                      "iterations after which to prune, increasing",
                                      "the SMI paper's setting 50, 100, 200, 300; Egg-Hu/SMI test_kt.py:33 "
                                      "(--prune_it)"),
            registry_detail::number("ratio", &ProgressivePrune::ratio, 0.0f, 1.0f, true,
                                    "share of the active patches pruned at each point",
                                    "the SMI paper's setting 0.3; Egg-Hu/SMI test_kt.py:35 (--prune_ratio)")};
  }
  static void check(const ProgressivePrune& p) {
    for (std::size_t i = 1; i < p.iterations.size(); ++i)
      mint::check(p.iterations[i] > p.iterations[i - 1], "iterations must be increasing, got ", p.iterations[i - 1],
                  " then ", p.iterations[i]);
  }
};

template <>
struct PolicyInfo<Rebirth> {
  static constexpr const char* kind = "schedule";
  static constexpr const char* name = "pri";
  static constexpr const char* summary = "every floor(T / v) iterations detach the top-ranked floor(N / v) "
                                         "active patches into a stored image: v images per trajectory";
  static constexpr const char* source = "PRI Algorithm 1 (Patch Rebirth)";
  static std::vector<PolicyParam<Rebirth>> params() {
    return {registry_detail::number("v", &Rebirth::v, 1, 1 << 20, false,
                                    "images per trajectory (at most the model's patch count)", "PRI Algorithm 1")};
  }
  static void check(const Rebirth&) {}
};

// ---- augmentations ------------------------------------------------------------------------------------------
template <>
struct PolicyInfo<NoAugmentation> {
  static constexpr const char* kind = "augmentation";
  static constexpr const char* name = "none";
  static constexpr const char* summary = "the model sees the canvas as it is";
  static constexpr const char* source = "-";
  static std::vector<PolicyParam<NoAugmentation>> params() { return {}; }
  static void check(const NoAugmentation&) {}
};

template <>
struct PolicyInfo<JitterFlip> {
  static constexpr const char* kind = "augmentation";
  static constexpr const char* name = "jitterflip";
  static constexpr const char* summary = "per image: a roll by whole patches (at most H/8, at least one patch) "
                                         "and a horizontal flip";
  static constexpr const char* source = "mint's patch-aligned form of NVlabs/DeepInversion deepinversion.py:"
                                        "262-269 (docs/inversion.md)";
  static std::vector<PolicyParam<JitterFlip>> params() {
    return {registry_detail::boolean("flip", &JitterFlip::flip, "random horizontal flip (probability 1/2)",
                                     "NVlabs/DeepInversion deepinversion.py:267-269 (do_flip)"),
            registry_detail::boolean("jitter", &JitterFlip::jitter, "random roll by whole patches",
                                     "NVlabs/DeepInversion deepinversion.py:262-264")};
  }
  static void check(const JitterFlip&) {}
};

// `draws` (a test hook that feeds another implementation's rolls) is not a parameter.
template <>
struct PolicyInfo<JitterFlipOfficial> {
  static constexpr const char* kind = "augmentation";
  static constexpr const char* name = "jitterflip_official";
  static constexpr const char* summary = "one draw per batch: a roll by up to int(H/8) pixels, then a flip; the "
                                         "keep set follows by whole patches; none around schedule events";
  static constexpr const char* source = "Egg-Hu/SMI synthesis/smi.py:66-90 (jitter_and_flip, "
                                        "jitter_and_flip_index), :177-196";
  static std::vector<PolicyParam<JitterFlipOfficial>> params() {
    return {registry_detail::boolean("flip", &JitterFlipOfficial::flip, "horizontal flip (probability 1/2)",
                                     "Egg-Hu/SMI synthesis/smi.py:73-75"),
            registry_detail::boolean("jitter", &JitterFlipOfficial::jitter, "roll by up to int(H/8) pixels",
                                     "Egg-Hu/SMI synthesis/smi.py:67-71")};
  }
  static void check(const JitterFlipOfficial&) {}
};

// ---- to_json / from_json --------------------------------------------------------------------------------------

// ensures: {"name": PolicyInfo<P>::name, "params": {every parameter: its value}}, floats as their shortest decimal;
//          policy_from_json<P> of it gives back p's parameters.
template <RegisteredPolicy P>
nlohmann::json policy_to_json(const P& p) {
  nlohmann::json params = nlohmann::json::object();
  for (const auto& q : PolicyInfo<P>::params()) params[q.name] = q.get(p);
  return {{"name", PolicyInfo<P>::name}, {"params", params}};
}

namespace registry_detail {
// The "params" object of `j` after checking that `j` is {"name": expected, "params": {...}} (params optional).
inline nlohmann::json params_of(const nlohmann::json& j, const char* kind, const char* expected) {
  check(j.is_object(), kind, ": expected a JSON object {\"name\": ..., \"params\": {...}}, got ", show(j));
  for (const auto& [key, value] : j.items())
    check(key == "name" || key == "params", kind, " '", j.value("name", std::string("?")), "': unknown key '", key,
          "' (known: name, params)");
  check(j.contains("name") && j["name"].is_string(), kind, ": \"name\" must be a string, got ",
        j.contains("name") ? show(j["name"]) : std::string("nothing"));
  const auto name = j["name"].get<std::string>();
  check(name == expected, kind, ": expected '", expected, "', got '", name, "'");
  if (!j.contains("params")) return nlohmann::json::object();
  check(j["params"].is_object(), kind, " '", name, "': \"params\" must be an object, got ", show(j["params"]));
  return j["params"];
}
}  // namespace registry_detail

// requires: j is policy_to_json's form for P ("params" optional).
// ensures:  the policy P that `j` describes; parameters not given keep their defaults.
// Throws mint::Error "<kind> '<name>': <key> = <value> ..." for an unknown key, a wrong type, a value out of range,
// or a rule across parameters; a wrong name is "<kind>: expected '<name>', got '<other>'".
template <RegisteredPolicy P>
P policy_from_json(const nlohmann::json& j) {
  using I = PolicyInfo<P>;
  const nlohmann::json params = registry_detail::params_of(j, I::kind, I::name);
  const auto table = I::params();
  P p{};
  for (const auto& [key, value] : params.items()) {
    const PolicyParam<P>* q = nullptr;
    std::string known;
    for (const auto& c : table) {
      if (c.name == key) q = &c;
      known += (known.empty() ? "" : ", ") + c.name;
    }
    check(q != nullptr, I::kind, " '", I::name, "': unknown parameter '", key, "' (",
          known.empty() ? std::string("it has none") : "known: " + known, ")");
    try {
      q->set(p, value);
    } catch (const Error& e) {
      throw Error(std::string(I::kind) + " '" + I::name + "': " + e.what());
    }
  }
  try {
    I::check(p);
  } catch (const Error& e) {
    throw Error(std::string(I::kind) + " '" + I::name + "': " + e.what());
  }
  return p;
}

// Sum<Rs...>: {"name": "sum", "params": {"terms": [each term's JSON, in order]}}.
template <RegisteredPolicy... Rs>
nlohmann::json policy_to_json(const Sum<Rs...>& s) {
  nlohmann::json terms = nlohmann::json::array();
  std::apply([&](const auto&... r) { (terms.push_back(policy_to_json(r)), ...); }, s.terms);
  return {{"name", "sum"}, {"params", {{"terms", terms}}}};
}

template <class S>
struct is_sum : std::false_type {};
template <class... Rs>
struct is_sum<Sum<Rs...>> : std::true_type {};

// The Sum<Rs...> that `j` describes: exactly sizeof...(Rs) terms, the k-th one naming Rs_k.
template <class S>
  requires is_sum<S>::value
S policy_from_json(const nlohmann::json& j) {
  const nlohmann::json params = registry_detail::params_of(j, "prior", "sum");
  for (const auto& [key, value] : params.items())
    check(key == "terms", "prior 'sum': unknown parameter '", key, "' (known: terms)");
  S s;
  constexpr std::size_t n = std::tuple_size_v<decltype(s.terms)>;
  if (!params.contains("terms")) return s;
  const auto& terms = params["terms"];
  check(terms.is_array() && terms.size() == n, "prior 'sum': terms = ", registry_detail::show(terms),
        " must be an array of ", n, " priors");
  std::size_t k = 0;
  std::apply([&](auto&... r) { ((r = policy_from_json<std::decay_t<decltype(r)>>(terms[k++])), ...); }, s.terms);
  return s;
}

// ---- tables ---------------------------------------------------------------------------------------------------

// The policies of one kind a CLI offers, by name (`kind` is how messages call it: "selector", ...).
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
    throw Error("unknown " + kind + " '" + name + "' (known: " + known() + ")");
  }
  // "name: summary; name: summary" for --help.
  [[nodiscard]] std::string help() const {
    std::string out;
    for (const auto& e : entries)
      std::visit([&](const auto& p) {
        out += (out.empty() ? "" : "; ") + e.first + ": " + PolicyInfo<std::decay_t<decltype(p)>>::summary;
      }, e.second);
    return out;
  }
  [[nodiscard]] nlohmann::json to_json(const Variant& v) const {
    return std::visit([](const auto& p) { return policy_to_json(p); }, v);
  }
  // The policy `j` describes ({"name": one of names(), "params": {...}}); errors as policy_from_json's.
  [[nodiscard]] Variant from_json(const nlohmann::json& j) const {
    check(j.is_object() && j.contains("name") && j["name"].is_string(), kind,
          ": expected {\"name\": ..., \"params\": {...}}, got ", j.dump());
    const Variant base = make(j["name"].get<std::string>());
    return std::visit([&](const auto& p) { return Variant{policy_from_json<std::decay_t<decltype(p)>>(j)}; }, base);
  }

 private:
  [[nodiscard]] std::string known() const {
    std::string k;
    for (const auto& e : entries) k += (k.empty() ? "" : ", ") + e.first;
    return k;
  }
};

namespace registry_detail {
// The table of the variant's alternatives under their registered names.
template <class... Ps>
PolicyTable<std::variant<Ps...>> table_of(std::string kind) {
  return {std::move(kind), {{PolicyInfo<Ps>::name, std::variant<Ps...>{Ps{}}}...}};
}
}  // namespace registry_detail

// The schedules by method name: DMI (dense), SMI (progressive pruning), PRI (patch rebirth).
using ScheduleChoice = std::variant<Dense, ProgressivePrune, Rebirth>;
inline const PolicyTable<ScheduleChoice>& schedules() {
  static const auto t = registry_detail::table_of<Dense, ProgressivePrune, Rebirth>("method");
  return t;
}

using SelectorChoice = std::variant<HighAttention, LowAttention, Random, TopRegion>;
inline const PolicyTable<SelectorChoice>& selectors() {
  static const auto t = registry_detail::table_of<HighAttention, LowAttention, Random, TopRegion>("selector");
  return t;
}

// The paper-form augmentations (JitterFlipOfficial runs only inside the official presets).
using AugmentationChoice = std::variant<NoAugmentation, JitterFlip>;
inline const PolicyTable<AugmentationChoice>& augmentations() {
  static const auto t = registry_detail::table_of<NoAugmentation, JitterFlip>("augmentation");
  return t;
}

// ---- presets ----------------------------------------------------------------------------------------------------

// What a preset fixes (presets.hpp apply_preset, read back from the options it sets, not restated here) and the
// policies it runs besides the schedule: {"name": "paper"|"official", "params": {...}, "policies": {...}}.
inline nlohmann::json preset_to_json(PresetForm form) {
  InversionOptions o;
  apply_preset(o, form, Normalization{});
  const char* kept = o.kept_image == KeptImage::Last ? "last" : o.kept_image == KeptImage::Best ? "best"
                                                                                                 : "best_after_step";
  const InversionOptions whole = preset_options(form, Normalization{});
  using registry_detail::value_json;
  nlohmann::json params = {{"beta1", value_json(o.beta1)}, {"beta2", value_json(o.beta2)},
                           {"eps", value_json(o.eps)}, {"clip_initial", o.clip_initial},
                           {"step_whole_canvas", o.step_whole_canvas}, {"kept_image", kept},
                           {"iterations", whole.iterations}, {"lr", value_json(whole.lr)}};
  nlohmann::json policies = nlohmann::json::object();
  if (form == PresetForm::Official)
    policies = {{"objective", policy_to_json(ClassObjective{})}, {"prior", policy_to_json(TVOfficial{})},
                {"selector", policy_to_json(HighAttention{})}, {"augmentation", policy_to_json(JitterFlipOfficial{})}};
  return {{"name", preset_name(form)}, {"params", params}, {"policies", policies}};
}

// ---- catalogue --------------------------------------------------------------------------------------------------

namespace registry_detail {
inline std::string cell(std::string s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

template <RegisteredPolicy P>
void catalogue_row(std::string& md) {
  using I = PolicyInfo<P>;
  md += "### `" + std::string(I::name) + "` (" + cell(I::kind) + ")\n\n";
  std::string summary = I::summary;
  if (!summary.empty() && summary[0] >= 'a' && summary[0] <= 'z') summary[0] = static_cast<char>(summary[0] - 32);
  md += summary + ". Source: " + I::source + ".\n\n";
  const auto ps = I::params();
  if (ps.empty()) {
    md += "No parameters.\n\n";
    return;
  }
  md += "| parameter | type | default | range | meaning | source |\n|---|---|---|---|---|---|\n";
  const P def{};
  for (const auto& q : ps)
    md += "| `" + q.name + "` | " + q.type + " | `" + q.get(def).dump() + "` | " + cell(q.range) + " | " +
          cell(q.meaning) + " | " + cell(q.source) + " |\n";
  md += "\n";
}

template <class... Ps>
void catalogue_section(std::string& md, const std::string& title, const std::string& intro) {
  md += "## " + title + "\n\n" + intro + "\n\n";
  (catalogue_row<Ps>(md), ...);
}
}  // namespace registry_detail

// The catalogue sections of docs/policies.md: every registered policy with its parameters, defaults and sources,
// the Sum combinator and the presets. ensures: the same text on every call (no addresses, no times).
inline std::string policy_catalogue_markdown() {
  using namespace registry_detail;
  std::string md;
  md += "<!-- generated by policy_catalogue_markdown() (include/mint/inversion/registry.hpp): "
        "regenerate with `mint-policies --markdown` -->\n\n";
  md += "Every policy is written to report.json and read from a policies file as `{\"name\": ..., \"params\": "
        "{...}}`; a parameter left out keeps its default, an unknown key, a wrong type or a value out of range is "
        "an error naming the policy, the key and the value.\n\n";
  catalogue_section<ProgressivePrune, Rebirth, Dense>(
      md, "Schedules", "When patches leave the inversion (`--method`; the `schedule` key of a policies file).");
  catalogue_section<HighAttention, LowAttention, Random, TopRegion>(
      md, "Selectors", "How the active patches are ranked, most important first (`--selector`).");
  catalogue_section<NoAugmentation, JitterFlip, JitterFlipOfficial>(
      md, "Augmentations", "Per-iteration transforms of what the model sees (`--augment`; `jitterflip_official` "
      "only inside the official presets).");
  catalogue_section<TV, L2, TVOfficial, TVOfficialL1, L2Official, BNPrior, BorrowedBNPrior, NoPrior>(
      md, "Priors", "Image priors (Regularizer policies) added to the loss with their weight.");
  md += "### `sum` (prior)\n\nThe sum of several priors, each with its own weight: `Sum<TV, L2>` is written "
        "`{\"name\": \"sum\", \"params\": {\"terms\": [" +
        policy_to_json(TV{}).dump() + ", " + policy_to_json(L2{}).dump() +
        "]}}`, the terms in the type's order. Source: the weighted loss of Egg-Hu/SMI "
        "synthesis/smi.py:213.\n\n";
  catalogue_section<ClassObjective>(md, "Objectives", "What the inverted images must achieve.");
  md += "## Presets\n\n`--preset` fixes the optimiser and, for `official`, the policies besides the schedule "
        "(`DMIOfficial`, `SMIOfficial`, `PRIOfficial` in include/mint/inversion/presets.hpp). Source: Egg-Hu/SMI "
        "synthesis/smi.py:170 (Adam, betas 0.5, 0.99), :37-43 (clip_images), test_kt.py:130-131 (T, lr).\n\n";
  md += "| preset | settings | policies |\n|---|---|---|\n";
  for (PresetForm f : {PresetForm::Paper, PresetForm::Official}) {
    const auto j = preset_to_json(f);
    md += "| `" + j["name"].get<std::string>() + "` | `" + cell(j["params"].dump()) + "` | " +
          (j["policies"].empty() ? std::string("the command line's") : "`" + cell(j["policies"].dump()) + "`") +
          " |\n";
  }
  md += "\n";
  return md;
}

}  // namespace mint
