// The embedded Fashion-MNIST teacher and the first 1000 real test images, loaded once per test process
// (tests of mint/tasks).
#pragma once

#include <string>

#include "mint/models/vit.hpp"
#include "mint/tasks/evaluate.hpp"

namespace mint::test {

inline ViT<>& teacher() {
  static auto m = ViT<>::load(std::string(MINT_MODELS_DIR) + "/fmnist_vit.safetensors");
  return m;
}

inline const tasks::LabeledImages& test_images() {
  static auto d = tasks::load_fashion_mnist(MINT_FASHION_MNIST_DIR, false, 1000);
  return d;
}

}  // namespace mint::test
