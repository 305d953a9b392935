// report/run_report.hpp: class names from a recipe or a timm config, the teacher's confidence on the kept
// patches, and write_inversion_outputs end to end on the embedded teacher (grid, image folder, dataset with
// its metadata, report.html), with its errors raised before any file is written.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mint/io/base64.hpp"
#include "mint/models/vit.hpp"
#include "mint/nn/softmax.hpp"
#include "mint/report/run_report.hpp"
#include "report_test_util.hpp"

namespace fs = std::filesystem;

namespace mint_run_report_test {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

mint::ViT<>& teacher() {
  static auto model = mint::ViT<>::load(std::string(MINT_MODELS_DIR) + "/fmnist_vit.safetensors");
  return model;
}

const mint::Normalization kNorm{{0.286f}, {0.353f}};

}  // namespace mint_run_report_test

TEST_CASE("read_class_names reads mint's class_names and timm's label_names", "[report][run_report]") {
  mint_report_test::TempDir tmp;
  CHECK(mint::report::read_class_names(std::string(MINT_MODELS_DIR) + "/fmnist_vit.json", 10) ==
        std::vector<std::string>{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                                 "Bag", "Ankle boot"});
  std::ofstream(tmp.str("config.json")) << R"({"architecture": "vit_tiny", "label_names": ["cat", "dog"]})";
  CHECK(mint::report::read_class_names(tmp.str("config.json"), 2) == std::vector<std::string>{"cat", "dog"});
  CHECK(mint::report::read_class_names(tmp.str("absent.json"), 2).empty());
  CHECK(mint::report::read_class_names("", 2).empty());
  std::ofstream(tmp.str("none.json")) << R"({"num_classes": 2})";
  CHECK(mint::report::read_class_names(tmp.str("none.json"), 2).empty());
  REQUIRE_THROWS_WITH(mint::report::read_class_names(tmp.str("config.json"), 3),
                      Catch::Contains(tmp.str("config.json")) && Catch::Contains("'label_names'") &&
                          Catch::Contains("array of 3 names"));
  std::ofstream(tmp.str("num.json")) << R"({"class_names": ["a", 2]})";
  REQUIRE_THROWS_WITH(mint::report::read_class_names(tmp.str("num.json"), 2), Catch::Contains("non-string 2"));
  std::ofstream(tmp.str("broken.json")) << "{";
  REQUIRE_THROWS_WITH(mint::report::read_class_names(tmp.str("broken.json"), 2), Catch::Contains("not valid JSON"));
}

TEST_CASE("teacher_predictions (the grid captions) are the target class softmax on the kept patches",
          "[report][run_report]") {
  auto& model = mint_run_report_test::teacher();
  auto imgs = mint_report_test::images(2, 1, 28, 28, 4, mint_run_report_test::kNorm, 10);
  imgs[0].mask = mint::Tensor<>::full(mint::Shape{49}, 1.0f);  // dense
  const auto [conf, top] = mint::tasks::teacher_predictions(model, imgs);
  REQUIRE(conf.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    // The same forward on one image with its kept patches (all of them for image 0).
    std::vector<std::int32_t> kept;
    for (std::int32_t k = 0; k < 49; ++k)
      if (imgs[i].mask[k] > 0.5f) kept.push_back(k);
    const mint::nn::TokenIndex keep{1, static_cast<std::int64_t>(kept.size()), kept};
    auto x = mint::Tensor<>::empty(mint::Shape{1, 1, 28, 28});
    std::copy(imgs[i].pixels.data(), imgs[i].pixels.data() + 784, x.data());
    const auto p = mint::nn::softmax(model.forward(x, kept.size() == 49 ? nullptr : &keep));
    // 1e-6: the same float32 ops on a batch of 2 against a batch of 1 (GEMM blocking may differ).
    CHECK(std::abs(conf[i] - p[imgs[i].label]) <= 1e-6f);
    CHECK(top[i] == static_cast<int>(std::max_element(p.data(), p.data() + 10) - p.data()));
  }
}

