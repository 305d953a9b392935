// mint/io/idx.hpp -- the idx format of MNIST and Fashion-MNIST, raw or gzip-compressed, so the inversion
// experiments can read the real datasets (Debian ships them as .gz under /usr/share/datasets).
//
// Layout: a big-endian magic 0x00 0x00 <type code> <number of dims>, the dims as big-endian u32, then the
// values in row-major order. Only type code 0x08 (unsigned byte) is supported: it is the one the MNIST
// family uses.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <zlib.h>

#include "mint/core/error.hpp"
#include "mint/core/shape.hpp"
#include "mint/core/tensor.hpp"

namespace mint::io {

struct IdxArray {
  std::vector<std::int64_t> dims;
  std::vector<std::uint8_t> data;  // row-major, dims' product bytes
};

namespace detail {

// A file read raw or through gzip. zlib's gz* functions check for the gzip magic 0x1f 0x8b themselves and read
// anything else through unchanged, so one code path serves `.gz` and raw files. Reads are bounded by what the
// caller asks for, so a small gzip file that inflates to gigabytes (a "zip bomb") is never held in memory.
class MaybeGzipReader {
 public:
  MaybeGzipReader(const std::string& path, const char* what)
      : f_(gzopen(path.c_str(), "rb"), &gzclose), path_(path), what_(what) {
    check(f_ != nullptr, what, ": cannot open '", path, "'");
  }

  // Appends up to n bytes to out (fewer only at the end of the input); returns how many were appended. Memory
  // grows with the bytes actually read, never with n.
  std::uint64_t read(std::vector<std::uint8_t>& out, std::uint64_t n) {
    constexpr unsigned kChunk = 1u << 20;
    std::uint64_t total = 0;
    while (total < n) {
      const unsigned want = static_cast<unsigned>(std::min<std::uint64_t>(kChunk, n - total));
      const std::size_t old = out.size();
      out.resize(old + want);
      const int got = gzread(f_.get(), out.data() + old, want);
      check_stream(got);
      out.resize(old + static_cast<std::size_t>(got));
      total += static_cast<std::uint64_t>(got);
      if (got == 0) break;
    }
    return total;
  }

  // Reads and discards the rest of the input (in a fixed buffer); returns how many bytes it held.
  std::uint64_t skip_rest() {
    std::vector<std::uint8_t> scratch(1u << 16);
    std::uint64_t total = 0;
    for (;;) {
      const int got = gzread(f_.get(), scratch.data(), static_cast<unsigned>(scratch.size()));
      check_stream(got);
      if (got == 0) return total;
      total += static_cast<std::uint64_t>(got);
    }
  }

 private:
  // gzread reports a gzip stream cut short as end of input plus an error flag; surface it rather than
  // returning the partial data as if it were the whole file.
  void check_stream(int got) {
    int code = Z_OK;
    const char* msg = gzerror(f_.get(), &code);
    check(got >= 0 && (got > 0 || code == Z_OK), what_, ": error reading '", path_, "': ",
          msg ? msg : "unknown zlib error", got >= 0 ? " (truncated or corrupt gzip file?)" : "");
  }

  std::unique_ptr<gzFile_s, int (*)(gzFile)> f_;
  std::string path_;
  const char* what_;
};

inline std::uint32_t load_be32(const std::uint8_t* p) {
  return (static_cast<std::uint32_t>(p[0]) << 24) | (static_cast<std::uint32_t>(p[1]) << 16) |
         (static_cast<std::uint32_t>(p[2]) << 8) | static_cast<std::uint32_t>(p[3]);
}

inline const char* idx_type_name(std::uint8_t code) {
  switch (code) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "short";
    case 0x0C: return "int";
    case 0x0D: return "float";
    case 0x0E: return "double";
    default: return "unknown";
  }
}

}  // namespace detail

