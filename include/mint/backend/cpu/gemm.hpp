// mint/backend/cpu/gemm.hpp -- the CPU GEMM: one row-major interface over the candidate SGEMMs of
// mint/backend/cpu/gemm_backends.hpp (Eigen, OpenBLAS, BLIS, oneDNN, LIBXSMM), the one chosen by measurement.
//
// Contract: C = alpha * op(A) * op(B) + beta * C, all row-major, op(X) = X or X^T, with leading dimensions
// lda/ldb/ldc (elements between consecutive rows as stored), so strided sub-matrices such as one attention
// head inside a fused qkv buffer are used in place. op(A) is M x K, op(B) is K x N, C is M x N.
// beta == 0 overwrites C (it may hold garbage); beta == 1 accumulates.
//
// A call outside an OpenMP parallel region runs on gemm_choice().team over the whole team; a call inside one, active
// or not (batched attention GEMMs, one per image and head), on gemm_choice().single, on the calling thread.
// docs/performance.md ("Which GEMM") has the measurements behind the default and the results check.
#pragma once

#include <omp.h>

#include <cstdint>

#include "mint/backend/cpu/gemm_backends.hpp"
#include "mint/backend/cpu/parallel.hpp"

namespace mint::cpu {

inline void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                 const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                 std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // empty product: only the beta scaling applies
    detail::MutMap cm(c, m, n, Eigen::OuterStride<>(ldc));
    if (beta == 0.0f) cm.setZero();
    else cm *= beta;
    return;
  }
  const GemmChoice choice = gemm_choice();
  gemm_on(in_parallel_region() ? choice.single : choice.team, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c,
          ldc);
}

}  // namespace mint::cpu
