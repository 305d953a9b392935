// safetensors: F32 round trip with metadata, exact F16/BF16/integer conversion from hand-built bytes, a clear
// mint::Error (never a crash) for every kind of malformed file, the format's rules (unique keys, bounded
// nesting, exact fields, data tiling the buffer), and the atomic writer (a failed or killed write keeps the
// previous file).
#include "test_util.hpp"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "mint/io/safetensors.hpp"

using mint::Shape;
using mint::testing::TempFile;
using mint::Tensor;
using mint::io::parse_safetensors;

namespace {

void put_le(std::vector<std::uint8_t>& out, std::uint64_t v, int nbytes) {
  for (int i = 0; i < nbytes; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

// length field + header + data; `len` overrides the length field (to fake a lying header).
std::vector<std::uint8_t> make_file(const std::string& header, const std::vector<std::uint8_t>& data,
                                    std::uint64_t len = std::numeric_limits<std::uint64_t>::max()) {
  std::vector<std::uint8_t> out;
  put_le(out, len == std::numeric_limits<std::uint64_t>::max() ? header.size() : len, 8);
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

mint::io::SafetensorsFile parse(const std::vector<std::uint8_t>& bytes, const std::string& source = "test.st") {
  return parse_safetensors(bytes.data(), bytes.size(), source);
}

// A one-tensor header.
std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
  return "{\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}}";
}

// Reference binary16 decoding by arithmetic, independent of the bit manipulation under test.
float f16_reference(std::uint16_t h) {
  const int sign = (h & 0x8000) ? -1 : 1;
  const int exp = (h >> 10) & 0x1f;
  const int mant = h & 0x3ff;
  if (exp == 0x1f) return mant ? std::numeric_limits<float>::quiet_NaN() : sign * std::numeric_limits<float>::infinity();
  if (exp == 0) return static_cast<float>(sign * std::ldexp(static_cast<double>(mant), -24));
  return static_cast<float>(sign * std::ldexp(1.0 + mant / 1024.0, exp - 15));
}

}  // namespace

TEST_CASE("safetensors F32 round trip keeps values, shapes, names and metadata", "[io][safetensors]") {
  std::map<std::string, Tensor<>> tensors;
  tensors["b.weight"] = Tensor<>::from(Shape{2, 3}, {1.f, -2.5f, 3.25f, 0.f, -0.f, 1e-30f});
  tensors["a.bias"] = Tensor<>::from(Shape{4}, {std::numeric_limits<float>::infinity(), 7.f, 8.f, 9.f});
  tensors["scalar"] = Tensor<>::from(Shape{}, {42.f});
  tensors["empty"] = Tensor<>::zeros(Shape{0, 3});
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "hello \"json\""}};

  TempFile tmp(".safetensors");
  mint::io::save_safetensors(tmp.path.string(), tensors, meta);
  const auto f = mint::io::load_safetensors(tmp.path.string());

  REQUIRE(f.source == tmp.path.string());
  REQUIRE(f.metadata == meta);
  REQUIRE(f.tensors.size() == tensors.size());
  for (const auto& [name, t] : tensors) {
    REQUIRE(f.contains(name));
    REQUIRE(f.dtypes.at(name) == "F32");
    const auto& g = f.at(name);
    REQUIRE(g.shape() == t.shape());
    for (std::int64_t i = 0; i < t.numel(); ++i) REQUIRE(std::memcmp(&g.data()[i], &t.data()[i], 4) == 0);
  }
  REQUIRE_FALSE(f.contains("missing"));

