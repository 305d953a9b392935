// mint/io/safetensors.hpp -- reading and writing .safetensors files (the format timm / Hugging Face publish
// ViT weights in), so pretrained models load without Python.
//
// Layout: an 8-byte little-endian u64 N, N bytes of JSON header, then the data buffer. Each header entry is
// {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]} with offsets relative to the buffer start;
// the optional "__metadata__" entry maps strings to strings.
//
// Reading converts every tensor to float32, since mint computes in float32 only:
//   F32, F16, BF16  exactly (F16 subnormals, infinities and NaNs included);
//   F64             rounded to nearest float32 (magnitudes beyond float's range become +-inf);
//   I64, I32, I16, I8, U8, BOOL  converted to float: integers above 2^24 in magnitude lose precision. Integer
//                   tensors are meant for labels and indices, which are far below that.
// The reader treats the file as untrusted: every size and offset is checked (with overflow-safe arithmetic)
// before any byte is touched, and a malformed file throws mint::Error naming the file and the problem. It
// enforces the format's rules as the reference implementation (safetensors/src/tensor.rs, validate) states
// them: the header is a JSON object with unique keys, each entry has exactly "dtype", "shape" and
// "data_offsets", and the tensors' byte ranges tile the data buffer exactly -- the first starts at 0, each
// starts where the previous one ends (no holes, no overlap, no aliasing) and the last ends at the file's end.
// JSON nesting is bounded while parsing (a legitimate header is 3 levels deep), so neither the parser nor an
// error message's dump() ever sees a deep document, and nothing is allocated for a tensor before the whole
// header has been checked (the float32 copies are then at most 4x the data bytes: U8/I8/BOOL -> F32).
//
// Writing goes through mint::io::write_atomically: a reader sees the previous file or the new one, never part.
#pragma once

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mint/core/error.hpp"
#include "mint/core/shape.hpp"
#include "mint/core/tensor.hpp"
#include "mint/io/atomic_file.hpp"

namespace mint::io {

struct SafetensorsFile {
  std::map<std::string, Tensor<Cpu>> tensors;   // every tensor, converted to float32
  std::map<std::string, std::string> dtypes;    // original dtype string per name ("F32", "BF16", ...)
  std::map<std::string, std::string> metadata;  // the "__metadata__" entry (string -> string)
  std::string source;                           // where the bytes came from, for error messages

  // The tensor called `name`; throws naming the key, the source and a few of the names that do exist.
  [[nodiscard]] const Tensor<Cpu>& at(const std::string& name) const;
  [[nodiscard]] bool contains(const std::string& name) const { return tensors.count(name) != 0; }
};

namespace detail {

// The safetensors reference implementation refuses headers above 100 MB; so do we, so that a corrupt length
// field cannot make the JSON parser chew on (or allocate for) gigabytes of tensor data.
inline constexpr std::uint64_t kMaxSafetensorsHeader = 100'000'000;
// A valid header nests 3 deep (object -> entry -> shape array) and its arrays hold at most Shape::kMaxRank
// values; anything deeper or longer is refused while parsing, before it is built.
inline constexpr int kMaxSafetensorsDepth = 3;
inline constexpr std::size_t kMaxSafetensorsArray = 64;

// The checks nlohmann's parser leaves to us, run on its parse events (its parser callback): unique keys in
// every object (nlohmann itself keeps the last of duplicate keys), bounded nesting, bounded arrays. Throws
// mint::Error naming the key where it stops.
class HeaderGuard {
 public:
  explicit HeaderGuard(std::string where) : where_(std::move(where)) {}

  bool operator()(int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    switch (event) {
      case E::object_start:
      case E::array_start:
        count_value();
        check(static_cast<int>(levels_.size()) < kMaxSafetensorsDepth, where_, "header nests deeper than ",
              kMaxSafetensorsDepth, " levels", at(), "; a safetensors header is {name: {dtype, shape, data_offsets}}");
        levels_.push_back(Level{event == E::object_start, {}, {}, 0});
        break;
      case E::object_end:
      case E::array_end:
        levels_.pop_back();
        break;
      case E::key: {
        Level& l = levels_.back();
        l.key = parsed.get<std::string>();
        check(l.keys.insert(l.key).second, where_, "duplicate key '", l.key, "'", at_parent(),
              " (JSON parsers disagree on which copy wins; safetensors forbids duplicates)");
        break;
      }
      case E::value:
        count_value();
        break;
    }
    return true;
  }

