// libFuzzer target: the safetensors parser (mint/io/safetensors.hpp) on arbitrary bytes held in memory.
#include "fuzz_input.hpp"
#include "mint/io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  mint::fuzz::expect_clean([&] { (void)mint::io::parse_safetensors(data, size, "fuzz input"); });
  return 0;
}
