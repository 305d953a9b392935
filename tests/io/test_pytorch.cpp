// mint/io/pytorch.hpp: torch.save checkpoints written by Debian's PyTorch (tests/fixtures/make_pytorch_fixtures.py,
// tests/fixtures/pytorch/) read back exactly, malicious pickles are refused by name without running anything, and
// malformed or truncated files give errors that name the defect.
#include "test_util.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "mint/io/pytorch.hpp"
#include "mint/io/safetensors.hpp"

using namespace mint;

namespace pytorch_test {

std::string fixture(const std::string& name) { return std::string(MINT_FIXTURE_DIR) + "/pytorch/" + name; }

std::vector<std::uint8_t> bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.is_open());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The message of the mint::Error that loading `name` throws ("" when it loads).
std::string load_error(const std::string& name) {
  try {
    (void)io::load_pytorch(fixture(name));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace pytorch_test

TEST_CASE("pytorch: torch.save of a state dict reads as the same float32 weights as its safetensors copy") {
  const auto pth = io::load_pytorch(pytorch_test::fixture("deit48_state_dict.pth"));
  const auto st = io::load_safetensors(pytorch_test::fixture("deit48.safetensors"));
  REQUIRE(pth.tensors.size() == st.tensors.size());
  for (const auto& [name, ref] : st.tensors) {
    INFO(name);
    REQUIRE(pth.dtypes.at(name) == "F32");
    // Both files hold the same float32 values: exact equality.
    MINT_REQUIRE_CLOSE(testing::compare(pth.at(name), ref, {0.0, 0.0}, name));
  }
}

TEST_CASE("pytorch: F16 weights wrapped as model and BF16 weights convert to the nearest float32 value") {
  const auto st = io::load_safetensors(pytorch_test::fixture("deit48.safetensors"));
  const auto f16 = io::load_pytorch(pytorch_test::fixture("deit48_wrapped_f16.pth"));
  const auto bf16 = io::load_pytorch(pytorch_test::fixture("hub/pytorch_model.bin"));
  // {"model": sd, "epoch": 3, "note": "..."}: the numbers and strings are not tensors and are left out.
  REQUIRE(f16.tensors.size() == st.tensors.size());
  REQUIRE(bf16.tensors.size() == st.tensors.size());
  for (const auto& [name, ref] : st.tensors) {
    INFO(name);
    REQUIRE(f16.dtypes.at("model." + name) == "F16");
    REQUIRE(bf16.dtypes.at(name) == "BF16");
    // Rounding to binary16 moves a value by at most half an ulp: 2^-11 relative for normal numbers, 2^-25
    // absolute in the subnormal range; bfloat16 keeps 8 significant bits: 2^-8 relative (no subnormals at
    // these magnitudes). A reader that mis-decodes either format is off by far more.
    MINT_REQUIRE_CLOSE(testing::compare(f16.at("model." + name), ref, {std::ldexp(1.0, -25), std::ldexp(1.0, -11)},
                                        "f16 " + name));
    MINT_REQUIRE_CLOSE(testing::compare(bf16.at(name), ref, {0.0, std::ldexp(1.0, -8)}, "bf16 " + name));
  }
}

TEST_CASE("pytorch: strided and offset views, shared storages, F64 and I64 storages, 0-dim and nested tensors") {
  const auto views = io::load_pytorch(pytorch_test::fixture("views.pth"));
  const auto expected = io::load_safetensors(pytorch_test::fixture("expected.safetensors"));
  std::size_t compared = 0;
  for (const auto& [key, ref] : expected.tensors) {
    if (key.rfind("views.", 0) != 0) continue;
    const std::string name = key.substr(6);
    INFO(name);
    // PyTorch's .contiguous().to(float32) of the same view: exact (F64 rounds to nearest in both).
    MINT_REQUIRE_CLOSE(testing::compare(views.at(name), ref, {0.0, 0.0}, name));
    ++compared;
  }
  REQUIRE(compared == views.tensors.size());
  REQUIRE(views.dtypes.at("f64_view") == "F64");
  REQUIRE(views.dtypes.at("i64") == "I64");
  REQUIRE(views.at("t").shape() == Shape{6, 4});
  REQUIRE(views.at("scalar").shape() == Shape{});  // a 0-dim tensor (BN's num_batches_tracked is one)
}

TEST_CASE("pytorch: a pickle naming any other global is refused by name and nothing runs") {
  const std::string marker = "/tmp/mint_pytorch_fixture_was_executed";  // what the evil pickles would create
  std::filesystem::remove(marker);
  const std::string system = pytorch_test::load_error("evil_system.pth");
  CHECK(system.find("'posix.system'") != std::string::npos);  // os.system pickles as posix.system on Linux
  CHECK(system.find("weights_only") != std::string::npos);
  const std::string eval = pytorch_test::load_error("evil_eval.pth");
  CHECK(eval.find("eval'") != std::string::npos);  // builtins.eval pickles as __builtin__.eval at protocol 2
  CHECK_FALSE(std::filesystem::exists(marker));
}

TEST_CASE("pytorch: malformed checkpoints give errors naming the defect") {
  REQUIRE(pytorch_test::load_error("bad_control_ok.pth").empty());  // built the same way, without the defect
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"bad_offset.pth", "offset 30, size [2] reaches element 31 but the storage has 24 elements"},
      {"bad_view_past_end.pth", "size [5, 6] reaches element 29 but the storage has 24 elements"},
      {"bad_short_storage.pth", "declares 24 elements of F32 (96 bytes) but its record 'archive/data/0' holds 40"},
      {"bad_absurd_size.pth", "element count overflows int64"},
      {"bad_absurd_numel.pth", "byte count overflows int64"},
      {"bad_budget.pth", "bytes left of the reader's budget"},
      {"bad_negative_stride.pth", "negative stride -1"},
      {"bad_missing_record.pth", "storage '7' has no record 'archive/data/7'"},
      {"bad_unknown_storage.pth", "'torch.ComplexFloatStorage'"},
      {"bad_deep.pth", "nest deeper than 64"},
      {"bad_cycle.pth", "contain themselves"},
      {"bad_opcode.pth", "opcode 0x49"},
      {"bad_memo.pth", "memo entry 5 is read before it is written"},
      {"bad_truncated_pickle.pth", "runs past the end of the pickle"},
      {"legacy.pth", "legacy (pre-1.6, non-zip) torch.save format"},
      {"deit48.safetensors", "not a readable zip archive"},
  };
  for (const auto& [file, want] : cases) {
    const std::string msg = pytorch_test::load_error(file);
    INFO(file << ": " << msg);
    CHECK(msg.find(want) != std::string::npos);
    CHECK(msg.find(file) != std::string::npos);  // the message names the file
  }
}

