// fuzz/fuzz_target.hpp -- the tiny ResNet the DCI seed files are written for (make_corpus.cpp) and fuzz_dci.cpp
// loads them into: DCI::load refuses module files trained for another architecture.
#pragma once

#include "mint/models/resnet.hpp"

namespace mint::fuzz {

inline ResNetConfig tiny_resnet_config() {
  ResNetConfig c;
  c.width = 1, c.img_size = 8, c.classes = 2;
  c.blocks = {1, 1, 1, 1};
  return c;
}

}  // namespace mint::fuzz