  // The layout the spec asks for: 8-aligned header padded with spaces, names sorted.
  std::ifstream in(tmp.path, std::ios::binary);
  std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<std::uint8_t>(raw[static_cast<std::size_t>(i)]);
  REQUIRE(n % 8 == 0);
  const std::string header(raw.begin() + 8, raw.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  REQUIRE(header.find("a.bias") < header.find("b.weight"));
  REQUIRE(header.find("b.weight") < header.find("empty"));
  REQUIRE(raw.size() == 8 + n + (6 + 4 + 1) * 4);
}

TEST_CASE("safetensors without metadata writes no __metadata__ entry", "[io][safetensors]") {
  TempFile tmp(".safetensors");
  mint::io::save_safetensors(tmp.path.string(), {{"x", Tensor<>::full(Shape{3}, 2.f)}});
  std::ifstream in(tmp.path, std::ios::binary);
  const std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(raw.find("__metadata__") == std::string::npos);
  const auto f = mint::io::load_safetensors(tmp.path.string());
  REQUIRE(f.metadata.empty());
  REQUIRE(f.at("x")[2] == 2.f);
}

TEST_CASE("safetensors reads F16 exactly, including subnormals, infinities and NaN", "[io][safetensors]") {
  const std::vector<std::uint16_t> halves = {0x3C00, 0xC000, 0x7C00, 0xFC00, 0x0001, 0x03FF, 0x7BFF, 0x8000, 0x3555, 0x7E00};
  std::vector<std::uint8_t> data;
  for (auto h : halves) put_le(data, h, 2);
  const auto f = parse(make_file(entry("h", "F16", "[2,5]", "[0,20]"), data));
  REQUIRE(f.dtypes.at("h") == "F16");
  const auto& t = f.at("h");
  REQUIRE(t.shape() == Shape{2, 5});
  REQUIRE(t[0] == 1.0f);
  REQUIRE(t[1] == -2.0f);
  REQUIRE(t[2] == std::numeric_limits<float>::infinity());
  REQUIRE(t[3] == -std::numeric_limits<float>::infinity());
  REQUIRE(t[4] == std::ldexp(1.0f, -24));              // smallest subnormal
  REQUIRE(t[5] == 1023.0f * std::ldexp(1.0f, -24));    // largest subnormal
  REQUIRE(t[6] == 65504.0f);                           // largest finite half
  REQUIRE(t[7] == 0.0f);
  REQUIRE(std::signbit(t[7]));
  REQUIRE(t[8] == 0.333251953125f);                    // nearest half to 1/3
  REQUIRE(std::isnan(t[9]));

  // Every one of the 65536 bit patterns against an arithmetic reference.
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float got = mint::io::detail::f16_to_f32(static_cast<std::uint16_t>(h));
    const float want = f16_reference(static_cast<std::uint16_t>(h));
    if (std::isnan(want)) {
      REQUIRE(std::isnan(got));
    } else if (got != want || std::signbit(got) != std::signbit(want)) {
      FAIL("f16 0x" << std::hex << h << ": got " << got << ", want " << want);
    }
  }
}

TEST_CASE("safetensors reads BF16 as the top half of a float32", "[io][safetensors]") {
  std::vector<std::uint8_t> data;
  for (std::uint16_t h : {0x3F80, 0xC000, 0x7F80, 0x3EAB, 0x0001}) put_le(data, h, 2);
  const auto f = parse(make_file(entry("w", "BF16", "[5]", "[0,10]"), data));
  REQUIRE(f.dtypes.at("w") == "BF16");
  const auto& t = f.at("w");
  REQUIRE(t[0] == 1.0f);
  REQUIRE(t[1] == -2.0f);
  REQUIRE(t[2] == std::numeric_limits<float>::infinity());
  REQUIRE(t[3] == 0.333984375f);
  REQUIRE(t[4] == std::bit_cast<float>(0x00010000u));  // a float32 subnormal
}

