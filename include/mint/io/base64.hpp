// mint/io/base64.hpp -- base64 (RFC 4648 section 4, the standard alphabet with '=' padding) of a byte string,
// for data: URIs in the self-contained HTML report. Debian's libb64 (libb64-dev) does the encoding; its encoder
// breaks lines every 72 characters, which this wrapper removes so the result is one line.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

extern "C" {
#include <b64/cencode.h>
}

namespace mint::io {

// ensures: the base64 text of `bytes`, 4 * ceil(size / 3) characters, no line breaks.
inline std::string base64_encode(std::string_view bytes) {
  base64_encodestate state;
  base64_init_encodestate(&state);
  std::string out;
  out.reserve(bytes.size() / 3 * 4 + 8);
  // libb64 takes int lengths: feed it blocks; its state carries the partial group from one block to the next.
  constexpr std::size_t kBlock = std::size_t{1} << 20;
  std::string buffer(2 * kBlock + 16, '\0');  // 4/3 of the block plus a '\n' per 72 characters, with room
  for (std::size_t at = 0; at < bytes.size(); at += kBlock) {
    const std::size_t n = std::min(kBlock, bytes.size() - at);
    const int written = base64_encode_block(bytes.data() + at, static_cast<int>(n), buffer.data(), &state);
    out.append(buffer.data(), static_cast<std::size_t>(written));
  }
  const int tail = base64_encode_blockend(buffer.data(), &state);
  out.append(buffer.data(), static_cast<std::size_t>(tail));
  std::erase(out, '\n');
  return out;
}

}  // namespace mint::io
