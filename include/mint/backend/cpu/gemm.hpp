// mint/backend/cpu/gemm.hpp -- the CPU GEMM: Eigen over mint's buffers (Eigen::Map, no copies).
//
// Contract: C = alpha * op(A) * op(B) + beta * C, all row-major, op(X) = X or X^T, with leading dimensions
// lda/ldb/ldc (elements between consecutive rows as stored), so strided sub-matrices such as one attention
// head inside a fused qkv buffer are used in place. op(A) is M x K, op(B) is K x N, C is M x N.
// beta == 0 overwrites C (it may hold garbage); beta == 1 accumulates.
//
// Eigen parallelises a single large GEMM over the OpenMP team; inside a parallel region (batched attention
// GEMMs, one per image and head) it runs single-threaded. When mint is configured with MINT_BLAS=OpenBLAS,
// EIGEN_USE_BLAS makes Eigen forward these products to sgemm (docs/performance.md has the measurements).
#pragma once

#include <cstdint>

#include <Eigen/Core>

namespace mint::cpu {

namespace detail {
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMat, Eigen::Unaligned, Eigen::OuterStride<>>;
using MutMap = Eigen::Map<RowMat, Eigen::Unaligned, Eigen::OuterStride<>>;

template <class L, class R>
void gemm_assign(MutMap& c, const L& a, const R& b, float alpha, float beta) {
  if (beta == 0.0f) {
    if (alpha == 1.0f) c.noalias() = a * b;
    else c.noalias() = alpha * (a * b);
  } else {
    if (beta != 1.0f) c *= beta;
    if (alpha == 1.0f) c.noalias() += a * b;
    else c.noalias() += alpha * (a * b);
  }
}
}  // namespace detail

inline void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                 const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                 std::int64_t ldc) {
  using detail::ConstMap;
  detail::MutMap cm(c, m, n, Eigen::OuterStride<>(ldc));
  if (k == 0) {  // empty product: only the beta scaling applies
    if (beta == 0.0f) cm.setZero();
    else cm *= beta;
    return;
  }
  ConstMap am(a, trans_a ? k : m, trans_a ? m : k, Eigen::OuterStride<>(lda));
  ConstMap bm(b, trans_b ? n : k, trans_b ? k : n, Eigen::OuterStride<>(ldb));
  if (!trans_a && !trans_b) detail::gemm_assign(cm, am, bm, alpha, beta);
  else if (!trans_a && trans_b) detail::gemm_assign(cm, am, bm.transpose(), alpha, beta);
  else if (trans_a && !trans_b) detail::gemm_assign(cm, am.transpose(), bm, alpha, beta);
  else detail::gemm_assign(cm, am.transpose(), bm.transpose(), alpha, beta);
}

}  // namespace mint::cpu
