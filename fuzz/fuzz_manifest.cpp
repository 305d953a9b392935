// libFuzzer target: the sharded data set's manifest readers on an arbitrary manifest.json -- mint-synthesize's
// ShardManifest::read (resume and merge, mint/tasks/synthesis.hpp) and the streaming reader SyntheticShardReader
// (mint/inversion/sparse_image.hpp), which reads DIR/manifest.json before any shard.
#include <filesystem>
#include <fstream>

#include "fuzz_input.hpp"
#include "mint/tasks/synthesis.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  mint::fuzz::expect_clean([&] { (void)mint::tasks::ShardManifest::read(mint::fuzz::as_file(data, size)); });
  // The streaming reader takes a folder: one scratch folder per process, its manifest.json rewritten per input.
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("mint_fuzz_manifest_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  std::ofstream(dir / "manifest.json", std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  mint::fuzz::expect_clean([&] { (void)mint::SyntheticShardReader(dir.string()); });
  return 0;
}
