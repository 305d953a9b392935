// report/image_folder.hpp: folder names, the exported PNGs read back (grey + alpha and RGBA: colour =
// denormalised pixels, alpha = patch mask), class_to_idx.json, replacing a previous export without leftovers,
// and refusing a folder that is not one, or bad labels, before writing anything.
#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mint/io/image.hpp"
#include "mint/report/image_folder.hpp"
#include "report_test_util.hpp"

using mint::Normalization;
using mint::report::class_folder_names;
using mint::report::export_image_folder;
namespace fs = std::filesystem;

namespace mint_folder_test {

// Every PNG of the export against its image: colour bytes within 1 of the independent reference (mint computes
// (x - lo) / (hi - lo) in float32, the reference x * std + mean in double), alpha exactly 255 * mask.
void check_export(const std::string& dir, const mint::report::ImageFolderExport& ex,
                  const std::vector<mint::SparseImage>& imgs, const Normalization& norm, std::int64_t patch) {
  REQUIRE(ex.files.size() == imgs.size());
  for (std::size_t i = 0; i < imgs.size(); ++i) {
    const auto& s = imgs[i];
    const std::int64_t c = s.pixels.dim(0), h = s.pixels.dim(1), w = s.pixels.dim(2);
    REQUIRE(ex.files[i].rfind(ex.folders[static_cast<std::size_t>(s.label)] + "/", 0) == 0);
    const auto back = mint::io::read_png(dir + "/" + ex.files[i], static_cast<int>(c + 1));
    REQUIRE(back.shape() == mint::Shape{c + 1, h, w});
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int64_t x = 0; x < w; ++x) {
        for (std::int64_t ch = 0; ch < c; ++ch) {
          const int got = static_cast<int>(std::lround(back[(ch * h + y) * w + x] * 255.0f));
          REQUIRE(std::abs(got - mint_report_test::expected_byte(s.pixels[(ch * h + y) * w + x], norm, ch)) <= 1);
        }
        const float kept = s.mask[(y / patch) * (w / patch) + x / patch];
        REQUIRE(back[(c * h + y) * w + x] == (kept > 0.5f ? 1.0f : 0.0f));
      }
  }
}

}  // namespace mint_folder_test

TEST_CASE("class_folder_names makes names safe folder names, or zero-padded indices", "[report][image_folder]") {
  const std::vector<std::string> fashion{"T-shirt/top", "Trouser", "Ankle boot"};
  CHECK(class_folder_names(3, fashion) == std::vector<std::string>{"T-shirt_top", "Trouser", "Ankle boot"});
  const auto idx = class_folder_names(12, {});
  CHECK(idx.front() == "00");
  CHECK(idx.back() == "11");
  CHECK(class_folder_names(1, {}) == std::vector<std::string>{"0"});
  const std::vector<std::string> clash{"a/b", "a_b"}, dot{".", "x"}, ctrl{"tab\there", "x"};
  REQUIRE_THROWS_WITH(class_folder_names(2, clash), Catch::Contains("'a_b'"));
  REQUIRE_THROWS_WITH(class_folder_names(2, dot), Catch::Contains("class 0 is named '.'"));
  CHECK(class_folder_names(2, ctrl).front() == "tab_here");
  REQUIRE_THROWS_WITH(class_folder_names(4, fashion), Catch::Contains("3 class names for a model of 4 classes"));
}

TEST_CASE("export_image_folder writes grey + alpha PNGs in class folders", "[report][image_folder]") {
  mint_report_test::TempDir tmp;
  const Normalization norm{{0.286f}, {0.353f}};
  const auto imgs = mint_report_test::images(5, 1, 8, 8, 4, norm, 3);  // labels 0 1 2 0 1
  const std::vector<std::string> names{"T-shirt/top", "Trouser", "Pullover", "Dress"};
  const std::string dir = tmp.str("images");
  const auto ex = export_image_folder(dir, imgs, norm, 4, 4, names);
  mint_folder_test::check_export(dir, ex, imgs, norm, 4);
  CHECK(ex.files[0] == "T-shirt_top/0.png");
  CHECK(ex.files[4] == "Trouser/4.png");
  CHECK(!fs::exists(dir + "/Dress"));  // no image of class 3: no folder (ImageFolder refuses empty ones)
  const auto index = nlohmann::json::parse(std::ifstream(dir + "/class_to_idx.json"));
  CHECK(index.at("mint.kind") == "image_folder");
  CHECK(index.at("images") == 5);
  CHECK(index.at("class_to_idx").at("T-shirt_top") == 0);
  CHECK(index.at("class_to_idx").at("Dress") == 3);
  for (const auto& e : fs::directory_iterator(tmp.path))  // no temporary or old folder left beside it
    CHECK(e.path().filename() == "images");
}

TEST_CASE("export_image_folder writes RGBA with a per-channel normalisation and zero-padded names",
          "[report][image_folder]") {
  mint_report_test::TempDir tmp;
  const Normalization norm{{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
  const auto imgs = mint_report_test::images(11, 3, 8, 12, 4, norm, 2);
  const auto ex = export_image_folder(tmp.str("out"), imgs, norm, 4, 2);
  mint_folder_test::check_export(tmp.str("out"), ex, imgs, norm, 4);
  CHECK(ex.files[0] == "0/00.png");
  CHECK(ex.files[10] == "0/10.png");
}

TEST_CASE("export_image_folder replaces its previous export and nothing else", "[report][image_folder]") {
  mint_report_test::TempDir tmp;
  const Normalization norm{{0.5f}, {0.5f}};
  const std::string dir = tmp.str("images");
  export_image_folder(dir, mint_report_test::images(6, 1, 8, 8, 4, norm, 3), norm, 4, 3);
  const auto second = mint_report_test::images(2, 1, 8, 8, 4, norm, 3, 9);
  const auto ex = export_image_folder(dir, second, norm, 4, 3);
  std::size_t pngs = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) pngs += e.path().extension() == ".png" ? 1 : 0;
  CHECK(pngs == 2);  // the 6 files of the first export are gone with it
  mint_folder_test::check_export(dir, ex, second, norm, 4);

  const std::string mine = tmp.str("mine");
  fs::create_directories(mine);
  std::ofstream(mine + "/keep.txt") << "a user's file";
  REQUIRE_THROWS_WITH(export_image_folder(mine, second, norm, 4, 3),
                      Catch::Contains(mine) && Catch::Contains("refusing to replace"));
  CHECK(fs::exists(mine + "/keep.txt"));
}

TEST_CASE("export_image_folder checks labels and names before writing", "[report][image_folder]") {
  mint_report_test::TempDir tmp;
  const Normalization norm{{0.5f}, {0.5f}};
  auto imgs = mint_report_test::images(3, 1, 8, 8, 4, norm, 3);
  imgs[2].label = 7;
  REQUIRE_THROWS_WITH(export_image_folder(tmp.str("a"), imgs, norm, 4, 3),
                      Catch::Contains("image 2 has label 7") && Catch::Contains("3 classes"));
  imgs[2].label = 0;
  const std::vector<std::string> two{"x", "y"};
  REQUIRE_THROWS_WITH(export_image_folder(tmp.str("a"), imgs, norm, 4, 3, two), Catch::Contains("2 class names"));
  REQUIRE(fs::is_empty(tmp.path));
}
