// mint/models/model_source.hpp: a DeiT-Tiny-shaped model (width 48) written by Debian's PyTorch as safetensors,
// torch.save(state_dict), torch.save({"model": F16 state dict}) and a timm hub folder (BF16 pytorch_model.bin +
// config.json) loads from each and gives PyTorch's logits; every setting reports where it came from; overrides
// win; an ambiguous table guess and contradictions between config and weights are errors.
#include "test_util.hpp"

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "mint/core/rng.hpp"
#include "mint/models/model_source.hpp"

using namespace mint;

namespace model_source_test {

std::string fixture(const std::string& name) { return std::string(MINT_FIXTURE_DIR) + "/pytorch/" + name; }

const io::SafetensorsFile& expected() {
  static const auto f = io::load_safetensors(fixture("expected.safetensors"));
  return f;
}

// The fixture's two images: Philox seed 2027, stream 0, uniform in [-1, 1] (make_pytorch_fixtures.py).
Tensor<> images() {
  Tensor<> x(Shape{2, 3, 224, 224});
  fill_uniform(x, 2027, 0, -1.0f, 1.0f);
  return x;
}

// The overrides a user passes for a bare state dict: its head count and ImageNet's normalisation.
ModelOverrides imagenet(int heads = 3) {
  ModelOverrides ov;
  ov.heads = heads;
  ov.mean = {0.485f, 0.456f, 0.406f};
  ov.std = {0.229f, 0.224f, 0.225f};
  return ov;
}

std::string open_error(const std::string& path, const ModelOverrides& ov = {}) {
  try {
    (void)open_model(path, ov);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void write_json(const std::string& path, const nlohmann::json& j) { std::ofstream(path) << j.dump(2); }

nlohmann::json hub_config() {
  std::ifstream in(fixture("hub/config.json"));
  return nlohmann::json::parse(in);
}

// A scratch folder removed at the end of the test.
struct TempDir {
  testing::TempFile name{"_dir"};
  TempDir() { std::filesystem::create_directories(name.path); }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(name.path, ec);
  }
  [[nodiscard]] std::string operator/(const std::string& f) const { return (name.path / f).string(); }
};

}  // namespace model_source_test

TEST_CASE("model_source: safetensors, state dict, F16 model wrapper and BF16 hub folder give PyTorch's logits") {
  using model_source_test::fixture;
  const auto x = model_source_test::images();
  struct Case {
    std::string path, logits;
    ModelOverrides ov;
  };
  const std::vector<Case> cases = {{fixture("deit48.safetensors"), "logits_f32", {}},
                                   {fixture("deit48_state_dict.pth"), "logits_f32", model_source_test::imagenet()},
                                   {fixture("deit48_wrapped_f16.pth"), "logits_f16", model_source_test::imagenet()},
                                   {fixture("hub"), "logits_bf16", {}}};
  for (const auto& c : cases) {
    INFO(c.path);
    auto m = open_model(c.path, c.ov);
    REQUIRE(m.vit.config().heads == 3);
    REQUIRE(m.vit.config().dim == 48);
    const auto logits = m.vit.forward(x);
    const auto& ref = model_source_test::expected().at(c.logits);
    // The reference is float64 math on the weights as stored in each precision, so this measures mint's
    // float32 forward error only: the parity tolerance of test_vit_parity (1e-5 of the largest logit plus 1e-4
    // relative). F16 and BF16 rounding move the logits by 2.5e-3 and 1.4e-2 (the generator prints them), far
    // outside it, so a file read at the wrong precision, or a wrong head count, fails.
    MINT_REQUIRE_CLOSE(testing::compare(logits, ref, testing::rel_to_max(ref, 1e-5, 1e-4), c.path));
  }
}

TEST_CASE("model_source: every setting reports where it came from") {
  using model_source_test::fixture;
  const auto hub = open_model(fixture("hub"));
  CHECK(hub.format == "pytorch");
  CHECK(hub.weights == fixture("hub") + "/pytorch_model.bin");
  CHECK(hub.architecture.value == "deit_tiny_patch16_224");
  CHECK(hub.architecture.from == "config.json architecture");
  CHECK(hub.heads.from == "config.json model_args.num_heads");
  CHECK(hub.input_size.value == 224);
  CHECK(hub.input_size.from == "config.json pretrained_cfg.input_size, agrees with the weights");
  CHECK(hub.normalization.from == "config.json pretrained_cfg");
  CHECK(hub.normalization.value.mean == std::vector<float>{0.485f, 0.456f, 0.406f});
  CHECK(hub.normalization.value.std == std::vector<float>{0.229f, 0.224f, 0.225f});
  CHECK(hub.class_names.from == "config.json label_names");
  CHECK(hub.class_names.value.at(9) == "class_9");
  CHECK(hub.describe().find("heads          3") != std::string::npos);

  const auto st = open_model(fixture("deit48.safetensors"));
  CHECK(st.format == "safetensors");
  CHECK(st.heads.from == "safetensors metadata mint.num_heads");
  CHECK(st.normalization.from == "safetensors metadata mint.normalize_mean/std");
  CHECK(st.normalization.value.std == std::vector<float>{0.229f, 0.224f, 0.225f});
  CHECK(st.input_size.from == "the weights (pos_embed: 14x14 patches of 16 px)");
  CHECK(st.class_names.from == "class indices (no names in the files)");
  CHECK(st.architecture.from == "no source names it");

  // The embedded teacher: its recipe beside the weights (scalar normalisation, one channel).
  const auto teacher = open_model(std::string(MINT_MODELS_DIR) + "/fmnist_vit.safetensors");
  CHECK(teacher.heads.value == 4);
  CHECK(teacher.heads.from == "fmnist_vit.json model.heads");
  CHECK(teacher.normalization.from == "fmnist_vit.json normalization");
  CHECK(teacher.normalization.value.channels() == 1);
  CHECK(teacher.normalization.value.mean[0] == Approx(0.286f));
  CHECK(teacher.input_size.value == 28);
}

TEST_CASE("model_source: explicit overrides come before the config and the metadata") {
  using model_source_test::fixture;
  auto ov = model_source_test::imagenet(4);  // 48 is divisible by 4: a different, loadable model
  ov.mean = {0.5f};
  ov.std = {0.25f};
  const auto m = open_model(fixture("hub"), ov);
  CHECK(m.vit.config().heads == 4);
  CHECK(m.heads.from == "--heads");
  CHECK(m.normalization.from == "--mean/--std");
  CHECK(m.normalization.value.mean == std::vector<float>{0.5f, 0.5f, 0.5f});  // one value broadcasts to 3 channels

  ModelOverrides arch;
  arch.arch = "deit_tiny_patch16_224";  // width 192: the width-48 fixture is not this architecture
  const std::string msg = model_source_test::open_error(fixture("deit48.safetensors"), arch);
  CHECK(msg.find("architecture 'deit_tiny_patch16_224' has dim 192") != std::string::npos);
}

TEST_CASE("model_source: a table guess must match the whole shape and be unambiguous") {
  // dim 192 and depth 12 are DeiT-Tiny's, but patch 8 on 32 px images is no known model: refuse to guess.
  ViTConfig odd;
  odd.img_size = 32, odd.patch = 8, odd.dim = 192, odd.depth = 12, odd.heads = 3, odd.mlp_hidden = 16;
  odd.classes = 10;
  testing::TempFile odd_file(".safetensors");
  io::save_safetensors(odd_file.str(), ViT<>(odd).state_dict());  // no metadata, no recipe
  const std::string msg = model_source_test::open_error(odd_file.str());
  CHECK(msg.find("only dim and depth match deit_tiny_patch16_224") != std::string::npos);
  CHECK_THROWS_WITH(ViT<>::load(odd_file.str()), Catch::Contains("their head count would be a guess"));
  ModelOverrides heads;
  heads.heads = 3;
  heads.mean = {0.5f};
  heads.std = {0.5f};
  CHECK(open_model(odd_file.str(), heads).heads.from == "--heads");

  // The whole DeiT-Tiny shape matches deit_tiny and vit_tiny (3 heads both), but their normalisations differ.
  ViTConfig tiny;  // ViTConfig's defaults are DeiT-Tiny's shape
  tiny.mlp_hidden = 16, tiny.classes = 10;
  testing::TempFile tiny_file(".safetensors");
  io::save_safetensors(tiny_file.str(), ViT<>(tiny).state_dict());
  CHECK(model_source_test::open_error(tiny_file.str()).find("normalisation is ambiguous") != std::string::npos);
  ModelOverrides arch;
  arch.arch = "deit_tiny_patch16_224";
  const auto m = open_model(tiny_file.str(), arch);
  CHECK(m.heads.value == 3);
  CHECK(m.normalization.from == "timm's default for deit_tiny_patch16_224 (pretrained_cfg mean/std)");
  CHECK(m.normalization.value.mean == std::vector<float>{0.485f, 0.456f, 0.406f});
  ModelOverrides norm;
  norm.mean = {0.5f};
  norm.std = {0.5f};
  const auto g = open_model(tiny_file.str(), norm);
  CHECK(g.heads.from == "known-architecture table (the shape matches deit_tiny_patch16_224, vit_tiny_patch16_224)");
}

TEST_CASE("model_source: a config that contradicts the weights is an error naming the key") {
  using model_source_test::fixture;
  model_source_test::TempDir dir;
  auto check_config = [&](const nlohmann::json& j, const std::string& want) {
    model_source_test::write_json(dir / "config.json", j);
    ModelOverrides ov;
    ov.config = dir / "config.json";
    const std::string msg = model_source_test::open_error(fixture("deit48.safetensors"), ov);
    INFO(msg);
    CHECK(msg.find(want) != std::string::npos);
    CHECK(msg.find("config.json") != std::string::npos);
  };
  // the control: the fixture's own config loads
  model_source_test::write_json(dir / "config.json", model_source_test::hub_config());
  ModelOverrides control;
  control.config = dir / "config.json";
  REQUIRE(open_model(fixture("deit48.safetensors"), control).heads.from == "config.json model_args.num_heads");
  auto j = model_source_test::hub_config();
  j["num_classes"] = 11;
  check_config(j, "num_classes = 11 but the weights");
  j = model_source_test::hub_config();
  j["pretrained_cfg"]["input_size"] = {3, 256, 256};
  check_config(j, "gives 256 px but the weights");
  j = model_source_test::hub_config();
  j["label_names"].erase(0);
  check_config(j, "label_names has 9 names but the model has 10 classes");
  j = model_source_test::hub_config();
  j["pretrained_cfg"]["std"] = {0.2, 0.0, 0.2};
  check_config(j, "std[1] = 0");
  j = model_source_test::hub_config();
  j["model_args"]["num_heads"] = "three";
  check_config(j, "\"model_args.num_heads\" must be a positive integer");
  std::ofstream(dir / "config.json") << "{\"architecture\": ";
  ModelOverrides ov;
  ov.config = dir / "config.json";
  CHECK(model_source_test::open_error(fixture("deit48.safetensors"), ov).find("not valid JSON") != std::string::npos);
  std::ofstream(dir / "config.json") << "{\"label_names\": " << std::string(100000, '[') << std::string(100000, ']')
                                     << "}";
  CHECK(model_source_test::open_error(fixture("deit48.safetensors"), ov).find("nested deeper than 32") !=
        std::string::npos);
}

TEST_CASE("model_source: bad overrides and missing files are refused before any weights are read") {
  using model_source_test::fixture;
  using model_source_test::open_error;
  ModelOverrides ov;
  ov.heads = 0;
  CHECK(open_error(fixture("hub"), ov).find("--heads 0 must be >= 1") != std::string::npos);
  ov = {};
  ov.mean = {0.5f};
  CHECK(open_error(fixture("hub"), ov).find("--mean and --std must be given together") != std::string::npos);
  ov = {};
  ov.arch = "deit_huge";
  CHECK(open_error(fixture("hub"), ov).find("unknown ViT architecture 'deit_huge'") != std::string::npos);
  ov = {};
  ov.config = fixture("no_such_config.json");
  CHECK(open_error(fixture("hub"), ov).find("--config '") != std::string::npos);
  CHECK(open_error(fixture("no_such_model.pth")).find("no such file or folder") != std::string::npos);
  model_source_test::TempDir empty;
  CHECK(open_error(empty.name.str()).find("has neither model.safetensors nor pytorch_model.bin") != std::string::npos);
  CHECK(open_error(fixture("deit48_state_dict.pth")).find("cannot infer the number of attention heads") !=
        std::string::npos);
}