TEST_CASE("write_inversion_outputs writes the grid, the folder, the dataset and report.html",
          "[report][run_report]") {
  mint_report_test::TempDir tmp;
  auto& model = mint_run_report_test::teacher();
  mint::InversionResult res;
  res.images = mint_report_test::images(4, 1, 28, 28, 4, mint_run_report_test::kNorm, 10);
  for (int t = 1; t <= 20; ++t) res.history.push_back({t, 3.0f / static_cast<float>(t), t <= 10 ? 49 : 24, 0.01});
  mint::report::RunDescription d;
  d.command_line = "mint-invert --out '<dir>'";
  d.model_path = "teacher & co.safetensors";
  d.normalization = mint_run_report_test::kNorm;
  d.class_names = mint::report::read_class_names(std::string(MINT_MODELS_DIR) + "/fmnist_vit.json", 10);
  d.settings = {{"method", "pri"}, {"v", 4}};
  d.cost = {{"seconds", 1.25}};
  d.dataset_metadata = {{"method", "pri"}};
  const auto out = mint::report::write_inversion_outputs(tmp.str("run"), model, res, d);

  REQUIRE(out.confidence.size() == 4);
  const auto grid = mint::io::read_png(out.grid, 3);
  CHECK(grid.dim(2) >= 4 * 112);  // 28 px images upscaled to 112 px, 4 in a row
  CHECK(fs::is_regular_file(out.image_folder + "/Trouser/1.png"));

  const auto back = mint::load_synthetic_dataset(out.dataset);
  REQUIRE(back.size() == 4);
  for (std::int64_t k = 0; k < back[3].pixels.numel(); ++k) REQUIRE(back[3].pixels[k] == res.images[3].pixels[k]);
  const auto meta = mint::io::load_safetensors(out.dataset).metadata;
  const auto expected = mint::normalization_metadata(mint_run_report_test::kNorm);
  CHECK(meta.at("mint.normalize_mean") == expected.at("mint.normalize_mean"));
  CHECK(meta.at("mint.normalize_std") == expected.at("mint.normalize_std"));
  CHECK(nlohmann::json::parse(meta.at("mint.class_names")).at(9) == "Ankle boot");
  CHECK(meta.at("method") == "pri");

  const std::string html = mint_run_report_test::read_all(out.report);
  CHECK(html.find("mint-invert --out &#39;&lt;dir&gt;&#39;") != std::string::npos);
  CHECK(html.find("teacher &amp; co.safetensors") != std::string::npos);
  CHECK(html.find("base64," + mint::io::base64_encode(mint_run_report_test::read_all(out.grid))) != std::string::npos);
  CHECK(html.find("Active patches per image") != std::string::npos);
  CHECK(html.find("<th>seconds</th><td>1.25</td>") != std::string::npos);
  CHECK(html.find("<th>v</th><td>4</td>") != std::string::npos);
  CHECK(html.find("Inverted images (4)") != std::string::npos);

  // A grid of at most 2 images: rows 0 and 2 of 4, the same width as 2 tiles, the page says so.
  d.grid_images = 2;
  const auto few = mint::report::write_inversion_outputs(tmp.str("few"), model, res, d);
  const auto small = mint::io::read_png(few.grid, 3);
  CHECK(small.dim(2) == 2 * 112 + 3 * d.grid.spacing);
  CHECK(mint_run_report_test::read_all(few.report).find("Inverted images (2 of 4)") != std::string::npos);
  CHECK(mint::load_synthetic_dataset(few.dataset).size() == 4);  // the dataset keeps every image
}

TEST_CASE("write_inversion_outputs refuses bad inputs before writing", "[report][run_report]") {
  mint_report_test::TempDir tmp;
  auto& model = mint_run_report_test::teacher();
  mint::InversionResult res;
  mint::report::RunDescription d;
  d.normalization = mint_run_report_test::kNorm;
  REQUIRE_THROWS_WITH(mint::report::write_inversion_outputs(tmp.str("a"), model, res, d),
                      Catch::Contains("no images"));
  res.images = mint_report_test::images(2, 1, 28, 28, 4, mint_run_report_test::kNorm, 10);
  d.class_names = {"one", "two"};
  REQUIRE_THROWS_WITH(mint::report::write_inversion_outputs(tmp.str("a"), model, res, d),
                      Catch::Contains("2 class names for a model of 10 classes"));
  d.class_names.clear();
  d.normalization = mint::Normalization{{0.5f, 0.5f, 0.5f}, {0.2f, 0.2f, 0.2f}};
  REQUIRE_THROWS_WITH(mint::report::write_inversion_outputs(tmp.str("a"), model, res, d),
                      Catch::Contains("3 channels"));
  REQUIRE(fs::is_empty(tmp.path));
}
