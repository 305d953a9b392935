// report/grid.hpp: layout (integer upscale, spacing, caption rows), nearest-neighbour pixels denormalised per
// channel, masked patches drawn as a two-colour checkerboard, captions inked, and argument errors.
#include <catch2/catch.hpp>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "mint/report/grid.hpp"
#include "report_test_util.hpp"

using mint::Normalization;
using mint::report::Caption;
using mint::report::GridOptions;
using mint::report::Rgb;
using mint::report::labelled_grid;

namespace mint_grid_test {

GridOptions small_options() {
  GridOptions o;
  o.cols = 2, o.min_tile = 32, o.spacing = 5;
  return o;
}

}  // namespace mint_grid_test

TEST_CASE("labelled_grid upscales by nearest neighbour and denormalises each channel", "[report][grid]") {
  const Normalization norm{{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
  const auto imgs = mint_report_test::images(3, 3, 8, 8, 4, norm, 10);
  const GridOptions o = mint_grid_test::small_options();
  const auto g = labelled_grid(imgs, {}, norm, 4, o);
  // 8 px images, min_tile 32: scale 4, tiles 32 px; 2 columns, 2 rows, 5 px spacing around and between.
  REQUIRE(g.width() == 2 * 32 + 3 * 5);
  REQUIRE(g.height() == 2 * 32 + 3 * 5);
  std::set<std::uint8_t> masked_colours;
  for (std::int64_t k = 0; k < 3; ++k) {
    const std::int64_t x0 = 5 + (k % 2) * 37, y0 = 5 + (k / 2) * 37;
    for (std::int64_t y = 0; y < 32; ++y)
      for (std::int64_t x = 0; x < 32; ++x) {
        const std::int64_t iy = y / 4, ix = x / 4, patch = (iy / 4) * 2 + ix / 4;
        const Rgb c = g.at(x0 + x, y0 + y);
        if (imgs[static_cast<std::size_t>(k)].mask[patch] < 0.5f) {
          REQUIRE((c.r == c.g && c.g == c.b));
          masked_colours.insert(c.r);
          continue;
        }
        const std::uint8_t got[3] = {c.r, c.g, c.b};
        for (std::int64_t ch = 0; ch < 3; ++ch) {
          // +-1: mint maps (x - lo) / (hi - lo) in float32, the reference x * std + mean in double.
          const int want = mint_report_test::expected_byte(imgs[static_cast<std::size_t>(k)].pixels[(ch * 8 + iy) * 8 + ix],
                                                           norm, ch);
          REQUIRE(std::abs(static_cast<int>(got[ch]) - want) <= 1);
        }
      }
  }
  // Masked patches show both checkerboard colours and nothing else.
  REQUIRE(masked_colours == std::set<std::uint8_t>{o.checker_a.r, o.checker_b.r});
}

TEST_CASE("labelled_grid puts two caption lines of text under each image", "[report][grid]") {
  const Normalization norm{{0.5f}, {0.5f}};
  const auto imgs = mint_report_test::images(2, 1, 8, 8, 4, norm, 10);
  const GridOptions o = mint_grid_test::small_options();
  const std::vector<Caption> caps{{"Trouser", "p = 0.97"}, {"Bag", "p = 0.40, top: Coat"}};
  const auto plain = labelled_grid(imgs, {}, norm, 4, o);
  const auto g = labelled_grid(imgs, caps, norm, 4, o);
  const int line = mint::report::Font::load().line_height(o.font_px);
  REQUIRE(g.width() == plain.width());
  REQUIRE(g.height() == plain.height() + 2 * line + 4);
  // Each caption line has ink (text colour darker than the white background) below its tile.
  for (std::int64_t k = 0; k < 2; ++k) {
    const std::int64_t x0 = 5 + k * 37;
    for (int l = 0; l < 2; ++l) {
      int ink = 0;
      for (std::int64_t y = 5 + 32 + 3 + l * line; y < 5 + 32 + 3 + (l + 1) * line; ++y)
        for (std::int64_t x = x0; x < x0 + 32; ++x) ink += g.at(x, y).r < 128 ? 1 : 0;
      INFO("image " << k << " line " << l);
      REQUIRE(ink > 5);
    }
  }
}

TEST_CASE("labelled_grid refuses inconsistent arguments before drawing", "[report][grid]") {
  const Normalization grey{{0.5f}, {0.5f}};
  auto imgs = mint_report_test::images(2, 1, 8, 8, 4, grey, 10);
  const GridOptions o = mint_grid_test::small_options();
  REQUIRE_THROWS_WITH(labelled_grid({}, {}, grey, 4, o), Catch::Contains("no images"));
  REQUIRE_THROWS_WITH(labelled_grid(imgs, std::vector<Caption>(1), grey, 4, o),
                      Catch::Contains("1 captions for 2 images"));
  REQUIRE_THROWS_WITH(labelled_grid(imgs, {}, grey, 3, o), Catch::Contains("patch size 3"));
  REQUIRE_THROWS_WITH(labelled_grid(imgs, {}, Normalization{{0.5f, 0.5f}, {1.f, 1.f}}, 4, o),
                      Catch::Contains("2 channels"));
  REQUIRE_THROWS_WITH(labelled_grid(imgs, {}, Normalization{{0.5f}, {0.0f}}, 4, o), Catch::Contains("std[0]"));
  GridOptions bad = o;
  bad.cols = 0;
  REQUIRE_THROWS_WITH(labelled_grid(imgs, {}, grey, 4, bad), Catch::Contains("cols"));
  bad = o;
  bad.font_path = "/nonexistent/font.ttf";
  REQUIRE_THROWS_WITH(labelled_grid(imgs, {}, grey, 4, bad), Catch::Contains("/nonexistent/font.ttf"));
  imgs[1].mask = mint::Tensor<>::zeros(mint::Shape{5});
  REQUIRE_THROWS_WITH(labelled_grid(imgs, {}, grey, 4, o), Catch::Contains("image 1 has a mask of [5]"));
}
