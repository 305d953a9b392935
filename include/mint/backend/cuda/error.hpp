// mint/backend/cuda/error.hpp -- MINT_CUDA_CHECK / MINT_CUBLAS_CHECK: a failing CUDA runtime or cuBLAS call
// throws mint::Error naming the call as written, file:line, and the library's own name and text for the code.
// Plain C++ (cuda_runtime.h and cublas_v2.h are host headers): g++ compiles it; linking needs CUDA::cudart.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "mint/core/error.hpp"

namespace mint::cuda::detail {

[[noreturn]] inline void throw_cuda(cudaError_t err, const char* expr, const char* file, int line) {
  throw Error(mint::detail::concat("CUDA call `", expr, "` failed at ", file, ":", line, ": ", cudaGetErrorName(err),
                                   " (", cudaGetErrorString(err), ")"));
}

[[noreturn]] inline void throw_cublas(cublasStatus_t st, const char* expr, const char* file, int line) {
  throw Error(mint::detail::concat("cuBLAS call `", expr, "` failed at ", file, ":", line, ": ",
                                   cublasGetStatusName(st), " (", cublasGetStatusString(st), ")"));
}

}  // namespace mint::cuda::detail

#define MINT_CUDA_CHECK(expr)                                                                  \
  do {                                                                                         \
    const cudaError_t mint_cuda_err_ = (expr);                                                 \
    if (mint_cuda_err_ != cudaSuccess) {                                                       \
      (void)cudaGetLastError(); /* clear the sticky-free error so the next call starts clean */ \
      ::mint::cuda::detail::throw_cuda(mint_cuda_err_, #expr, __FILE__, __LINE__);             \
    }                                                                                          \
  } while (0)

#define MINT_CUBLAS_CHECK(expr)                                                              \
  do {                                                                                       \
    const cublasStatus_t mint_cublas_st_ = (expr);                                           \
    if (mint_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                            \
      ::mint::cuda::detail::throw_cublas(mint_cublas_st_, #expr, __FILE__, __LINE__);        \
  } while (0)
