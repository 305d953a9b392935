// libFuzzer target: read_idx (mint/io/idx.hpp) on an arbitrary file, raw or gzip (zlib detects the gzip magic;
// the corpus has both). fuzz_idx_gzip.cpp fuzzes the content behind the compression.
#include "fuzz_input.hpp"
#include "mint/io/idx.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  mint::fuzz::expect_clean([&] { (void)mint::io::read_idx(mint::fuzz::as_file(data, size)); });
  return 0;
}
