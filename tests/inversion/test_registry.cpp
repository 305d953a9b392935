// Tests of mint/inversion/registry.hpp: every policy's JSON round trip, the rejection messages of from_json (they
// name the policy, the key and the value), the CLI tables, and that docs/policies.md holds the generated catalogue.
#include <fstream>
#include <iterator>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "mint/inversion/registry.hpp"

namespace registry_test {

using nlohmann::json;

// to_json -> from_json -> to_json gives the same JSON, and every parameter in it differs from the default (so the
// round trip really carried the values rather than falling back to defaults).
template <class P>
void check_round_trip(const P& p) {
  const json j = mint::policy_to_json(p);
  const json back = mint::policy_to_json(mint::policy_from_json<P>(j));
  INFO(j.dump());
  REQUIRE(back == j);
  const json def = mint::policy_to_json(P{});
  for (const auto& [key, value] : j["params"].items()) REQUIRE(value != def["params"][key]);
}

// The message of the mint::Error that from_json<P>(j) throws ("" when none).
template <class P>
std::string error_of(const json& j) {
  try {
    (void)mint::policy_from_json<P>(j);
  } catch (const mint::Error& e) {
    return e.what();
  }
  return "";
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace registry_test

using registry_test::check_round_trip;
using registry_test::error_of;
using Json = nlohmann::json;

TEST_CASE("registry: every policy round-trips through JSON with non-default parameters", "[registry]") {
  check_round_trip(mint::ProgressivePrune{{7, 9, 30}, 0.5f});
  check_round_trip(mint::Rebirth{7});
  check_round_trip(mint::Dense{});
  check_round_trip(mint::HighAttention{});
  check_round_trip(mint::LowAttention{});
  check_round_trip(mint::Random{});
  check_round_trip(mint::TopRegion{});
  check_round_trip(mint::NoAugmentation{});
  check_round_trip(mint::JitterFlip{false, false});
  mint::JitterFlipOfficial jo;
  jo.flip = false, jo.jitter = false;
  check_round_trip(jo);
  check_round_trip(mint::TV{0.5f});
  check_round_trip(mint::L2{0.25f});
  check_round_trip(mint::TVOfficial{0.5f});
  check_round_trip(mint::TVOfficialL1{0.5f});
  check_round_trip(mint::L2Official{0.5f});
  check_round_trip(mint::NoPrior{});
  mint::BNPrior bn;
  bn.weight = 0.5f, bn.first_multiplier = 3.0f;
  check_round_trip(bn);
  mint::BorrowedBNPrior borrowed;  // the CNN and the normalisations are set in code, not recorded
  borrowed.weight = 0.25f, borrowed.first_multiplier = 2.0f;
  check_round_trip(borrowed);
  check_round_trip(mint::ClassObjective{});
  check_round_trip(mint::Sum<mint::TV, mint::L2>{mint::TV{0.5f}, mint::L2{0.25f}});
}

TEST_CASE("registry: a float parameter is written as the shortest decimal that reads back as it", "[registry]") {
  // 0.3f widened to double is 0.30000001192092896; a report should say what the user typed
  const Json j = mint::policy_to_json(mint::ProgressivePrune{{50}, 0.3f});
  REQUIRE(j["params"]["ratio"].dump() == "0.3");
  REQUIRE(mint::policy_from_json<mint::ProgressivePrune>(j).ratio == 0.3f);
}

TEST_CASE("registry: from_json reads the values, and parameters left out keep their defaults", "[registry]") {
  const auto p = mint::policy_from_json<mint::ProgressivePrune>(
      Json::parse(R"({"name": "smi", "params": {"iterations": [5, 8]}})"));
  REQUIRE(p.iterations == std::vector<int>{5, 8});
  REQUIRE(p.ratio == mint::ProgressivePrune{}.ratio);
  REQUIRE(mint::policy_from_json<mint::Rebirth>(Json::parse(R"({"name": "pri"})")).v == mint::Rebirth{}.v);
  const auto s = mint::policy_from_json<mint::Sum<mint::TV, mint::L2>>(Json::parse(
      R"({"name": "sum", "params": {"terms": [{"name": "tv", "params": {"weight": 2}}, {"name": "l2"}]}})"));
  REQUIRE(std::get<0>(s.terms).weight == 2.0f);
  REQUIRE(std::get<1>(s.terms).weight == mint::L2{}.weight);
}

TEST_CASE("registry: from_json names the policy, the key and the value it refuses", "[registry]") {
  using Catch::Matchers::Contains;
  using mint::ProgressivePrune, mint::Rebirth;
  // unknown parameter, listing the known ones
  REQUIRE_THAT(error_of<ProgressivePrune>(Json::parse(R"({"name": "smi", "params": {"ratoi": 0.1}})")),
               Contains("schedule 'smi': unknown parameter 'ratoi' (known: iterations, ratio)"));
  REQUIRE_THAT(error_of<mint::HighAttention>(Json::parse(R"({"name": "high", "params": {"k": 1}})")),
               Contains("selector 'high': unknown parameter 'k' (it has none)"));
  // unknown key beside name and params
  REQUIRE_THAT(error_of<Rebirth>(Json::parse(R"({"name": "pri", "parms": {}})")),
               Contains("schedule 'pri': unknown key 'parms'"));
  // wrong types
  REQUIRE_THAT(error_of<Rebirth>(Json::parse(R"({"name": "pri", "params": {"v": "4"}})")),
               Contains("schedule 'pri': v = \"4\" must be a JSON integer"));
  REQUIRE_THAT(error_of<Rebirth>(Json::parse(R"({"name": "pri", "params": {"v": 2.5}})")),
               Contains("schedule 'pri': v = 2.5 must be a JSON integer"));
  REQUIRE_THAT(error_of<mint::JitterFlip>(Json::parse(R"({"name": "jitterflip", "params": {"flip": 1}})")),
               Contains("augmentation 'jitterflip': flip = 1 must be a JSON boolean"));
  REQUIRE_THAT(error_of<ProgressivePrune>(Json::parse(R"({"name": "smi", "params": {"iterations": 50}})")),
               Contains("schedule 'smi': iterations = 50 must be a JSON array"));
  REQUIRE_THAT(error_of<ProgressivePrune>(Json::parse(R"({"name": "smi", "params": {"iterations": [50, "x"]}})")),
               Contains("iterations = [50,\"x\"]: \"x\" is not an integer"));
  // out of range (the ratio's upper end is open: 1 would prune every patch)
  REQUIRE_THAT(error_of<ProgressivePrune>(Json::parse(R"({"name": "smi", "params": {"ratio": 1}})")),
               Contains("schedule 'smi': ratio = 1 is outside [0, 1)"));
  REQUIRE_THAT(error_of<Rebirth>(Json::parse(R"({"name": "pri", "params": {"v": 0}})")),
               Contains("schedule 'pri': v = 0 is outside [1, 1048576]"));
  REQUIRE_THAT(error_of<Rebirth>(Json::parse(R"({"name": "pri", "params": {"v": 4294967297}})")),
               Contains("v = 4294967297 is outside"));
  REQUIRE_THAT(error_of<mint::TV>(Json::parse(R"({"name": "tv", "params": {"weight": -1}})")),
               Contains("prior 'tv': weight = -1 is outside [0, 1e+06]"));
  REQUIRE_THAT(error_of<ProgressivePrune>(Json::parse(R"({"name": "smi", "params": {"iterations": [0]}})")),
               Contains("iterations = [0]: 0 is outside [1, 10000000]"));
  // a rule across the list
  REQUIRE_THAT(error_of<ProgressivePrune>(Json::parse(R"({"name": "smi", "params": {"iterations": [100, 50]}})")),
               Contains("schedule 'smi': iterations must be increasing, got 100 then 50"));
  // the wrong policy, or no object at all
  REQUIRE_THAT(error_of<Rebirth>(Json::parse(R"({"name": "smi"})")), Contains("schedule: expected 'pri', got 'smi'"));
  REQUIRE_THAT(error_of<Rebirth>(Json::parse(R"([1])")), Contains("schedule: expected a JSON object"));
  REQUIRE_THAT(error_of<Rebirth>(Json::parse(R"({"params": {}})")), Contains("\"name\" must be a string"));
  using TvL2 = mint::Sum<mint::TV, mint::L2>;
  REQUIRE_THAT(error_of<TvL2>(Json::parse(R"({"name": "sum", "params": {"terms": [{"name": "tv"}]}})")),
               Contains("prior 'sum': terms = [{\"name\":\"tv\"}] must be an array of 2 priors"));
  REQUIRE_THAT(error_of<TvL2>(Json::parse(R"({"name": "sum", "params": {"terms": [{"name": "l2"}, {"name": "tv"}]}})")),
               Contains("prior: expected 'tv', got 'l2'"));
}

TEST_CASE("registry: the CLI tables are the registered names and read the same JSON", "[registry]") {
  REQUIRE(mint::schedules().names() == std::vector<std::string>{"dmi", "smi", "pri"});
  REQUIRE(mint::selectors().names() == std::vector<std::string>{"high", "low", "random", "top"});
  REQUIRE(mint::augmentations().names() == std::vector<std::string>{"none", "jitterflip"});
  const auto s = mint::schedules().from_json(Json::parse(R"({"name": "pri", "params": {"v": 3}})"));
  REQUIRE(std::get<mint::Rebirth>(s).v == 3);
  REQUIRE(mint::schedules().to_json(s) == mint::policy_to_json(mint::Rebirth{3}));
  const auto a = mint::augmentations().from_json(Json::parse(R"({"name": "jitterflip", "params": {"flip": false}})"));
  REQUIRE_FALSE(std::get<mint::JitterFlip>(a).flip);
  REQUIRE_THROWS_WITH(mint::selectors().from_json(Json::parse(R"({"name": "middle"})")),
                      Catch::Matchers::Contains("unknown selector 'middle' (known: high, low, random, top)"));
  REQUIRE_THROWS_WITH(mint::schedules().from_json(Json::parse(R"("pri")")),
                      Catch::Matchers::Contains("method: expected {\"name\""));
  const std::string help = mint::selectors().help();
  REQUIRE_THAT(help, Catch::Matchers::Contains(std::string("low: ") + mint::PolicyInfo<mint::LowAttention>::summary));
}

TEST_CASE("registry: the presets' JSON is what apply_preset sets", "[registry]") {
  const auto official = mint::preset_to_json(mint::PresetForm::Official);
  mint::InversionOptions o;
  mint::apply_preset(o, mint::PresetForm::Official, mint::Normalization{});
  REQUIRE(official["name"] == "official");
  REQUIRE(official["params"]["step_whole_canvas"] == o.step_whole_canvas);
  REQUIRE(official["params"]["clip_initial"] == o.clip_initial);
  REQUIRE(official["policies"]["prior"] == mint::policy_to_json(mint::TVOfficial{}));
  REQUIRE(mint::preset_to_json(mint::PresetForm::Paper)["policies"].empty());
}

TEST_CASE("registry: docs/policies.md holds the generated catalogue", "[registry]") {
  // The page's catalogue part sits between two markers; the rest of the page (e.g. "Writing a policy") is free text.
  const std::string page = registry_test::read_text(MINT_FIXTURE_DIR "/../../docs/policies.md");
  const std::string begin = "<!-- catalogue:begin -->\n", end = "<!-- catalogue:end -->";
  const auto b = page.find(begin), e = page.find(end);
  REQUIRE(b != std::string::npos);
  REQUIRE(e != std::string::npos);
  INFO("regenerate the part between the markers with `mint-policies --markdown`");
  REQUIRE(page.substr(b + begin.size(), e - b - begin.size()) == mint::policy_catalogue_markdown());
}