TEST_CASE("safetensors reads F64 and integer dtypes as float, at unaligned offsets", "[io][safetensors]") {
  // One U8 byte first, so every following tensor starts at an odd offset.
  std::vector<std::uint8_t> data = {200};
  std::string header = "{";
  auto add = [&](const std::string& name, const std::string& dtype, int count, int size, auto values) {
    const std::size_t begin = data.size();
    for (auto v : values) put_le(data, static_cast<std::uint64_t>(v), size);
    header += (header.size() > 1 ? "," : "") + std::string("\"") + name + "\":{\"dtype\":\"" + dtype +
              "\",\"shape\":[" + std::to_string(count) + "],\"data_offsets\":[" + std::to_string(begin) + "," +
              std::to_string(data.size()) + "]}";
  };
  header += "\"u8\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}";
  add("i64", "I64", 3, 8, std::vector<std::int64_t>{-5, 0, 16777216});
  add("i32", "I32", 2, 4, std::vector<std::int32_t>{-7, 123456});
  add("i16", "I16", 2, 2, std::vector<std::int16_t>{-32768, 32767});
  add("i8", "I8", 2, 1, std::vector<std::int8_t>{-128, 127});
  add("bool", "BOOL", 3, 1, std::vector<std::uint8_t>{0, 1, 1});
  add("f32", "F32", 2, 4, std::vector<std::uint32_t>{std::bit_cast<std::uint32_t>(1.5f), std::bit_cast<std::uint32_t>(-0.25f)});
  add("f64", "F64", 4, 8,
      std::vector<std::uint64_t>{std::bit_cast<std::uint64_t>(0.1), std::bit_cast<std::uint64_t>(-3.0),
                                 std::bit_cast<std::uint64_t>(1e300), std::bit_cast<std::uint64_t>(-1e300)});
  header += ",\"__metadata__\":{\"format\":\"np\"}}";
  const auto f = parse(make_file(header, data));

  REQUIRE(f.at("u8")[0] == 200.f);
  REQUIRE(f.at("i64")[0] == -5.f);
  REQUIRE(f.at("i64")[2] == 16777216.f);
  REQUIRE(f.at("i32")[0] == -7.f);
  REQUIRE(f.at("i32")[1] == 123456.f);
  REQUIRE(f.at("i16")[0] == -32768.f);
  REQUIRE(f.at("i16")[1] == 32767.f);
  REQUIRE(f.at("i8")[0] == -128.f);
  REQUIRE(f.at("i8")[1] == 127.f);
  REQUIRE(f.at("bool")[0] == 0.f);
  REQUIRE(f.at("bool")[2] == 1.f);
  REQUIRE(f.at("f32")[0] == 1.5f);
  REQUIRE(f.at("f32")[1] == -0.25f);
  REQUIRE(f.at("f64")[0] == 0.1f);
  REQUIRE(f.at("f64")[1] == -3.f);
  REQUIRE(f.at("f64")[2] == std::numeric_limits<float>::infinity());
  REQUIRE(f.at("f64")[3] == -std::numeric_limits<float>::infinity());
  REQUIRE(f.dtypes.at("i64") == "I64");
  REQUIRE(f.metadata.at("format") == "np");
}

TEST_CASE("safetensors at() names the missing key, the source and some available names", "[io][safetensors]") {
  std::string header = "{";
  std::vector<std::uint8_t> data;
  for (int i = 0; i < 8; ++i) {
    header += (i ? ",\"t" : "\"t") + std::to_string(i) + "\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[" +
              std::to_string(i) + "," + std::to_string(i + 1) + "]}";
    data.push_back(static_cast<std::uint8_t>(i));
  }
  header += "}";
  const auto f = parse(make_file(header, data), "weights.safetensors");
  REQUIRE(f.tensors.size() == 8);
  REQUIRE_THROWS_AS(f.at("head.weight"), mint::Error);
  REQUIRE_THROWS_WITH(f.at("head.weight"), Catch::Contains("'head.weight'") && Catch::Contains("weights.safetensors") &&
                                               Catch::Contains("'t0'") && Catch::Contains("'t4'") &&
                                               !Catch::Contains("'t5'") && Catch::Contains("..."));
}

TEST_CASE("safetensors rejects files too short for the length field", "[io][safetensors]") {
  const std::vector<std::uint8_t> bytes = {1, 2, 3};
  REQUIRE_THROWS_WITH(parse(bytes, "short.st"), Catch::Contains("short.st") && Catch::Contains("3 bytes") &&
                                                    Catch::Contains("shorter than the 8-byte"));
  REQUIRE_THROWS_WITH(parse_safetensors(nullptr, 0, "empty.st"), Catch::Contains("empty.st") && Catch::Contains("0 bytes"));
}

TEST_CASE("safetensors rejects a header length larger than the file", "[io][safetensors]") {
  const auto bytes = make_file("{}", {}, 1000);
  REQUIRE_THROWS_WITH(parse(bytes, "lying.st"), Catch::Contains("lying.st") && Catch::Contains("header length 1000") &&
                                                    Catch::Contains("2 bytes") && Catch::Contains("truncated"));
  // A length near 2^64 must not wrap around in the bounds arithmetic.
  REQUIRE_THROWS_WITH(parse(make_file("{}", {}, std::numeric_limits<std::uint64_t>::max() - 3)),
                      Catch::Contains("header length"));
}

