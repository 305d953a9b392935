// The synthetic dataset records the images' normalisation (normalization_metadata) and reads it back.
#include "test_util.hpp"

#include "mint/inversion/sparse_image.hpp"

using namespace mint;

TEST_CASE("a synthetic dataset's metadata records the normalisation, per channel, and reads it back",
          "[inversion][dataset]") {
  const Normalization imagenet{{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
  SparseImage s{Tensor<>::zeros(Shape{3, 8, 8}), Tensor<>::full(Shape{4}, 1.0f), 2, 10};
  testing::TempFile f(".safetensors");
  save_synthetic_dataset(f.str(), {s}, normalization_metadata(imagenet));
  const auto meta = io::load_safetensors(f.str()).metadata;
  const Normalization back = normalization_from_metadata(meta, f.str());
  REQUIRE(back.mean == imagenet.mean);  // 9 significant digits: float32 values round-trip exactly
  REQUIRE(back.std == imagenet.std);
  REQUIRE_THROWS_WITH(normalization_from_metadata({}, "x.safetensors"),
                      Catch::Contains("x.safetensors") && Catch::Contains("mint.normalize_mean"));
  REQUIRE_THROWS_WITH(normalization_from_metadata({{"mint.normalize_mean", "0.5,abc"}, {"mint.normalize_std", "1"}},
                                                  "x"),
                      Catch::Contains("'0.5,abc' is not a comma-separated list"));
  REQUIRE_THROWS_WITH(normalization_from_metadata({{"mint.normalize_mean", "0.5"}, {"mint.normalize_std", "0"}},
                                                  "x"),
                      Catch::Contains("std[0]"));
}
