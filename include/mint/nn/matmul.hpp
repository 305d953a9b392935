// mint/nn/matmul.hpp -- batched matrix product c[i] = op(a[i]) op(b[i]).
#pragma once

#include "mint/backend/cpu/gemm.hpp"
#include "mint/backend/cpu/parallel.hpp"
#include "mint/core/tensor.hpp"

namespace mint::nn {

// requires: a [Bt, M, K] (or [Bt, K, M] when trans_a), b [Bt, K, N] (or [Bt, N, K] when trans_b).
// ensures:  returns c [Bt, M, N]. The batch is split across threads, each GEMM single-threaded.
inline Tensor<Cpu> bmm(const Tensor<Cpu>& a, const Tensor<Cpu>& b, bool trans_a = false, bool trans_b = false) {
  check_rank(a, 3, "bmm: a");
  check_rank(b, 3, "bmm: b");
  const std::int64_t bt = a.dim(0), m = trans_a ? a.dim(2) : a.dim(1), k = trans_a ? a.dim(1) : a.dim(2);
  const std::int64_t kb = trans_b ? b.dim(2) : b.dim(1), n = trans_b ? b.dim(1) : b.dim(2);
  check(b.dim(0) == bt && kb == k, "bmm: shapes ", a.shape().str(), (trans_a ? "^T" : ""), " and ", b.shape().str(),
        (trans_b ? "^T" : ""), " do not multiply");
  auto c = Tensor<Cpu>::empty(Shape{bt, m, n});
  cpu::parallel_for(bt, [&](std::int64_t i) {
    cpu::gemm(trans_a, trans_b, m, n, k, 1.0f, a.data() + i * a.dim(1) * a.dim(2), a.dim(2),
              b.data() + i * b.dim(1) * b.dim(2), b.dim(2), 0.0f, c.data() + i * m * n, n);
  });
  return c;
}

// backward of <c, dc>: da += dc op(b)^T (transposed back to a's layout), db likewise. nullptr skips.
inline void bmm_backward(const Tensor<Cpu>& dc, const Tensor<Cpu>& a, const Tensor<Cpu>& b, bool trans_a, bool trans_b,
                         Tensor<Cpu>* da, Tensor<Cpu>* db) {
  const std::int64_t bt = a.dim(0), m = dc.dim(1), n = dc.dim(2), k = trans_a ? a.dim(1) : a.dim(2);
  check_shape(dc, Shape{bt, m, n}, "bmm_backward: d_output");
  if (da) check_shape(*da, a.shape(), "bmm_backward: d_a");
  if (db) check_shape(*db, b.shape(), "bmm_backward: d_b");
  const std::int64_t sa = a.dim(1) * a.dim(2), sb = b.dim(1) * b.dim(2);
  cpu::parallel_for(bt, [&](std::int64_t i) {
    const float* dci = dc.data() + i * m * n;
    if (da) {  // d op(a) = dc op(b)^T  [M, K]
      if (!trans_a) cpu::gemm(false, !trans_b, m, k, n, 1.0f, dci, n, b.data() + i * sb, b.dim(2), 1.0f, da->data() + i * sa, k);
      else cpu::gemm(trans_b, true, k, m, n, 1.0f, b.data() + i * sb, b.dim(2), dci, n, 1.0f, da->data() + i * sa, m);
    }
    if (db) {  // d op(b) = op(a)^T dc  [K, N]
      if (!trans_b) cpu::gemm(!trans_a, false, k, n, m, 1.0f, a.data() + i * sa, a.dim(2), dci, n, 1.0f, db->data() + i * sb, n);
      else cpu::gemm(true, trans_a, n, k, m, 1.0f, dci, n, a.data() + i * sa, a.dim(2), 1.0f, db->data() + i * sb, k);
    }
  });
}

}  // namespace mint::nn
