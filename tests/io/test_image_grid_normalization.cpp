// image_grid with a per-channel Normalization: each channel is shown over its own valid range.
#include "test_util.hpp"

#include "mint/io/image.hpp"

using namespace mint;

TEST_CASE("image_grid with a Normalization maps each channel's valid range onto 0..1", "[io][image]") {
  const Normalization imagenet{{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
  auto x = Tensor<>::empty(Shape{1, 3, 2, 2});
  for (int c = 0; c < 3; ++c) {  // per channel: its lower bound, its upper bound, the model-space 0, the mean
    x[c * 4 + 0] = imagenet.lo(c), x[c * 4 + 1] = imagenet.hi(c), x[c * 4 + 2] = 0.0f;
    x[c * 4 + 3] = imagenet.to_model(0.25f, c);
  }
  const auto g = io::image_grid(x, 1, 0, nullptr, 0, imagenet);
  REQUIRE(g.shape() == Shape{3, 2, 2});
  for (int c = 0; c < 3; ++c) {
    // float32 round trip of (u - m) / s * s + m: a few ulps of 1
    REQUIRE(g[c * 4 + 0] == Approx(0.0f).margin(1e-6));
    REQUIRE(g[c * 4 + 1] == Approx(1.0f).epsilon(1e-6));
    REQUIRE(g[c * 4 + 2] == Approx(imagenet.mean[static_cast<std::size_t>(c)]).epsilon(1e-6));
    REQUIRE(g[c * 4 + 3] == Approx(0.25f).epsilon(1e-6));
  }
  // masked patches are black (0), a one-channel normalisation serves every channel, a wrong count is refused
  auto mask = Tensor<>::zeros(Shape{1, 1});
  const auto black = io::image_grid(x, 1, 0, &mask, 2, imagenet);
  for (std::int64_t i = 0; i < black.numel(); ++i) REQUIRE(black[i] == 0.0f);
  REQUIRE(io::image_grid(x, 1, 0, nullptr, 0, Normalization{{0.5f}, {0.5f}})[2] == Approx(0.5f));
  REQUIRE_THROWS_WITH(io::image_grid(x, 1, 0, nullptr, 0, Normalization{{0.5f, 0.5f}, {0.5f, 0.5f}}),
                      Catch::Contains("2 channels, the model 3"));
}
