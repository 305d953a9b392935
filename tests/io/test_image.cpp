// image: PNG round trips through stb, the pixel-range mapping, and grids with masked ViT patches drawn black.
#include "test_util.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <random>
#include <string>

#include "mint/core/rng.hpp"
#include "mint/io/image.hpp"

using mint::Shape;
using mint::testing::TempFile;
using mint::Tensor;
using mint::io::PixelRange;

namespace {

}  // namespace

TEST_CASE("image_grid with a patch mask survives a PNG round trip", "[io][image][png]") {
  // 3 RGB images of 8x8 with 4x4 patches (4 per image), in a grid of 2 columns: the 4th slot stays empty.
  const std::int64_t b = 3, c = 3, h = 8, w = 8, patch = 4, pad = 2;
  auto images = Tensor<>::empty(Shape{b, c, h, w});
  mint::fill_uniform(images, 7, 0, 0.f, 1.f);
  const auto mask = Tensor<>::from(Shape{b, 4}, {1, 0, 1, 1,   //
                                                 0, 0, 0, 1,   //
                                                 1, 1, 1, 1});
  const auto grid = mint::io::image_grid(images, 2, static_cast<int>(pad), &mask, static_cast<int>(patch));
  const std::int64_t hg = 2 * h + 3 * pad, wg = 2 * w + 3 * pad;
  REQUIRE(grid.shape() == Shape{c, hg, wg});

  TempFile png(".png");
  mint::io::write_png(png.str(), grid);
  const auto back = mint::io::read_png(png.str(), 3);
  REQUIRE(back.shape() == grid.shape());

  // Expected content of every grid pixel: the image pixel where kept, 0 in masked patches, padding and the
  // empty slot.
  std::int64_t kept = 0, masked = 0;
  for (std::int64_t ch = 0; ch < c; ++ch)
    for (std::int64_t y = 0; y < hg; ++y)
      for (std::int64_t x = 0; x < wg; ++x) {
        float want = 0.f;
        bool is_kept = false;
        const std::int64_t row = (y - pad) / (h + pad), col = (x - pad) / (w + pad);
        const std::int64_t iy = (y - pad) % (h + pad), ix = (x - pad) % (w + pad);
        const std::int64_t k = row * 2 + col;
        if (y >= pad && x >= pad && iy < h && ix < w && k < b) {
          const bool patch_kept = mask[k * 4 + (iy / patch) * 2 + ix / patch] == 1.f;
          if (patch_kept) {
            want = images[((k * c + ch) * h + iy) * w + ix];
            is_kept = true;
          }
        }
        const float got = back[(ch * hg + y) * wg + x];
        if (is_kept) {
          ++kept;
          REQUIRE(std::abs(got - want) <= 1.f / 255.f);
        } else {
          ++masked;
          REQUIRE(got == 0.f);
        }
      }
  REQUIRE(kept == c * (3 + 1 + 4) * patch * patch);  // 8 kept patches
  REQUIRE(masked == c * hg * wg - kept);
}

TEST_CASE("write_png maps PixelRange onto 0..255, clamps, and sends NaN to 0", "[io][image][png]") {
  const auto img = Tensor<>::from(Shape{1, 2, 3}, {-1.f, 0.f, 1.f, -5.f, 5.f, std::numeric_limits<float>::quiet_NaN()});
  TempFile png(".png");
  mint::io::write_png(png.str(), img, PixelRange{-1.f, 1.f});
  const auto grey = mint::io::read_png(png.str(), 1);
  REQUIRE(grey.shape() == Shape{1, 2, 3});
  const float expect[] = {0.f, 128.f / 255.f, 1.f, 0.f, 1.f, 0.f};
  for (int i = 0; i < 6; ++i) REQUIRE(grey[i] == expect[i]);
  // Asking for RGB replicates the grey channel.
  const auto rgb = mint::io::read_png(png.str(), 3);
  REQUIRE(rgb.shape() == Shape{3, 2, 3});
  for (int ch = 0; ch < 3; ++ch)
    for (int i = 0; i < 6; ++i) REQUIRE(rgb[ch * 6 + i] == expect[i]);
}

