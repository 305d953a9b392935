// Shared test helpers: a REQUIRE that prints a CloseReport's message (max difference and where).
#pragma once

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>

#include <catch2/catch.hpp>

#include "mint/io/safetensors.hpp"
#include "mint/testing/check.hpp"

#define MINT_REQUIRE_CLOSE(report_expr)   \
  do {                                    \
    const auto mint_report_ = (report_expr); \
    INFO(mint_report_.message);           \
    CAPTURE(mint_report_.max_abs);        \
    REQUIRE(mint_report_.ok);             \
  } while (0)

namespace mint::testing {

// A unique path in the temp dir, removed when the object dies. ctest runs test cases as parallel processes,
// so names carry random bits rather than a per-process counter alone.
struct TempFile {
  std::filesystem::path path;
  explicit TempFile(const std::string& suffix) {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() /
           ("mint_test_" + std::to_string(rd()) + "_" + std::to_string(rd()) + suffix);
  }
  ~TempFile() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  [[nodiscard]] std::string str() const { return path.string(); }
};

// A fresh folder of its own in the temp dir, removed with everything in it.
struct TempDir {
  std::filesystem::path path;
  TempDir() : path(TempFile("_dir").path) { std::filesystem::create_directory(path); }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] std::string str() const { return path.string(); }
  [[nodiscard]] std::size_t entries() const {
    return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator(path), {}));
  }
};

// The whole content of a file ("" when it cannot be read).
inline std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// While alive, no file of this process may grow past `bytes` (RLIMIT_FSIZE) and a write beyond it fails with
// EFBIG instead of raising SIGXFSZ: a real write failure part-way through a file, as a full disk gives.
struct FileSizeLimit {
  rlimit old{};
  void (*old_handler)(int) = nullptr;
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &old);
    old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit now = old;
    now.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &now);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, old_handler);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;
};

// A committed fixture file of tests/fixtures, read once per test process.
inline const io::SafetensorsFile& fixture_file(const std::string& name) {
  static std::map<std::string, io::SafetensorsFile> files;
  auto it = files.find(name);
  if (it == files.end()) it = files.emplace(name, io::load_safetensors(std::string(MINT_FIXTURE_DIR) + "/" + name)).first;
  return it->second;
}

// The parity tolerance of the op fixtures: |a - r| <= amax * max|r| + rtol * |r| (tests/fixtures/README.md).
inline Tolerance rel_to_max(const Tensor<>& ref, double amax = 1e-5, double rtol = 1e-4) {
  double m = 0;
  for (std::int64_t i = 0; i < ref.numel(); ++i) m = std::max(m, static_cast<double>(std::abs(ref[i])));
  return {amax * m, rtol};
}

}  // namespace mint::testing
