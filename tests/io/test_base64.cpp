// base64: RFC 4648 test vectors, one line whatever the length, and a round trip through libb64's decoder across
// the wrapper's 1 MiB feeding blocks.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

extern "C" {
#include <b64/cdecode.h>
}

#include "mint/core/rng.hpp"
#include "mint/io/base64.hpp"

TEST_CASE("base64_encode gives the RFC 4648 test vectors", "[io][base64]") {
  using mint::io::base64_encode;
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("foob") == "Zm9vYg==");
  CHECK(base64_encode("fooba") == "Zm9vYmE=");
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
  CHECK(base64_encode(std::string("\0\xff\xfe", 3)) == "AP/+");
}

TEST_CASE("base64_encode of 3 MiB is one line that decodes back to the bytes", "[io][base64]") {
  // 3 MiB + 1 byte: three full feeding blocks and a tail, so a partial group crosses every block boundary.
  std::string bytes((std::size_t{3} << 20) + 1, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i)
    bytes[i] = static_cast<char>(static_cast<std::uint32_t>(mint::philox_uniform(5, 0, i) * 256.0f));
  const std::string text = mint::io::base64_encode(bytes);
  REQUIRE(text.size() == (bytes.size() + 2) / 3 * 4);
  REQUIRE(text.find('\n') == std::string::npos);
  base64_decodestate state;
  base64_init_decodestate(&state);
  std::string back(bytes.size() + 8, '\0');
  const int n = base64_decode_block(text.data(), static_cast<int>(text.size()), back.data(), &state);
  back.resize(static_cast<std::size_t>(n));
  REQUIRE(back == bytes);
}
