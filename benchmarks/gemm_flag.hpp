// benchmarks/gemm_flag.hpp -- the benchmarks' --gemm=NAME (or --gemm=TEAM,SINGLE): which GEMM candidate runs
// (mint/backend/cpu/gemm_backends.hpp), taken out of argv before Google Benchmark parses it.
#pragma once

#include <cstdio>
#include <exception>
#include <string>

#include "mint/backend/cpu/gemm_backends.hpp"

namespace mint_bench {

// Removes every --gemm=... from argv and applies it. ensures: false (after printing the reason) on a name the
// build does not have.
inline bool take_gemm_flag(int& argc, char** argv) {
  int kept = 1;
  std::string value;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--gemm=", 0) == 0) value = arg.substr(7);
    else argv[kept++] = argv[i];
  }
  argc = kept;
  if (value.empty()) return true;
  try {
    const auto comma = value.find(',');
    const auto team = mint::cpu::parse_gemm_backend(value.substr(0, comma));
    const auto single = comma == std::string::npos ? team : mint::cpu::parse_gemm_backend(value.substr(comma + 1));
    mint::cpu::set_gemm_choice({team, single});
    return true;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "--gemm=%s: %s\n", value.c_str(), e.what());
    return false;
  }
}

}  // namespace mint_bench