 private:
  struct Level {
    bool object;
    std::set<std::string> keys;
    std::string key;       // the latest key of an object
    std::size_t values;    // elements so far, for an array
  };
  void count_value() {
    if (levels_.empty() || levels_.back().object) return;
    check(++levels_.back().values <= kMaxSafetensorsArray, where_, "an array", at(), " holds more than ",
          kMaxSafetensorsArray, " values");
  }
  // " in 'a' -> 'b'": the keys leading to the current position.
  [[nodiscard]] std::string path(std::size_t levels) const {
    std::string p;
    for (std::size_t i = 0; i < levels; ++i)
      if (levels_[i].object) p += (p.empty() ? " in '" : "' -> '") + levels_[i].key;
    return p.empty() ? p : p + "'";
  }
  [[nodiscard]] std::string at() const { return path(levels_.size()); }
  [[nodiscard]] std::string at_parent() const { return path(levels_.size() - 1); }

  std::string where_;
  std::vector<Level> levels_;
};

// Byte-wise assembly: independent of host endianness and of alignment.
inline std::uint64_t load_le(const std::uint8_t* p, int nbytes) {
  std::uint64_t v = 0;
  for (int i = nbytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// IEEE binary16 -> binary32, exact for every input (binary32 has more range and precision than binary16).
inline float f16_to_f32(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  std::uint32_t mant = h & 0x3ffu;
  std::uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;  // +-0
    } else {
      // Subnormal: mant * 2^-24. Shift the leading 1 into the implicit-bit position; binary32 represents the
      // result as a normal number.
      std::uint32_t e = 127 - 15 + 1;
      while ((mant & 0x400u) == 0) {
        mant <<= 1;
        --e;
      }
      bits = sign | (e << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf, or NaN with its payload kept
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

// bfloat16 is the top half of a binary32.
inline float bf16_to_f32(std::uint16_t h) { return std::bit_cast<float>(static_cast<std::uint32_t>(h) << 16); }

// double -> float rounding to nearest without the undefined behaviour C++ gives out-of-range conversions.
inline float f64_to_f32(double d) {
  constexpr double kMax = static_cast<double>(std::numeric_limits<float>::max());
  // The halfway point between FLT_MAX and 2^128: from there on round-to-nearest-even gives infinity.
  constexpr double kOverflow = 340282356779733661637539395458142568448.0;  // 2^128 - 2^103
  if (d > kMax) return d >= kOverflow ? std::numeric_limits<float>::infinity() : std::numeric_limits<float>::max();
  if (d < -kMax) return d <= -kOverflow ? -std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::max();
  return static_cast<float>(d);  // NaN and in-range values convert normally
}

// Bytes per element for a dtype string, or 0 when the dtype is not one mint reads.
inline std::size_t safetensors_dtype_size(const std::string& dtype) {
  static const std::map<std::string, std::size_t> kSizes = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2},
                                                            {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1},
                                                            {"U8", 1},  {"BOOL", 1}};
  const auto it = kSizes.find(dtype);
  return it == kSizes.end() ? 0 : it->second;
}

// Converts `n` elements of `dtype` at `src` (any alignment, little-endian) to float32 at `dst`.
inline void convert_to_f32(const std::string& dtype, const std::uint8_t* src, float* dst, std::int64_t n) {
  if (dtype == "F32") {
    if constexpr (std::endian::native == std::endian::little) {
      if (n) std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float));
    } else {
      for (std::int64_t i = 0; i < n; ++i)
        dst[i] = std::bit_cast<float>(static_cast<std::uint32_t>(load_le(src + 4 * i, 4)));
    }
  } else if (dtype == "F16") {
    for (std::int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(static_cast<std::uint16_t>(load_le(src + 2 * i, 2)));
  } else if (dtype == "BF16") {
    for (std::int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(static_cast<std::uint16_t>(load_le(src + 2 * i, 2)));
  } else if (dtype == "F64") {
    for (std::int64_t i = 0; i < n; ++i) dst[i] = f64_to_f32(std::bit_cast<double>(load_le(src + 8 * i, 8)));
  } else if (dtype == "I64") {
    for (std::int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(static_cast<std::int64_t>(load_le(src + 8 * i, 8)));
  } else if (dtype == "I32") {
    for (std::int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(static_cast<std::int32_t>(load_le(src + 4 * i, 4)));
  } else if (dtype == "I16") {
    for (std::int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(static_cast<std::int16_t>(load_le(src + 2 * i, 2)));
  } else if (dtype == "I8") {
    for (std::int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(static_cast<std::int8_t>(src[i]));
  } else if (dtype == "U8") {
    for (std::int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]);
  } else if (dtype == "BOOL") {
    for (std::int64_t i = 0; i < n; ++i) dst[i] = src[i] != 0 ? 1.0f : 0.0f;
  } else {
    throw Error("safetensors: internal error: no converter for dtype " + dtype);
  }
}

using mint::detail::checked_mul;

// Reads a non-negative JSON integer that fits in int64; returns false for anything else (negative, float,
// string, 2^64-sized, ...).
inline bool json_to_index(const nlohmann::json& j, std::int64_t& out) {
  if (!j.is_number_unsigned()) {
    if (j.is_number_integer() && j.get<std::int64_t>() >= 0) {  // nlohmann may store small values as signed
      out = j.get<std::int64_t>();
      return true;
    }
    return false;
  }
  const std::uint64_t v = j.get<std::uint64_t>();
  if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return false;
  out = static_cast<std::int64_t>(v);
  return true;
}

}  // namespace detail

namespace detail {
// The tensor `name` of a file's tensors; throws naming the key, the reader (`kind`), the source and a few of the
// names that do exist. Shared by SafetensorsFile and PytorchFile (io/pytorch.hpp).
inline const Tensor<Cpu>& named_tensor(const std::map<std::string, Tensor<Cpu>>& tensors, const std::string& name,
                                       const char* kind, const std::string& source) {
  const auto it = tensors.find(name);
  if (it != tensors.end()) return it->second;
  std::string available;
  int shown = 0;
  for (const auto& [key, value] : tensors) {
    if (shown == 5) {
      available += ", ...";
      break;
    }
    available += (shown++ ? ", " : "") + ("'" + key + "'");
  }
  throw Error(mint::detail::concat(kind, ": no tensor '", name, "' in ", source, " (it has ", tensors.size(),
                                   " tensors", tensors.empty() ? "" : ": ", available, ")"));
}
}  // namespace detail

inline const Tensor<Cpu>& SafetensorsFile::at(const std::string& name) const {
  return detail::named_tensor(tensors, name, "safetensors", source);
}

// Parses a whole safetensors file held in memory. `source` names it in error messages. Throws mint::Error on
// any malformed input (see the rules at the top); never reads outside [bytes, bytes + size).
inline SafetensorsFile parse_safetensors(const std::uint8_t* bytes, std::size_t size, const std::string& source) {
  using nlohmann::json;
  const std::string where = "safetensors: " + source + ": ";
  check(size >= 8, where, "file is ", size, " bytes, shorter than the 8-byte header length field");
  const std::uint64_t header_len = detail::load_le(bytes, 8);
  const std::uint64_t rest = size - 8;
  check(header_len <= rest, where, "header length ", header_len, " bytes is larger than the ", rest,
        " bytes that follow the length field (file is ", size, " bytes); the file is truncated or not safetensors");
  check(header_len <= detail::kMaxSafetensorsHeader, where, "header length ", header_len,
        " bytes exceeds the format's limit of ", detail::kMaxSafetensorsHeader, " bytes");

  const auto* header_begin = reinterpret_cast<const char*>(bytes + 8);
  json header;
  try {
    header = json::parse(header_begin, header_begin + header_len, detail::HeaderGuard(where));
  } catch (const json::exception& e) {
    throw Error(mint::detail::concat(where, "header is not valid JSON: ", e.what()));
  }
  check(header.is_object(), where, "header must be a JSON object, got a JSON ", header.type_name());

  const std::uint8_t* buffer = bytes + 8 + header_len;
  const std::uint64_t buffer_size = rest - header_len;

  // Pass 1: check every entry and collect what to read; nothing is allocated for a tensor yet.
  struct Entry {
    std::string name, dtype;
    Shape shape;
    std::int64_t numel, begin, end;
  };
  std::vector<Entry> entries;
  SafetensorsFile file;
  file.source = source;
  // Iterators rather than items() + structured bindings: the latter needs nlohmann-json >= 3.11.
  for (auto item = header.cbegin(); item != header.cend(); ++item) {
    const std::string& name = item.key();
    const json& entry = item.value();
    if (name == "__metadata__") {
      check(entry.is_object(), where, "\"__metadata__\" must be a JSON object, got a JSON ", entry.type_name());
      for (auto kv = entry.cbegin(); kv != entry.cend(); ++kv) {
        check(kv.value().is_string(), where, "\"__metadata__\" value for '", kv.key(),
              "' must be a string, got a JSON ", kv.value().type_name());
        file.metadata[kv.key()] = kv.value().get<std::string>();
      }
      continue;
    }
    const std::string what = where + "tensor '" + name + "': ";
    check(entry.is_object(), what, "entry must be a JSON object, got a JSON ", entry.type_name());
    for (const char* field : {"dtype", "shape", "data_offsets"})
      check(entry.contains(field), what, "entry is missing \"", field, "\"");
    for (auto field = entry.cbegin(); field != entry.cend(); ++field)
      check(field.key() == "dtype" || field.key() == "shape" || field.key() == "data_offsets", what,
            "unknown field \"", field.key(), "\" (an entry has exactly \"dtype\", \"shape\" and \"data_offsets\")");
    const json& jdtype = entry["dtype"];
    const json& jshape = entry["shape"];
    const json& joffsets = entry["data_offsets"];
    check(jdtype.is_string(), what, "\"dtype\" must be a string, got a JSON ", jdtype.type_name());
    check(jshape.is_array(), what, "\"shape\" must be an array, got a JSON ", jshape.type_name());
    check(joffsets.is_array(), what, "\"data_offsets\" must be an array, got a JSON ", joffsets.type_name());

    const std::string dtype = jdtype.get<std::string>();
    const std::size_t elem_size = detail::safetensors_dtype_size(dtype);
    check(elem_size != 0, what, "unsupported dtype \"", dtype,
          "\" (mint reads F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");

    // Bounded by the parse guard (no nested containers, at most kMaxSafetensorsArray values), so dump() is safe.
    const std::string shape_text = jshape.dump();
    check(jshape.size() <= static_cast<std::size_t>(Shape::kMaxRank), what, "rank ", jshape.size(),
          " exceeds mint's maximum rank ", Shape::kMaxRank, " (shape ", shape_text, ")");
    Shape shape;
    // numel is accumulated in the same order Shape::numel() uses, so if this never overflows, neither does that.
    std::int64_t numel = 1;
    for (const json& jd : jshape) {
      std::int64_t d = 0;
      check(detail::json_to_index(jd, d), what, "shape ", shape_text,
            " must hold non-negative integers (that fit in int64), found ", jd.dump());
      check(detail::checked_mul(numel, d, numel), what, "shape ", shape_text,
            ": element count overflows int64");
      shape.push_back(d);
    }
    std::int64_t expected_bytes = 0;
    check(detail::checked_mul(numel, static_cast<std::int64_t>(elem_size), expected_bytes), what, "shape ",
          shape_text, " of ", dtype, ": byte count overflows int64");

    std::int64_t begin = 0, end = 0;
    check(joffsets.size() == 2 && detail::json_to_index(joffsets[0], begin) &&
              detail::json_to_index(joffsets[1], end) && begin <= end,
          what, "\"data_offsets\" must be two ascending non-negative integers [begin, end], got ", joffsets.dump());
    check(static_cast<std::uint64_t>(end) <= buffer_size, what, "data_offsets [", begin, ", ", end,
          "] lie outside the data buffer of ", buffer_size, " bytes");
    check(end - begin == expected_bytes, what, "data_offsets [", begin, ", ", end, "] span ", end - begin,
          " bytes but shape ", shape.str(), " of ", dtype, " needs ", expected_bytes, " bytes");
    entries.push_back(Entry{name, dtype, shape, numel, begin, end});
  }

  // The byte ranges, in file order, must tile [0, buffer_size): ties (zero-size tensors) sort by end.
  std::vector<const Entry*> order;
  for (const auto& e : entries) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  std::int64_t covered = 0;
  const Entry* previous = nullptr;
  for (const Entry* e : order) {
    if (e->begin > covered) {
      throw Error(previous ? mint::detail::concat(where, "a hole of ", e->begin - covered, " bytes in the data buffer "
                                                  "between tensor '", previous->name, "' (ends at ", covered,
                                                  ") and tensor '", e->name, "' (begins at ", e->begin, ")")
                           : mint::detail::concat(where, "the data buffer does not start with a tensor: the first, '",
                                                  e->name, "', begins at offset ", e->begin, ", not 0"));
    }
    check(e->begin == covered, where, "tensors '", previous ? previous->name : "", "' [",
          previous ? previous->begin : 0, ", ", covered, "] and '", e->name, "' [", e->begin, ", ", e->end,
          "] overlap in the data buffer (each byte belongs to exactly one tensor)");
    covered = e->end;
    previous = e;
  }
  check(static_cast<std::uint64_t>(covered) == buffer_size, where, buffer_size - static_cast<std::uint64_t>(covered),
        " trailing bytes in the data buffer after the last tensor", previous ? " '" + previous->name + "'" : "",
        " (its tensors cover ", covered, " of ", buffer_size, " bytes)");

  // Pass 2: convert.
  for (const auto& e : entries) {
    Tensor<Cpu> t = Tensor<Cpu>::empty(e.shape);
    detail::convert_to_f32(e.dtype, buffer + e.begin, t.data(), e.numel);
    file.tensors.emplace(e.name, std::move(t));
    file.dtypes.emplace(e.name, e.dtype);
  }
  return file;
}

// The metadata value `key` as an integer in [lo, hi]; nullopt when the key is absent. Throws mint::Error naming
// the key, the value and `source` when the value is not exactly a decimal integer in that range ("12abc", " 3",
// "1e9" and "99999999999" are all refused, unlike std::stoi).
inline std::optional<std::int64_t> metadata_int(const std::map<std::string, std::string>& metadata,
                                                const std::string& key, std::int64_t lo, std::int64_t hi,
                                                const std::string& source) {
  const auto it = metadata.find(key);
  if (it == metadata.end()) return std::nullopt;
  const std::string& text = it->second;
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  check(ec == std::errc() && end == text.data() + text.size() && v >= lo && v <= hi, source, ": metadata ", key,
        " = '", text.substr(0, 40), text.size() > 40 ? "...'" : "'", " is not an integer in [", lo, ", ", hi, "]");
  return v;
}

namespace detail {
// The bytes of the regular file at `path` (its size from the filesystem, not from seeking: a directory opens as
// a stream on Linux and then reports a nonsense size). `what` starts every error message.
inline std::vector<std::uint8_t> read_file_bytes(const std::string& path, const std::string& what) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  check(!ec && std::filesystem::exists(status), what, ": cannot open '", path, "': no such file");
  check(std::filesystem::is_regular_file(status), what, ": cannot open '", path, "': not a regular file");
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  check(!ec, what, ": cannot determine the size of '", path, "': ", ec.message());
  std::ifstream in(path, std::ios::binary);
  check(in.is_open(), what, ": cannot open '", path, "' for reading");
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  if (size > 0) in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  check(static_cast<bool>(in) && static_cast<std::uintmax_t>(in.gcount()) == size, what, ": failed to read ", size,
        " bytes from '", path, "'");
  return bytes;
}
}  // namespace detail

// Reads the whole file at `path` and parses it. Throws mint::Error if it cannot be read or is malformed.
inline SafetensorsFile load_safetensors(const std::string& path) {
  const auto bytes = detail::read_file_bytes(path, "safetensors");
  return parse_safetensors(bytes.data(), bytes.size(), path);
}

// Writes `tensors` as F32 little-endian to `path`, names sorted, with `metadata` as "__metadata__" when
// non-empty. The header is padded with spaces to a multiple of 8 bytes so the data buffer is 8-byte aligned
// for readers that map the file. The file appears atomically (write_atomically): a failure or a kill part-way
// leaves any previous file at `path` as it was. Throws mint::Error naming the path if it cannot be written.
inline void save_safetensors(const std::string& path, const std::map<std::string, Tensor<Cpu>>& tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
  using nlohmann::json;
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::int64_t offset = 0;
  for (const auto& [name, t] : tensors) {  // std::map iterates in sorted order
    check(name != "__metadata__", "save_safetensors: '", path, "': \"__metadata__\" is reserved, not a tensor name");
    check(t.numel() == 0 || t.data() != nullptr, "save_safetensors: '", path, "': tensor '", name,
          "' has no storage (default-constructed?)");
    const std::int64_t nbytes = t.numel() * static_cast<std::int64_t>(sizeof(float));
    header[name] = {{"dtype", "F32"},
                    {"shape", std::vector<std::int64_t>(t.shape().begin(), t.shape().end())},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');

  std::uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(text.size()) >> (8 * i));
  write_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    check(out.is_open(), "save_safetensors: cannot open '", path, "' for writing");
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& [name, t] : tensors) {
      if (t.numel() == 0) continue;
      if constexpr (std::endian::native == std::endian::little) {
        out.write(reinterpret_cast<const char*>(t.data()), static_cast<std::streamsize>(t.numel() * sizeof(float)));
      } else {
        for (std::int64_t i = 0; i < t.numel(); ++i) {
          const std::uint32_t bits = std::bit_cast<std::uint32_t>(t[i]);
          const char le[4] = {static_cast<char>(bits), static_cast<char>(bits >> 8), static_cast<char>(bits >> 16),
                              static_cast<char>(bits >> 24)};
          out.write(le, 4);
        }
      }
    }
    out.flush();
    check(static_cast<bool>(out), "save_safetensors: failed writing '", path, "' (disk full or I/O error?)");
  });
}

}  // namespace mint::io
