// libFuzzer target: DCI module files (mint/tasks/dci.hpp, DCI::load) on an arbitrary file, for the target the
// seed corpus was written for (fuzz_target.hpp: the tiny ResNet of fuzz/make_corpus.cpp).
#include "fuzz_input.hpp"
#include "fuzz_target.hpp"
#include "mint/tasks/dci.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static mint::ResNet<> target(mint::fuzz::tiny_resnet_config());
  static mint::tasks::DCI dci(target, 1);
  mint::fuzz::expect_clean([&] { dci.load(mint::fuzz::as_file(data, size)); });
  return 0;
}
