// libFuzzer target: ResNet<Cpu>::load (mint/models/resnet.hpp) on an arbitrary file, and one eval-mode forward
// pass on a zero image when the loaded model is small.
#include "fuzz_input.hpp"
#include "mint/models/resnet.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  mint::fuzz::expect_clean([&] {
    auto net = mint::ResNet<>::load(mint::fuzz::as_file(data, size));
    const auto& c = net.config();
    if (c.img_size <= 16 && c.in_chans <= 4 && c.width <= 4) {
      net.eval();
      (void)net.forward(mint::Tensor<>::zeros(mint::Shape{1, c.in_chans, c.img_size, c.img_size}));
    }
  });
  return 0;
}
