// mint/io/sha256.hpp -- SHA-256 digests (FIPS 180-4) through OpenSSL's libcrypto EVP interface, as lowercase hex:
// the shard and model hashes of a sharded synthetic dataset (mint/inversion/sparse_image.hpp, mint/tasks/
// synthesis.hpp). `sha256sum FILE` prints the same digest.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "mint/core/error.hpp"

namespace mint::io {

namespace detail {

// An EVP digest context computing SHA-256; every call's failure is an error naming `what`.
class Sha256 {
 public:
  explicit Sha256(std::string what) : what_(std::move(what)), ctx_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
    check(ctx_ != nullptr && EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) == 1,
          "sha256: cannot initialise OpenSSL's SHA-256 for ", what_);
  }
  void update(const void* data, std::size_t n) {
    check(EVP_DigestUpdate(ctx_.get(), data, n) == 1, "sha256: OpenSSL's update failed for ", what_);
  }
  // ensures: 64 lowercase hex digits.
  std::string hex() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int len = 0;
    check(EVP_DigestFinal_ex(ctx_.get(), md.data(), &len) == 1 && len == 32, "sha256: OpenSSL's final step failed for ",
          what_);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out(64, '0');
    for (unsigned int i = 0; i < 32; ++i) {
      out[2 * i] = kHex[md[i] >> 4];
      out[2 * i + 1] = kHex[md[i] & 15];
    }
    return out;
  }

 private:
  std::string what_;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

}  // namespace detail

// The SHA-256 of `bytes`, 64 lowercase hex digits.
inline std::string sha256_hex(std::string_view bytes) {
  detail::Sha256 h("a buffer");
  h.update(bytes.data(), bytes.size());
  return h.hex();
}

// The SHA-256 of the file at `path`, read in 1 MiB blocks (constant memory whatever its size).
// Throws mint::Error naming the path if it cannot be opened or read.
inline std::string sha256_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.is_open(), "sha256: cannot open '", path, "': ", std::strerror(errno));
  detail::Sha256 h("'" + path + "'");
  std::string block(1 << 20, '\0');
  while (in) {
    in.read(block.data(), static_cast<std::streamsize>(block.size()));
    if (in.gcount() > 0) h.update(block.data(), static_cast<std::size_t>(in.gcount()));
  }
  check(in.eof() && !in.bad(), "sha256: failed reading '", path, "'");
  return h.hex();
}

}  // namespace mint::io
