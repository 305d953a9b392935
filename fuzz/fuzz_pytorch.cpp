// libFuzzer target: the torch.save checkpoint reader (mint/io/pytorch.hpp) on arbitrary bytes held in memory.
// An input starting with "PK" goes through parse_pytorch whole (zip container, records, pickle); any other input
// is run as data.pkl itself by the pickle machine, with every storage it names read as zeros, so mutations reach
// the pickle opcodes instead of dying at the archive's CRC check. A mint::Error is the expected outcome of a bad
// input; anything else escaping (std::bad_alloc, a standard-library exception), a sanitizer report, a hang or a
// large allocation is a finding. The reader's byte budget (16x the input + 1 MiB) bounds every allocation.
// Seeds: fuzz/corpus/pytorch/ (small checkpoints and raw pickles from tests/fixtures/make_pytorch_fixtures.py).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "mint/core/error.hpp"
#include "mint/io/pytorch.hpp"

namespace {

// Storage bytes for the pickle-only mode: zeros, charged to the same budget a real archive read would be.
std::vector<std::uint8_t> zero_storage(void* ctx, const std::string& key, const char* dtype, std::int64_t numel) {
  namespace d = mint::io::detail;
  auto& budget = *static_cast<d::ByteBudget*>(ctx);
  std::int64_t bytes = 0;
  const auto elem = static_cast<std::int64_t>(d::safetensors_dtype_size(dtype));
  mint::check(d::checked_mul(numel, elem, bytes), "fuzz: storage '", key, "' byte count overflows");
  budget.take(static_cast<std::uint64_t>(bytes), "storage '" + key + "'");
  return std::vector<std::uint8_t>(static_cast<std::size_t>(bytes), 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    if (size >= 2 && data[0] == 'P' && data[1] == 'K') {
      (void)mint::io::parse_pytorch(data, size, "fuzz input");
    } else {
      const std::vector<std::uint8_t> pickle(data, data + size);
      mint::io::detail::ByteBudget budget{mint::io::detail::kPytorchExpansion * size + (1u << 20), "fuzz: "};
      mint::io::detail::PickleMachine machine(pickle, "fuzz: ", budget, &budget, &zero_storage);
      (void)machine.run();
    }
  } catch (const mint::Error&) {
  }
  return 0;
}
