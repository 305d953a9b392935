// Helpers of the CUDA tests: skip without a GPU (Catch2 v2 has no SKIP: the test prints a line that CTest's
// SKIP_REGULAR_EXPRESSION turns into "Skipped", and returns), and CPU-vs-GPU comparison that always prints the
// max difference.
#pragma once

#include <cstdio>

#include "mint/backend/cuda/runtime.hpp"
#include "mint/backend/cuda/tensor.hpp"
#include "test_util.hpp"

#define MINT_CUDA_REQUIRE_DEVICE()                                                                     \
  do {                                                                                                 \
    if (!::mint::cuda::device_available()) {                                                           \
      std::printf("SKIPPED: no usable CUDA device (%s)\n", ::mint::cuda::device_status().reason.c_str()); \
      WARN("SKIPPED: no usable CUDA device (" << ::mint::cuda::device_status().reason << ")");         \
      return;                                                                                          \
    }                                                                                                  \
  } while (0)

namespace mint::testing {

// The GPU result against the CPU oracle; prints the comparison line whether it passes or not.
inline CloseReport compare_gpu(const Tensor<Cuda>& gpu, const Tensor<Cpu>& cpu, Tolerance tol, const std::string& what) {
  auto r = compare(cuda::to_host(gpu), cpu, tol, "GPU vs CPU " + what);
  std::printf("%s\n", r.message.c_str());
  return r;
}

}  // namespace mint::testing