TEST_CASE("safetensors rejects a header that is not a JSON object", "[io][safetensors]") {
  REQUIRE_THROWS_WITH(parse(make_file("{\"a\": [1, 2", {}), "bad.st"),
                      Catch::Contains("bad.st") && Catch::Contains("not valid JSON") && Catch::Contains("parse error"));
  REQUIRE_THROWS_WITH(parse(make_file("[1, 2]", {})), Catch::Contains("JSON object") && Catch::Contains("array"));
  REQUIRE_THROWS_WITH(parse(make_file("{\"__metadata__\": {\"k\": 3}}", {})),
                      Catch::Contains("__metadata__") && Catch::Contains("'k'") && Catch::Contains("string"));
  REQUIRE_THROWS_WITH(parse(make_file("{\"__metadata__\": []}", {})), Catch::Contains("__metadata__"));
}

TEST_CASE("safetensors rejects entries with missing or mistyped fields", "[io][safetensors]") {
  const std::vector<std::uint8_t> data(8, 0);
  REQUIRE_THROWS_WITH(parse(make_file("{\"w\": 3}", data)), Catch::Contains("'w'") && Catch::Contains("JSON object"));
  REQUIRE_THROWS_WITH(parse(make_file("{\"w\": {\"shape\": [2], \"data_offsets\": [0, 8]}}", data)),
                      Catch::Contains("'w'") && Catch::Contains("missing \"dtype\""));
  REQUIRE_THROWS_WITH(parse(make_file("{\"w\": {\"dtype\": \"F32\", \"data_offsets\": [0, 8]}}", data)),
                      Catch::Contains("missing \"shape\""));
  REQUIRE_THROWS_WITH(parse(make_file("{\"w\": {\"dtype\": \"F32\", \"shape\": [2]}}", data)),
                      Catch::Contains("missing \"data_offsets\""));
  REQUIRE_THROWS_WITH(parse(make_file(entry("w", "F32", "2", "[0,8]"), data)),
                      Catch::Contains("\"shape\" must be an array"));
  REQUIRE_THROWS_WITH(parse(make_file("{\"w\": {\"dtype\": 7, \"shape\": [2], \"data_offsets\": [0, 8]}}", data)),
                      Catch::Contains("\"dtype\" must be a string"));
  REQUIRE_THROWS_WITH(parse(make_file(entry("w", "F32", "[2]", "{}"), data)),
                      Catch::Contains("\"data_offsets\" must be an array"));
  REQUIRE_THROWS_WITH(parse(make_file(entry("w", "F32", "[-2]", "[0,8]"), data)),
                      Catch::Contains("'w'") && Catch::Contains("non-negative integers") && Catch::Contains("-2"));
  REQUIRE_THROWS_WITH(parse(make_file(entry("w", "F32", "[2.5]", "[0,8]"), data)),
                      Catch::Contains("non-negative integers") && Catch::Contains("2.5"));
  REQUIRE_THROWS_WITH(parse(make_file(entry("w", "F32", "[\"2\"]", "[0,8]"), data)),
                      Catch::Contains("non-negative integers"));
  REQUIRE_THROWS_WITH(parse(make_file(entry("w", "F32", "[2]", "[8,0]"), data)),
                      Catch::Contains("two ascending") && Catch::Contains("[8,0]"));
  REQUIRE_THROWS_WITH(parse(make_file(entry("w", "F32", "[2]", "[0]"), data)), Catch::Contains("two ascending"));
  REQUIRE_THROWS_WITH(parse(make_file(entry("w", "F32", "[2]", "[0,8,9]"), data)), Catch::Contains("two ascending"));
  REQUIRE_THROWS_WITH(parse(make_file(entry("w", "F32", "[2]", "[-1,7]"), data)), Catch::Contains("two ascending"));
  REQUIRE_THROWS_WITH(parse(make_file(entry("w", "F32", "[2]", "[0,\"8\"]"), data)), Catch::Contains("two ascending"));
}

