// The embedded Fashion-MNIST teachers (models/fmnist_vit.safetensors, and models/fmnist_vit_deit.safetensors
// trained with DeiT's augmentation; both by mint-train-teacher): each loads with no options (heads from its
// mint.num_heads metadata), has the 49-patch shape the inversion experiments rely on, and reaches the accuracy its
// recipe (models/<name>.json) records on the full test set.
#include "test_util.hpp"

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mint/io/idx.hpp"
#include "mint/io/safetensors.hpp"
#include "mint/models/vit.hpp"

namespace teacher_test {

using namespace mint;

// Checks models/<name>.{safetensors,json} as the file comment says; min_acc: the accuracy it must reach at least.
void check_embedded_teacher(const std::string& name, double min_acc) {
  const std::string dir = MINT_MODELS_DIR, data = MINT_FASHION_MNIST_DIR;
  std::ifstream jf(dir + "/" + name + ".json");
  INFO("recipe " << dir << "/" << name << ".json (written by mint-train-teacher)");
  REQUIRE(jf.good());
  const auto recipe = nlohmann::json::parse(jf);
  REQUIRE(recipe.at("status") == "complete");

  auto model = ViT<>::load(dir + "/" + name + ".safetensors");
  const auto& cfg = model.config();
  REQUIRE(cfg.img_size == 28);
  REQUIRE(cfg.in_chans == 1);
  REQUIRE(cfg.num_patches() == 49);
  REQUIRE(cfg.classes == 10);
  REQUIRE(!cfg.distilled);
  const auto& arch = recipe.at("model");
  REQUIRE(arch.at("dim") == cfg.dim);
  REQUIRE(arch.at("depth") == cfg.depth);
  REQUIRE(arch.at("heads") == cfg.heads);
  REQUIRE(arch.at("mlp_hidden") == cfg.mlp_hidden);
  const auto meta = io::load_safetensors(dir + "/" + name + ".safetensors").metadata;
  REQUIRE(meta.count("mint.test_accuracy") == 1);

  const float mean = recipe.at("normalization").at("mean"), std = recipe.at("normalization").at("std");
  auto ds = io::load_mnist_like(data + "/t10k-images-idx3-ubyte.gz", data + "/t10k-labels-idx1-ubyte.gz");
  REQUIRE(ds.images.dim(0) == 10000);
  for (std::int64_t i = 0; i < ds.images.numel(); ++i) ds.images[i] = (ds.images[i] - mean) / std;

  const std::int64_t n = ds.images.dim(0), per = 28 * 28, eb = 500;
  std::int64_t correct = 0;
  for (std::int64_t s = 0; s < n; s += eb) {
    auto xb = Tensor<>::empty(Shape{eb, 1, 28, 28});
    std::copy(ds.images.data() + s * per, ds.images.data() + (s + eb) * per, xb.data());
    auto logits = model.forward(xb);
    for (std::int64_t i = 0; i < eb; ++i) {
      const float* r = logits.data() + i * 10;
      correct += (std::max_element(r, r + 10) - r) == ds.labels[static_cast<std::size_t>(s + i)];
    }
  }
  const double acc = static_cast<double>(correct) / static_cast<double>(n);
  const double recorded = recipe.at("test_accuracy");
  CAPTURE(acc, recorded);
  REQUIRE(acc >= min_acc);
  // The same weights, data and normalisation: only float summation order (thread count, batch size) differs.
  REQUIRE(std::abs(acc - recorded) <= 0.001);
  REQUIRE(std::abs(std::stod(meta.at("mint.test_accuracy")) - recorded) <= 1e-6);
}

TEST_CASE("Fashion-MNIST teacher: >= 88% on the 10000 test images, as its recipe records", "[models][teacher][slow]") {
  check_embedded_teacher("fmnist_vit", 0.88);
}

TEST_CASE("DeiT-augmented Fashion-MNIST teacher: >= 87% on the 10000 test images, as its recipe records",
          "[models][teacher][slow]") {
  check_embedded_teacher("fmnist_vit_deit", 0.87);
}

}  // namespace teacher_test