// Reads an idx file (raw or gzip-compressed). Throws mint::Error naming the path for a missing or unreadable
// file, a bad magic, a type code other than 0x08, a dims count of 0 or above 4, or a data size that does not
// match the dims (truncated files say how many bytes were expected and how many were there). Memory follows
// the bytes the dims announce and the file really holds, whichever is smaller.
inline IdxArray read_idx(const std::string& path) {
  detail::MaybeGzipReader in(path, "read_idx");
  const std::string where = "read_idx: '" + path + "': ";
  std::vector<std::uint8_t> bytes;
  in.read(bytes, 4);
  check(bytes.size() >= 4, where, "truncated: expected at least 4 header bytes, got ", bytes.size());
  check(bytes[0] == 0 && bytes[1] == 0, where, "bad magic: the first two bytes must be 0x00 0x00, got 0x",
        std::hex, static_cast<int>(bytes[0]), " 0x", static_cast<int>(bytes[1]), std::dec, " (not an idx file?)");
  const std::uint8_t type = bytes[2];
  check(type == 0x08, where, "unsupported type code 0x", std::hex, static_cast<int>(type), std::dec, " (",
        detail::idx_type_name(type), "); only 0x08 (unsigned byte) is supported");
  const int ndims = bytes[3];
  check(ndims >= 1 && ndims <= 4, where, "number of dims must be 1..4, got ", ndims);
  const std::size_t header = 4 + 4 * static_cast<std::size_t>(ndims);
  in.read(bytes, header - 4);
  check(bytes.size() >= header, where, "truncated: expected ", header, " header bytes for ", ndims,
        " dims, got ", bytes.size());

  IdxArray a;
  // Four u32 dims can multiply past 2^64; the product is checked before anything is read for it.
  std::uint64_t count = 1;
  for (int i = 0; i < ndims; ++i) {
    const std::uint32_t d = detail::load_be32(bytes.data() + 4 + 4 * i);
    a.dims.push_back(d);
    if (d != 0 && count > std::numeric_limits<std::uint64_t>::max() / d) {
      throw Error(mint::detail::concat(where, "dims product overflows (the header is corrupt)"));
    }
    count *= d;
  }
  // The data is read as it arrives (so a header that claims more than the file holds costs only what it
  // holds), and anything after it is counted, not kept.
  const std::uint64_t got = in.read(a.data, count);
  check(got >= count, where, "truncated: expected ", count, " data bytes, got ", got);
  const std::uint64_t trailing = in.skip_rest();
  check(trailing == 0, where, "size mismatch: expected ", count, " data bytes, got ", got + trailing, " (", trailing,
        " trailing bytes)");
  return a;
}

struct ImageDataset {
  Tensor<Cpu> images;       // [N, 1, H, W], byte / 255 in [0, 1]
  std::vector<int> labels;  // N class ids
};

// Loads an MNIST-style pair: images (idx, dims [N, H, W]) and labels (idx, dims [N]). `limit` >= 0 keeps at
// most the first `limit` samples; -1 keeps all. Throws mint::Error if the dims are not of that form or the
// two counts disagree (naming both).
inline ImageDataset load_mnist_like(const std::string& images_path, const std::string& labels_path,
                                    std::int64_t limit = -1) {
  check(limit >= -1, "load_mnist_like: limit must be -1 (all) or >= 0, got ", limit);
  const IdxArray img = read_idx(images_path);
  const IdxArray lab = read_idx(labels_path);
  check(img.dims.size() == 3, "load_mnist_like: '", images_path, "': images must have 3 dims [N, H, W], got ",
        img.dims.size());
  check(lab.dims.size() == 1, "load_mnist_like: '", labels_path, "': labels must have 1 dim [N], got ",
        lab.dims.size());
  check(img.dims[0] == lab.dims[0], "load_mnist_like: ", img.dims[0], " images in '", images_path, "' but ",
        lab.dims[0], " labels in '", labels_path, "'");
  const std::int64_t n = limit < 0 ? img.dims[0] : std::min(limit, img.dims[0]);
  const std::int64_t h = img.dims[1], w = img.dims[2];
  check(h >= 1 && w >= 1, "load_mnist_like: '", images_path, "': images are ", h, " x ", w,
        " pixels; they must be at least 1 x 1");

  ImageDataset ds;
  ds.images = Tensor<Cpu>::empty(Shape{n, 1, h, w});
  float* dst = ds.images.data();
  const std::int64_t total = n * h * w;
  for (std::int64_t i = 0; i < total; ++i) dst[i] = static_cast<float>(img.data[static_cast<std::size_t>(i)]) / 255.0f;
  ds.labels.assign(lab.data.begin(), lab.data.begin() + static_cast<std::ptrdiff_t>(n));
  return ds;
}

}  // namespace mint::io
