// mint/backend/cuda/gemm.hpp -- the GPU GEMM: cuBLAS, with cpu::gemm's row-major interface.
//
// Contract (the same as mint/backend/cpu/gemm.hpp): C = alpha * op(A) * op(B) + beta * C, all row-major,
// op(X) = X or X^T, leading dimensions lda/ldb/ldc in elements, so strided sub-matrices (one head inside a
// fused qkv buffer) are used in place. beta == 0 overwrites C. cuBLAS is column-major; a row-major M x N matrix
// with leading dimension ld is the column-major N x M matrix with the same ld, so mint computes
// C^T = op(B)^T op(A)^T: cuBLAS gets (B, A) swapped, (n, m) swapped, and the same transpose flags.
// detail::to_column_major() is that mapping; tests/cuda/test_cuda_runtime.cpp checks it on the CPU too.
//
// Precision: FP32 (the default) keeps float32 products (CUBLAS_COMPUTE_32F_PEDANTIC: no TF32 even when
// NVIDIA_TF32_OVERRIDE asks). TF32 is an explicit opt-in: tensor cores with 10-bit mantissas for the inputs,
// about 1e-3 relative error, faster on Ampere and later.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

#include "mint/backend/cuda/runtime.hpp"

namespace mint::cuda {

enum class MathMode { FP32, TF32 };

namespace detail {

// The column-major call that computes a row-major GEMM.
struct ColumnMajorGemm {
  bool trans_first, trans_second;  // transposes of the first and second cuBLAS operands
  std::int64_t m, n, k;            // cuBLAS's m, n, k
  const float* first;
  std::int64_t ld_first;
  const float* second;
  std::int64_t ld_second;
};

inline ColumnMajorGemm to_column_major(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                                       const float* a, std::int64_t lda, const float* b, std::int64_t ldb) {
  return {trans_b, trans_a, n, m, k, b, ldb, a, lda};
}

inline int to_int(std::int64_t v, const char* what) {
  check(v >= 0 && v <= std::numeric_limits<int>::max(), "cuda::gemm: ", what, " = ", v,
        " does not fit cuBLAS's 32-bit int");
  return static_cast<int>(v);
}

inline cublasHandle_t handle() {
  static cublasHandle_t h = [] {
    cublasHandle_t hh = nullptr;
    (void)stream();  // "no usable GPU" before cuBLAS's own less specific error
    MINT_CUBLAS_CHECK(cublasCreate(&hh));
    MINT_CUBLAS_CHECK(cublasSetStream(hh, stream()));
    // An explicit workspace (never freed, like the handle), so no cuBLAS call allocates one lazily: a CUDA graph
    // capture (mint/inversion/inverter_cuda.cuh) must not see an allocation inside cuBLAS. 32 MiB is cuBLAS's
    // recommendation for Hopper.
    constexpr std::size_t kWorkspace = std::size_t{32} << 20;
    void* ws = nullptr;
    MINT_CUDA_CHECK(cudaMalloc(&ws, kWorkspace));
    MINT_CUBLAS_CHECK(cublasSetWorkspace(hh, ws, kWorkspace));
    return hh;
  }();
  return h;
}

inline cublasComputeType_t compute_type(MathMode mode) {
  return mode == MathMode::TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F_PEDANTIC;
}

}  // namespace detail

// C = alpha op(A) op(B) + beta C on cuda::stream(); pointers are device pointers.
inline void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                 const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                 std::int64_t ldc, MathMode mode = MathMode::FP32) {
  if (m == 0 || n == 0) return;
  const auto g = detail::to_column_major(trans_a, trans_b, m, n, k, a, lda, b, ldb);
  using detail::to_int;
  MINT_CUBLAS_CHECK(cublasGemmEx(detail::handle(), g.trans_first ? CUBLAS_OP_T : CUBLAS_OP_N,
                                 g.trans_second ? CUBLAS_OP_T : CUBLAS_OP_N, to_int(g.m, "n"), to_int(g.n, "m"),
                                 to_int(g.k, "k"), &alpha, g.first, CUDA_R_32F, to_int(g.ld_first, "ldb"), g.second,
                                 CUDA_R_32F, to_int(g.ld_second, "lda"), &beta, c, CUDA_R_32F, to_int(ldc, "ldc"),
                                 detail::compute_type(mode), CUBLAS_GEMM_DEFAULT));
}

// `batch` GEMMs with the same shapes, operand i at a + i*stride_a etc. (attention: one per image and head).
inline void gemm_strided_batched(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                                 float alpha, const float* a, std::int64_t lda, std::int64_t stride_a, const float* b,
                                 std::int64_t ldb, std::int64_t stride_b, float beta, float* c, std::int64_t ldc,
                                 std::int64_t stride_c, std::int64_t batch, MathMode mode = MathMode::FP32) {
  if (m == 0 || n == 0 || batch == 0) return;
  const auto g = detail::to_column_major(trans_a, trans_b, m, n, k, a, lda, b, ldb);
  using detail::to_int;
  MINT_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      detail::handle(), g.trans_first ? CUBLAS_OP_T : CUBLAS_OP_N, g.trans_second ? CUBLAS_OP_T : CUBLAS_OP_N,
      to_int(g.m, "n"), to_int(g.n, "m"), to_int(g.k, "k"), &alpha, g.first, CUDA_R_32F, to_int(g.ld_first, "ldb"),
      stride_b, g.second, CUDA_R_32F, to_int(g.ld_second, "lda"), stride_a, &beta, c, CUDA_R_32F, to_int(ldc, "ldc"),
      stride_c, to_int(batch, "batch"), detail::compute_type(mode), CUBLAS_GEMM_DEFAULT));
}

}  // namespace mint::cuda
