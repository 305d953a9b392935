// mint/io/sha256.hpp: OpenSSL's SHA-256 through the EVP wrapper, against the FIPS 180-2 example digests, and the
// file digest (read in 1 MiB blocks) against the buffer digest of the same bytes.
#include <fstream>
#include <string>

#include "mint/io/sha256.hpp"
#include "test_util.hpp"

TEST_CASE("sha256_hex gives the FIPS 180-2 digests", "[io][sha256]") {
  // FIPS 180-2 Appendix B.1 and B.2, and the empty message
  CHECK(mint::io::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(mint::io::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(mint::io::sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("sha256_file equals sha256_hex of the file's bytes across block boundaries", "[io][sha256]") {
  mint::testing::TempFile f(".bin");
  std::string bytes((1 << 20) + 12345, '\0');  // more than one 1 MiB read block
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 2654435761u) >> 13);
  std::ofstream(f.str(), std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  CHECK(mint::io::sha256_file(f.str()) == mint::io::sha256_hex(bytes));
  bytes.back() = static_cast<char>(bytes.back() + 1);
  CHECK(mint::io::sha256_file(f.str()) != mint::io::sha256_hex(bytes));
  REQUIRE_THROWS_WITH(mint::io::sha256_file(f.str() + ".missing"), Catch::Contains(".missing"));
}
