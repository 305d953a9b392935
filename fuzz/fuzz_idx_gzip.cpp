// libFuzzer target: read_idx (mint/io/idx.hpp) on the gzip compression of an arbitrary input, so the mutations
// reach the idx header and data behind zlib (fuzz_idx.cpp mutates the compressed bytes themselves).
#include <zlib.h>

#include <vector>

#include "fuzz_input.hpp"
#include "mint/io/idx.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  uLongf packed_size = compressBound(static_cast<uLong>(size)) + 32;
  std::vector<std::uint8_t> gz(packed_size);
  // deflateInit2 with windowBits 15 + 16 writes the gzip wrapper (magic, header, CRC) that gzread expects.
  z_stream z{};
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return 0;
  z.next_in = const_cast<Bytef*>(data);
  z.avail_in = static_cast<uInt>(size);
  z.next_out = gz.data();
  z.avail_out = static_cast<uInt>(gz.size());
  const int rc = deflate(&z, Z_FINISH);
  packed_size = z.total_out;
  deflateEnd(&z);
  if (rc != Z_STREAM_END) return 0;
  mint::fuzz::expect_clean([&] { (void)mint::io::read_idx(mint::fuzz::as_file(gz.data(), packed_size)); });
  return 0;
}