TEST_CASE("image_grid pads with r.lo and keeps the input's pixel units", "[io][image]") {
  const auto images = Tensor<>::full(Shape{2, 1, 2, 2}, 0.5f);
  const auto grid = mint::io::image_grid(images, 5, 1, nullptr, 0, PixelRange{-1.f, 1.f});
  REQUIRE(grid.shape() == Shape{1, 4, 7});  // min(cols, B) = 2 columns, one row
  REQUIRE(grid[0] == -1.f);                 // padding is black = r.lo
  REQUIRE(grid[1 * 7 + 1] == 0.5f);
  REQUIRE(grid[1 * 7 + 3] == -1.f);         // the pad column between the images
  const auto tight = mint::io::image_grid(images, 1, 0);
  REQUIRE(tight.shape() == Shape{1, 4, 2});
}

TEST_CASE("image functions reject bad shapes and arguments, naming them", "[io][image]") {
  const auto images = Tensor<>::zeros(Shape{2, 3, 8, 8});
  REQUIRE_THROWS_WITH(mint::io::image_grid(Tensor<>::zeros(Shape{2, 2, 8, 8}), 2),
                      Catch::Contains("[2, 2, 8, 8]") && Catch::Contains("[B, C, H, W]"));
  REQUIRE_THROWS_WITH(mint::io::image_grid(images, 0), Catch::Contains("cols") && Catch::Contains("0"));
  REQUIRE_THROWS_WITH(mint::io::image_grid(images, 2, -1), Catch::Contains("pad"));
  const auto mask = Tensor<>::full(Shape{2, 3}, 1.f);
  REQUIRE_THROWS_WITH(mint::io::image_grid(images, 2, 2, &mask, 4),
                      Catch::Contains("patch_mask") && Catch::Contains("[2, 4]") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(mint::io::image_grid(images, 2, 2, &mask, 3),
                      Catch::Contains("8x8") && Catch::Contains("not divisible by patch 3"));
  REQUIRE_THROWS_WITH(mint::io::image_grid(images, 2, 2, &mask, 0), Catch::Contains("patch >= 1"));
  REQUIRE_THROWS_WITH(mint::io::image_grid(images, 2, 2, nullptr, 0, PixelRange{1.f, 1.f}),
                      Catch::Contains("lo < hi"));

  REQUIRE_THROWS_WITH(mint::io::write_png("x.png", Tensor<>::zeros(Shape{2, 4, 4})),
                      Catch::Contains("write_png") && Catch::Contains("[2, 4, 4]"));
  const std::string bad_dir = (std::filesystem::temp_directory_path() / "mint_no_such_dir" / "x.png").string();
  REQUIRE_THROWS_WITH(mint::io::write_png(bad_dir, Tensor<>::zeros(Shape{1, 4, 4})),
                      Catch::Contains(bad_dir) && Catch::Contains("failed to write"));
  REQUIRE_THROWS_WITH(mint::io::read_png(bad_dir, 3), Catch::Contains(bad_dir) && Catch::Contains("cannot read"));
  REQUIRE_THROWS_WITH(mint::io::read_png(bad_dir, 5), Catch::Contains("channels"));

  TempFile not_png(".png");
  {
    std::FILE* f = std::fopen(not_png.str().c_str(), "wb");
    REQUIRE(f != nullptr);
    std::fputs("this is not an image", f);
    std::fclose(f);
  }
  REQUIRE_THROWS_WITH(mint::io::read_png(not_png.str(), 1), Catch::Contains(not_png.str()));
}

TEST_CASE("write_png that fails part-way leaves the previous file intact and no temporary file",
          "[io][image][atomic]") {
  mint::testing::TempDir dir;
  const auto path = dir.path / "grid.png";
  mint::io::write_png(path.string(), Tensor<>::full(Shape{1, 4, 4}, 0.5f));
  const std::string before = mint::testing::read_all(path);
  // 256 x 256 RGB noise compresses to ~190 KiB, 6x the limit below. Before, stbi_write_png ignored fwrite's
  // failure: a truncated file and no error.
  const auto noise = mint::testing::uniform(Shape{3, 256, 256}, 9);
  {
    mint::testing::FileSizeLimit limit(32 * 1024);
    REQUIRE_THROWS_WITH(mint::io::write_png(path.string(), noise), Catch::Contains(path.string()));
  }
  REQUIRE(mint::testing::read_all(path) == before);
  REQUIRE(dir.entries() == 1);
  mint::io::write_png(path.string(), noise);
  REQUIRE(mint::io::read_png(path.string(), 3).shape() == Shape{3, 256, 256});
}
