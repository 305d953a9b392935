// The random fixture ViT of tests/fixtures/gradvit.safetensors (make_gradvit_fixtures.py: img 8, patch 2,
// 3 channels, 2 blocks, 2 heads), its hidden batch's G* and labels, and the 'far' candidate x^ [2, 3, 8, 8]
// (tests of mint/tasks/gradvit.hpp).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "test_util.hpp"

#include "mint/models/vit.hpp"
#include "mint/tasks/gradvit.hpp"

namespace mint::test {

struct GradvitFixture {
  ViT<> vit;
  tasks::gradvit::GradMap gstar;
  std::vector<int> labels;
  Tensor<> xhat;
};

inline GradvitFixture gradvit_fixture() {
  const auto& t = testing::fixture_file("gradvit.safetensors").tensors;
  std::map<std::string, Tensor<>> w;
  tasks::gradvit::GradMap g;
  for (const auto& [k, v] : t) {
    if (k.rfind("w.", 0) == 0) w[k.substr(2)] = v;
    if (k.rfind("gstar.", 0) == 0) g[k.substr(6)] = v;
  }
  std::vector<int> labels;
  const auto& lab = t.at("labels");
  for (std::int64_t i = 0; i < lab.numel(); ++i) labels.push_back(static_cast<int>(lab[i]));  // I32 is read as float
  return {ViT<>::from_tensors(w, ViTLoadOptions{.heads = 2}), g, labels, t.at("xhat.far").clone()};
}

}  // namespace mint::test