TEST_CASE("safetensors rejects offsets outside the data buffer", "[io][safetensors]") {
  const std::vector<std::uint8_t> data(8, 0);
  REQUIRE_THROWS_WITH(parse(make_file(entry("w", "F32", "[4]", "[0,16]"), data), "oob.st"),
                      Catch::Contains("oob.st") && Catch::Contains("'w'") && Catch::Contains("[0, 16]") &&
                          Catch::Contains("8 bytes") && Catch::Contains("outside"));
  REQUIRE_THROWS_WITH(parse(make_file(entry("w", "F32", "[1]", "[18446744073709551612,18446744073709551615]"), data)),
                      Catch::Contains("'w'"));
}

TEST_CASE("safetensors rejects unsupported dtypes, naming tensor and dtype", "[io][safetensors]") {
  const std::vector<std::uint8_t> data(8, 0);
  REQUIRE_THROWS_WITH(parse(make_file(entry("w", "F8_E4M3", "[8]", "[0,8]"), data)),
                      Catch::Contains("'w'") && Catch::Contains("unsupported dtype") && Catch::Contains("F8_E4M3"));
  REQUIRE_THROWS_WITH(parse(make_file(entry("z", "C64", "[1]", "[0,8]"), data)),
                      Catch::Contains("'z'") && Catch::Contains("C64"));
}

TEST_CASE("safetensors rejects a byte length that does not match the shape", "[io][safetensors]") {
  const std::vector<std::uint8_t> data(16, 0);
  REQUIRE_THROWS_WITH(parse(make_file(entry("w", "F32", "[2,2]", "[0,12]"), data), "mm.st"),
                      Catch::Contains("mm.st") && Catch::Contains("'w'") && Catch::Contains("[2, 2]") &&
                          Catch::Contains("F32") && Catch::Contains("12 bytes") && Catch::Contains("16 bytes"));
  REQUIRE_THROWS_WITH(parse(make_file(entry("w", "BF16", "[2,2]", "[0,16]"), data)),
                      Catch::Contains("BF16") && Catch::Contains("16 bytes") && Catch::Contains("needs 8 bytes"));
}

TEST_CASE("safetensors rejects shapes whose size overflows, and ranks above 6", "[io][safetensors]") {
  const std::vector<std::uint8_t> data(16, 0);
  // 2^40 * 2^40 elements: must error rather than wrap to a small number.
  REQUIRE_THROWS_WITH(parse(make_file(entry("w", "F32", "[1099511627776,1099511627776]", "[0,16]"), data)),
                      Catch::Contains("'w'") && Catch::Contains("overflow"));
  // Fits in int64 elements, but not in bytes.
  REQUIRE_THROWS_WITH(parse(make_file(entry("w", "F64", "[2305843009213693952]", "[0,16]"), data)),
                      Catch::Contains("overflow"));
  // 2^64 does not fit any integer type: nlohmann reads it as a float.
  REQUIRE_THROWS_WITH(parse(make_file(entry("w", "F32", "[18446744073709551616]", "[0,16]"), data)),
                      Catch::Contains("non-negative integers"));
  // Overflow in the middle of the product even though a later zero makes the total zero.
  REQUIRE_THROWS_WITH(parse(make_file(entry("w", "F32", "[4294967296,4294967296,0]", "[0,0]"), data)),
                      Catch::Contains("overflow"));
  REQUIRE_THROWS_WITH(parse(make_file(entry("w", "F32", "[1,1,1,1,1,1,4]", "[0,16]"), data)),
                      Catch::Contains("'w'") && Catch::Contains("rank 7"));
  // Zero-size tensors are fine, at any offset inside the buffer, and so is rank 6.
  const auto f = parse(make_file("{\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[16,16]},"
                                 "\"s\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,2,2],\"data_offsets\":[0,16]}}",
                                 data));
  REQUIRE(f.at("e").shape() == Shape{0, 5});
  REQUIRE(f.at("s").shape() == Shape{1, 1, 1, 1, 2, 2});
}