TEST_CASE("pytorch: every truncation of a checkpoint is refused with an error") {
  const auto bytes = pytorch_test::bytes_of(pytorch_test::fixture("views.pth"));
  REQUIRE_NOTHROW(io::parse_pytorch(bytes.data(), bytes.size(), "views.pth"));
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    INFO("first " << n << " of " << bytes.size() << " bytes");
    CHECK_THROWS_AS(io::parse_pytorch(bytes.data(), n, "views.pth"), Error);
  }
}

TEST_CASE("pytorch: a flipped bit in a storage record fails the archive's CRC instead of loading wrong values") {
  auto bytes = pytorch_test::bytes_of(pytorch_test::fixture("bad_control_ok.pth"));
  // The record holds float32 0, 1, ..., 23; 23.0f is 0x41b80000, little-endian 00 00 b8 41.
  const std::vector<std::uint8_t> last = {0x00, 0x00, 0xb8, 0x41};
  const auto it = std::search(bytes.begin(), bytes.end(), last.begin(), last.end());
  REQUIRE(it != bytes.end());
  it[3] ^= 0x01;  // 0x41 -> 0x40: 23.0f becomes 5.75f, a silent wrong value without the CRC check
  try {
    (void)io::parse_pytorch(bytes.data(), bytes.size(), "flipped.pth");
    FAIL("a corrupted record loaded");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("archive/data/0") != std::string::npos);
  }
}

TEST_CASE("pytorch: a missing path or a folder is refused with an error naming it") {
  const std::string missing = pytorch_test::fixture("no_such_checkpoint.pth");
  CHECK_THROWS_WITH(io::load_pytorch(missing), Catch::Contains("'" + missing + "'") && Catch::Contains("No such file"));
  CHECK_THROWS_WITH(io::load_pytorch(pytorch_test::fixture("hub")), Catch::Contains("Is a directory"));
}
