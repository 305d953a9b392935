// libFuzzer target: the synthetic-dataset reader (mint/inversion/sparse_image.hpp) on an arbitrary file.
#include "fuzz_input.hpp"
#include "mint/inversion/sparse_image.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  mint::fuzz::expect_clean([&] { (void)mint::load_synthetic_dataset(mint::fuzz::as_file(data, size)); });
  return 0;
}
