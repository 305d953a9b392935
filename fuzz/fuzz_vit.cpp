// libFuzzer target: ViT<Cpu>::load (mint/models/vit.hpp) on an arbitrary file, and one forward pass on a zero
// image when the loaded model is small (a model that loads must also run: dim 0 loaded and then divided by 0).
#include "fuzz_input.hpp"
#include "mint/models/vit.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  mint::fuzz::expect_clean([&] {
    auto vit = mint::ViT<>::load(mint::fuzz::as_file(data, size));
    const auto& c = vit.config();
    if (static_cast<std::int64_t>(c.in_chans) * c.img_size * c.img_size <= 4096 && c.depth <= 4)
      (void)vit.forward(mint::Tensor<>::zeros(mint::Shape{1, c.in_chans, c.img_size, c.img_size}));
  });
  return 0;
}