TEST_CASE("safetensors file errors name the path", "[io][safetensors]") {
  const std::string missing = (std::filesystem::temp_directory_path() / "mint_no_such_dir" / "x.safetensors").string();
  REQUIRE_THROWS_WITH(mint::io::load_safetensors(missing), Catch::Contains(missing) && Catch::Contains("cannot open"));
  const std::string dir = std::filesystem::temp_directory_path().string();
  REQUIRE_THROWS_WITH(mint::io::load_safetensors(dir), Catch::Contains(dir) && Catch::Contains("not a regular file"));
  REQUIRE_THROWS_WITH(mint::io::save_safetensors(missing, {{"x", Tensor<>::zeros(Shape{1})}}),
                      Catch::Contains(missing) && Catch::Contains("cannot open"));
  TempFile tmp(".safetensors");
  REQUIRE_THROWS_WITH(mint::io::save_safetensors(tmp.path.string(), {{"__metadata__", Tensor<>::zeros(Shape{1})}}),
                      Catch::Contains("reserved"));
  REQUIRE_THROWS_WITH(mint::io::save_safetensors(tmp.path.string(), {{"x", Tensor<>()}}),
                      Catch::Contains("'x'") && Catch::Contains("no storage"));
  // A truncated file on disk is reported with its path.
  {
    std::ofstream out(tmp.path, std::ios::binary);
    out.write("\x10\x00\x00", 3);
  }
  REQUIRE_THROWS_WITH(mint::io::load_safetensors(tmp.path.string()), Catch::Contains(tmp.path.string()));
}

TEST_CASE("safetensors parser survives every truncation and random corruption", "[io][safetensors]") {
  // Under ASan/UBSan this is the out-of-bounds check: every prefix and many byte flips of a valid file must
  // either parse or throw mint::Error.
  std::vector<std::uint8_t> data;
  for (int i = 0; i < 24; ++i) data.push_back(static_cast<std::uint8_t>(i * 7));
  const auto valid = make_file("{\"__metadata__\":{\"a\":\"b\"},"
                               "\"h\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,8]},"
                               "\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
                               data);
  REQUIRE(parse(valid).tensors.size() == 2);
  int errors = 0;
  for (std::size_t n = 0; n < valid.size(); ++n) {
    const std::vector<std::uint8_t> prefix(valid.begin(), valid.begin() + static_cast<std::ptrdiff_t>(n));
    try {
      (void)parse(prefix);
    } catch (const mint::Error&) {
      ++errors;
    }
  }
  REQUIRE(errors == static_cast<int>(valid.size()));  // no proper prefix is a valid file here
  std::mt19937 gen(1234);
  for (int trial = 0; trial < 3000; ++trial) {
    auto bytes = valid;
    const int flips = 1 + static_cast<int>(gen() % 3);
    for (int k = 0; k < flips; ++k) bytes[gen() % bytes.size()] = static_cast<std::uint8_t>(gen());
    try {
      (void)parse(bytes);
    } catch (const mint::Error&) {
    }
  }
}

// ---- issue 17: the format's rules, enforced (each case is a crafted file the reader accepted before) ----------

TEST_CASE("safetensors refuses duplicate keys, at the top level and inside an entry", "[io][safetensors][hostile]") {
  const std::vector<std::uint8_t> data(8, 0);
  // nlohmann keeps the last copy: before, the second 'w' silently replaced the first.
  const std::string twice = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                            "\"w\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}";
  REQUIRE_THROWS_WITH(parse(make_file(twice, data), "dup.st"),
                      Catch::Contains("dup.st") && Catch::Contains("duplicate key 'w'"));
  REQUIRE_THROWS_WITH(parse(make_file("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"U8\",\"shape\":[8],"
                                      "\"data_offsets\":[0,8]}}", data)),
                      Catch::Contains("duplicate key 'dtype'") && Catch::Contains("in 'w'"));
  REQUIRE_THROWS_WITH(parse(make_file("{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", {})),
                      Catch::Contains("duplicate key 'a'") && Catch::Contains("__metadata__"));
  // The same key in two different objects is not a duplicate.
  REQUIRE(parse(make_file("{\"__metadata__\":{\"w\":\"x\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2],"
                          "\"data_offsets\":[0,8]}}", data)).tensors.size() == 1);
}

