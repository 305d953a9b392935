// Shared test helpers: a REQUIRE that prints a CloseReport's message (max difference and where).
#pragma once

#include <filesystem>
#include <random>
#include <string>

#include <catch2/catch.hpp>

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

}  // namespace mint::testing
