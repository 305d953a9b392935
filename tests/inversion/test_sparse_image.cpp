// The synthetic-dataset file (mint/inversion/sparse_image.hpp): a round trip, and crafted files whose counts or
// values the reader used to accept (labels and iterations such as 5e36 or NaN were cast to int: undefined
// behaviour) -- each must be a mint::Error naming the file, the field and the image.
#include "test_util.hpp"

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "mint/inversion/sparse_image.hpp"

using namespace mint;

namespace sparse_image_test {

// A valid two-image file's tensors: images [2, 1, 4, 4], masks [2, 4], labels {3, 7}, iterations {5, 10}.
std::map<std::string, Tensor<>> valid_tensors() {
  return {{"images", testing::uniform(Shape{2, 1, 4, 4}, 1)},
          {"masks", Tensor<>::from(Shape{2, 4}, {1, 0, 1, 1, 0, 0, 1, 0})},
          {"labels", Tensor<>::from(Shape{2}, {3, 7})},
          {"iterations", Tensor<>::from(Shape{2}, {5, 10})}};
}

}  // namespace sparse_image_test

TEST_CASE("synthetic dataset round trip keeps pixels, masks, labels and iterations", "[inversion][dataset]") {
  std::vector<SparseImage> images(2);
  for (int i = 0; i < 2; ++i) {
    images[i].pixels = testing::uniform(Shape{1, 4, 4}, 10 + i);
    images[i].mask = Tensor<>::from(Shape{4}, {1, 0, static_cast<float>(i), 1});
    images[i].label = 4 + i;
    images[i].iteration = 100 * i;
  }
  testing::TempFile f(".safetensors");
  save_synthetic_dataset(f.str(), images);
  const auto back = load_synthetic_dataset(f.str());
  REQUIRE(back.size() == 2);
  for (int i = 0; i < 2; ++i) {
    REQUIRE(back[i].label == images[i].label);
    REQUIRE(back[i].iteration == images[i].iteration);
    MINT_REQUIRE_CLOSE(testing::compare(back[i].pixels, images[i].pixels, {0, 0}, "pixels"));
    MINT_REQUIRE_CLOSE(testing::compare(back[i].mask, images[i].mask, {0, 0}, "mask"));
  }
  images[1].label = -1;
  REQUIRE_THROWS_WITH(save_synthetic_dataset(f.str(), images), Catch::Contains("label -1"));
}

TEST_CASE("synthetic dataset reader refuses labels and iterations that are not whole numbers >= 0",
          "[inversion][dataset][hostile]") {
  testing::TempFile f(".safetensors");
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (const char* field : {"labels", "iterations"}) {
    for (float bad : {5e36f, nan, inf, -1.0f, 2.5f, 3e9f}) {
      CAPTURE(field, bad);
      auto t = sparse_image_test::valid_tensors();
      t[field] = Tensor<>::from(Shape{2}, {1, bad});
      io::save_safetensors(f.str(), t);
      REQUIRE_THROWS_WITH(load_synthetic_dataset(f.str()),
                          Catch::Contains(f.str()) && Catch::Contains("of image 1") &&
                              Catch::Contains(std::string(field) == "labels" ? "label" : "iteration"));
    }
  }
}

TEST_CASE("synthetic dataset reader refuses empty, mis-shaped and non-finite content",
          "[inversion][dataset][hostile]") {
  testing::TempFile f(".safetensors");
  auto expect_error = [&](std::map<std::string, Tensor<>> t, const std::string& words) {
    io::save_safetensors(f.str(), t);
    REQUIRE_THROWS_WITH(load_synthetic_dataset(f.str()), Catch::Contains(f.str()) && Catch::Contains(words));
  };
  auto t = sparse_image_test::valid_tensors();
  t["images"] = Tensor<>::zeros(Shape{0, 1, 4, 4});
  t["masks"] = Tensor<>::zeros(Shape{0, 4});
  t["labels"] = Tensor<>::zeros(Shape{0});
  t["iterations"] = Tensor<>::zeros(Shape{0});
  expect_error(t, "at least one image");  // the writer refuses to write an empty dataset; so does the reader
  t = sparse_image_test::valid_tensors();
  t["images"] = Tensor<>::zeros(Shape{2, 1, 0, 4});
  expect_error(t, "at least one pixel");
  t = sparse_image_test::valid_tensors();
  t["labels"] = Tensor<>::from(Shape{2, 1}, {3, 7});
  expect_error(t, "[M]");
  t = sparse_image_test::valid_tensors();
  t["masks"] = Tensor<>::from(Shape{2, 4}, {1, 0, 1, 1, 0, 0.5f, 1, 0});
  expect_error(t, "mask value 0.5 of image 1 (patch 1)");
  t = sparse_image_test::valid_tensors();
  t["images"][17] = std::numeric_limits<float>::quiet_NaN();
  expect_error(t, "non-finite");
}