TEST_CASE("safetensors bounds nesting and array length while parsing (a shape nested 200000 deep)",
          "[io][safetensors][hostile]") {
  // Before: parsed, then dump() of the shape for the error message recursed 200000 deep (segfault in Release).
  const std::string deep = "{\"w\":{\"dtype\":\"F32\",\"shape\":" + std::string(200000, '[') +
                           std::string(200000, ']') + ",\"data_offsets\":[0,0]}}";
  REQUIRE_THROWS_WITH(parse(make_file(deep, {}), "deep.st"),
                      Catch::Contains("deep.st") && Catch::Contains("nests deeper than 3") && Catch::Contains("'w'"));
  REQUIRE_THROWS_WITH(parse(make_file("{\"__metadata__\":{\"k\":{\"x\":[\"y\"]}}}", {})),
                      Catch::Contains("nests deeper"));
  // A 4th level is refused even when short; 3 levels (the format's own depth) parse.
  REQUIRE_THROWS_WITH(parse(make_file(entry("w", "F32", "[[2]]", "[0,8]"), std::vector<std::uint8_t>(8, 0))),
                      Catch::Contains("nests deeper"));
  std::string long_shape = "[1";
  for (int i = 0; i < 100; ++i) long_shape += ",1";
  REQUIRE_THROWS_WITH(parse(make_file(entry("w", "F32", long_shape + "]", "[0,4]"), std::vector<std::uint8_t>(4, 0))),
                      Catch::Contains("more than 64 values") && Catch::Contains("'w' -> 'shape'"));
}

TEST_CASE("safetensors refuses entry fields other than dtype, shape and data_offsets", "[io][safetensors][hostile]") {
  const std::vector<std::uint8_t> data(8, 0);
  REQUIRE_THROWS_WITH(parse(make_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"offset\":4}}",
                                      data), "extra.st"),
                      Catch::Contains("extra.st") && Catch::Contains("'w'") &&
                          Catch::Contains("unknown field \"offset\""));
}

TEST_CASE("safetensors data must tile the buffer: from 0, no holes, no overlap, no aliasing, no trailing bytes",
          "[io][safetensors][hostile]") {
  const std::vector<std::uint8_t> d16(16, 0);
  auto two = [](const std::string& a, const std::string& b) {
    return "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":" + a + "},\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
           "\"data_offsets\":" + b + "}}";
  };
  REQUIRE(parse(make_file(two("[0,8]", "[8,16]"), d16)).tensors.size() == 2);  // the valid tiling
  REQUIRE(parse(make_file(two("[8,16]", "[0,8]"), d16)).at("a").shape() == Shape{2});  // header order is free
  REQUIRE_THROWS_WITH(parse(make_file(entry("w", "F32", "[2]", "[8,16]"), d16), "start.st"),
                      Catch::Contains("start.st") && Catch::Contains("'w'") && Catch::Contains("begins at offset 8"));
  REQUIRE_THROWS_WITH(parse(make_file(two("[0,8]", "[12,20]"), std::vector<std::uint8_t>(20, 0))),
                      Catch::Contains("hole of 4 bytes") && Catch::Contains("'a'") && Catch::Contains("'b'"));
  REQUIRE_THROWS_WITH(parse(make_file(two("[0,8]", "[4,12]"), std::vector<std::uint8_t>(12, 0))),
                      Catch::Contains("overlap") && Catch::Contains("'a' [0, 8]") && Catch::Contains("'b' [4, 12]"));
  REQUIRE_THROWS_WITH(parse(make_file(two("[0,8]", "[0,8]"), std::vector<std::uint8_t>(8, 0))),
                      Catch::Contains("overlap"));  // aliasing: two names for the same bytes
  REQUIRE_THROWS_WITH(parse(make_file(entry("w", "F32", "[2]", "[0,8]"), d16), "tail.st"),
                      Catch::Contains("tail.st") && Catch::Contains("8 trailing bytes") && Catch::Contains("'w'"));
  REQUIRE_THROWS_WITH(parse(make_file("{}", {1, 2, 3})), Catch::Contains("3 trailing bytes"));
  // Zero-size tensors take no bytes: any number of them may sit at the same offset between others.
  REQUIRE(parse(make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                          "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]},"
                          "\"f\":{\"dtype\":\"U8\",\"shape\":[0,3],\"data_offsets\":[8,8]},"
                          "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", d16))
              .tensors.size() == 4);
}

