// safetensors: F32 round trip with metadata, exact F16/BF16/integer conversion from hand-built bytes, and a
// clear mint::Error (never a crash) for every kind of malformed file.
#include "test_util.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <string>
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
