// mint/backend/cuda/linear.cuh -- linear (y = x W^T + b) and batched matmul on Tensor<Cuda>, through cuBLAS
// (cuda::gemm, FP32). Contracts: mint/nn/linear.hpp and mint/nn/matmul.hpp.
#pragma once

#include "mint/backend/cuda/detail/launch.cuh"
#include "mint/backend/cuda/gemm.hpp"
#include "mint/backend/cuda/tensor.hpp"

namespace mint::nn {

namespace cuda_detail {
// out[j] += sum over rows of x[r, j], x [rows, n]: one thread per column (coalesced across columns).
inline void add_column_sums(const float* x, std::int64_t rows, std::int64_t n, float* out, const char* what) {
  cuda::detail::for_each(
      n,
      [=] __device__(std::int64_t j) {
        float s = 0.0f;
        for (std::int64_t r = 0; r < rows; ++r) s += x[r * n + j];
        out[j] += s;
      },
      what);
}
}  // namespace cuda_detail

// requires: x [..., K], w [N, K], b [N] or nullptr. ensures: y [..., N].
inline Tensor<Cuda> linear(const Tensor<Cuda>& x, const Tensor<Cuda>& w, const Tensor<Cuda>* b) {
  check_rank(w, 2, "linear: weight");
  const std::int64_t k = w.dim(1), n = w.dim(0);
  check(x.rank() >= 1 && x.dim(-1) == k, "linear: input shape ", x.shape().str(), " does not end in ", k,
        " (weight shape ", w.shape().str(), ")");
  if (b) check_shape(*b, Shape{n}, "linear: bias");
  const std::int64_t m = x.numel() / k;
  Shape out = x.shape();
  out[out.rank() - 1] = n;
  auto y = Tensor<Cuda>::empty(out);
  if (b) {
    float* yp = y.data();
    const float* bp = b->data();
    cuda::detail::for_each(m * n, [=] __device__(std::int64_t i) { yp[i] = bp[i % n]; }, "linear (bias)");
  }
  cuda::gemm(false, true, m, n, k, 1.0f, x.data(), k, w.data(), k, b ? 1.0f : 0.0f, y.data(), n);
  return y;
}

// backward of <y, dy>: dx += dy W (dx = dy W with GradInto::Overwrite), dw += dy^T x, db += column sums of dy.
// nullptr skips.
inline void linear_backward(const Tensor<Cuda>& dy, const Tensor<Cuda>& x, const Tensor<Cuda>& w, Tensor<Cuda>* dx,
                            Tensor<Cuda>* dw, Tensor<Cuda>* db, GradInto into = GradInto::Add) {
  const std::int64_t k = w.dim(1), n = w.dim(0), m = x.numel() / k;
  check(dy.numel() == m * n && dy.dim(-1) == n, "linear_backward: d_output shape ", dy.shape().str(),
        " does not match input ", x.shape().str(), " and weight ", w.shape().str());
  if (dx) {
    check_shape(*dx, x.shape(), "linear_backward: d_input");
    cuda::gemm(false, false, m, k, n, 1.0f, dy.data(), n, w.data(), k, into == GradInto::Add ? 1.0f : 0.0f,
               dx->data(), k);
  }
  if (dw) {
    check_shape(*dw, w.shape(), "linear_backward: d_weight");
    cuda::gemm(true, false, n, k, m, 1.0f, dy.data(), n, x.data(), k, 1.0f, dw->data(), k);
  }
  if (db) {
    check_shape(*db, Shape{n}, "linear_backward: d_bias");
    cuda_detail::add_column_sums(dy.data(), m, n, db->data(), "linear_backward (d_bias)");
  }
}

// requires: a [Bt, M, K] (or [Bt, K, M] when trans_a), b [Bt, K, N] (or [Bt, N, K]). ensures: c [Bt, M, N],
// one strided-batched cuBLAS call.
inline Tensor<Cuda> bmm(const Tensor<Cuda>& a, const Tensor<Cuda>& b, bool trans_a = false, bool trans_b = false) {
  check_rank(a, 3, "bmm: a");
  check_rank(b, 3, "bmm: b");
  const std::int64_t bt = a.dim(0), m = trans_a ? a.dim(2) : a.dim(1), k = trans_a ? a.dim(1) : a.dim(2);
  const std::int64_t kb = trans_b ? b.dim(2) : b.dim(1), n = trans_b ? b.dim(1) : b.dim(2);
  check(b.dim(0) == bt && kb == k, "bmm: shapes ", a.shape().str(), (trans_a ? "^T" : ""), " and ", b.shape().str(),
        (trans_b ? "^T" : ""), " do not multiply");
  auto c = Tensor<Cuda>::empty(Shape{bt, m, n});
  cuda::gemm_strided_batched(trans_a, trans_b, m, n, k, 1.0f, a.data(), a.dim(2), a.dim(1) * a.dim(2), b.data(),
                             b.dim(2), b.dim(1) * b.dim(2), 0.0f, c.data(), n, m * n, bt);
  return c;
}

// backward of <c, dc>: as the CPU bmm_backward (same GEMMs, batched). nullptr skips.
inline void bmm_backward(const Tensor<Cuda>& dc, const Tensor<Cuda>& a, const Tensor<Cuda>& b, bool trans_a,
                         bool trans_b, Tensor<Cuda>* da, Tensor<Cuda>* db) {
  const std::int64_t bt = a.dim(0), m = dc.dim(1), n = dc.dim(2), k = trans_a ? a.dim(1) : a.dim(2);
  check_shape(dc, Shape{bt, m, n}, "bmm_backward: d_output");
  if (da) check_shape(*da, a.shape(), "bmm_backward: d_a");
  if (db) check_shape(*db, b.shape(), "bmm_backward: d_b");
  const std::int64_t sa = a.dim(1) * a.dim(2), sb = b.dim(1) * b.dim(2), sc = m * n;
  if (da) {
    if (!trans_a)
      cuda::gemm_strided_batched(false, !trans_b, m, k, n, 1.0f, dc.data(), n, sc, b.data(), b.dim(2), sb, 1.0f,
                                 da->data(), k, sa, bt);
    else
      cuda::gemm_strided_batched(trans_b, true, k, m, n, 1.0f, b.data(), b.dim(2), sb, dc.data(), n, sc, 1.0f,
                                 da->data(), m, sa, bt);
  }
  if (db) {
    if (!trans_b)
      cuda::gemm_strided_batched(!trans_a, false, k, n, m, 1.0f, a.data(), a.dim(2), sa, dc.data(), n, sc, 1.0f,
                                 db->data(), n, sb, bt);
    else
      cuda::gemm_strided_batched(true, trans_a, n, k, m, 1.0f, dc.data(), n, sc, a.data(), a.dim(2), sa, 1.0f,
                                 db->data(), k, sb, bt);
  }
}

}  // namespace mint::nn