TEST_CASE("metadata_int reads exactly a decimal integer in range, else names key and value", "[io][safetensors]") {
  const std::map<std::string, std::string> m = {{"a", "12"}, {"b", "12abc"}, {"c", " 3"}, {"d", "99999999999999999999"},
                                                {"e", "-1"}, {"f", ""}};
  using mint::io::metadata_int;
  REQUIRE(metadata_int(m, "a", 1, 100, "x.st") == 12);
  REQUIRE_FALSE(metadata_int(m, "zz", 1, 100, "x.st").has_value());
  for (const char* bad : {"b", "c", "d", "f"})
    REQUIRE_THROWS_WITH(metadata_int(m, bad, 1, 100, "x.st"),
                        Catch::Contains("x.st") && Catch::Contains(std::string("metadata ") + bad) &&
                            Catch::Contains("not an integer in [1, 100]"));
  REQUIRE_THROWS_WITH(metadata_int(m, "a", 1, 10, "x.st"), Catch::Contains("'12'"));
  REQUIRE(metadata_int(m, "e", -1, 5, "x.st") == -1);
}

TEST_CASE("save_safetensors that fails part-way leaves the previous file intact and no temporary file",
          "[io][safetensors][atomic]") {
  mint::testing::TempDir dir;
  const auto path = dir.path / "weights.safetensors";
  mint::io::save_safetensors(path.string(), {{"w", Tensor<>::full(Shape{4}, 1.5f)}});
  const std::string before = mint::testing::read_all(path);
  const auto big = Tensor<>::full(Shape{1 << 18}, 2.0f);  // 1 MiB of data, 16x the limit below
  {
    mint::testing::FileSizeLimit limit(64 * 1024);
    REQUIRE_THROWS_WITH(mint::io::save_safetensors(path.string(), {{"w", big}}),
                        Catch::Contains(path.string()) && Catch::Contains("failed writing"));
  }
  REQUIRE(mint::testing::read_all(path) == before);
  REQUIRE(dir.entries() == 1);  // the temporary file was removed
  REQUIRE(mint::io::load_safetensors(path.string()).at("w")[3] == 1.5f);
  // Without the limit the same write replaces the file.
  mint::io::save_safetensors(path.string(), {{"w", big}});
  REQUIRE(mint::io::load_safetensors(path.string()).at("w").numel() == big.numel());
  REQUIRE(dir.entries() == 1);
}

TEST_CASE("save_safetensors killed with SIGKILL at a random moment leaves the old or the new file, 20 times",
          "[io][safetensors][atomic]") {
  mint::testing::TempDir dir;
  const auto path = dir.path / "data.safetensors";
  // Two complete versions, large enough (4 MiB each) that a kill often lands inside a write.
  const std::map<std::string, Tensor<>> a = {{"x", Tensor<>::full(Shape{1 << 20}, 1.0f)}};
  const std::map<std::string, Tensor<>> b = {{"x", Tensor<>::full(Shape{1 << 20}, 2.0f)}};
  mint::io::save_safetensors(path.string(), a);
  const std::string version_a = mint::testing::read_all(path);
  mint::io::save_safetensors(path.string(), b);
  const std::string version_b = mint::testing::read_all(path);
  std::random_device rd;
  for (int trial = 0; trial < 20; ++trial) {
    CAPTURE(trial);
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {  // rewrite the file forever, alternating the versions, until killed
      for (int i = 0;; ++i) {
        try {
          mint::io::save_safetensors(path.string(), i % 2 ? a : b);
        } catch (...) {
          _exit(3);
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::microseconds(rd() % 60000));  // a random moment (0-60 ms)
    REQUIRE(kill(child, SIGKILL) == 0);
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    REQUIRE(WIFSIGNALED(status));  // killed, not failed
    const std::string now = mint::testing::read_all(path);
    REQUIRE((now == version_a || now == version_b));
    // A killed writer may leave its temporary file behind (nothing runs after SIGKILL); never the target.
    for (const auto& e : std::filesystem::directory_iterator(dir.path))
      if (e.path() != path) std::filesystem::remove(e.path());
  }
}
