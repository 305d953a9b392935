// mint/nn/attention.hpp -- the core of multi-head self-attention: softmax(Q K^T / sqrt(d_h)) V per head,
// reading Q, K, V in place from timm's fused qkv projection (token layout [3, heads, d_h]).
//
// It can also hand out the head-averaged attention from the CLS token (row 0) to the patch tokens
// (columns `first_patch`..T-1): SMI Sec. 4.2 / PRI's importance score, computed from the probabilities this
// pass already holds, so it costs one pass over B*H*T floats and no extra forward.
#pragma once

#include <cmath>
#include <vector>

#include "mint/backend/cpu/gemm.hpp"
#include "mint/backend/cpu/parallel.hpp"
#include "mint/core/tensor.hpp"
#include "mint/nn/softmax.hpp"

namespace mint::nn {

template <class Device = Cpu>
struct AttentionSavedT {
  Tensor<Device> probs;  // [B, H, Q, T]
};
using AttentionSaved = AttentionSavedT<Cpu>;

namespace detail {
// attention's checks (a template: the CUDA op, mint/backend/cuda/attention.cuh, runs them too); returns the
// number of query rows Q.
template <class D>
std::int64_t attention_check(const Tensor<D>& qkv, int heads, bool cls_attn, int first_patch, std::int64_t query_rows) {
  check_rank(qkv, 3, "attention: qkv");
  const std::int64_t t = qkv.dim(1), d = qkv.dim(2) / 3;
  check(qkv.dim(2) % 3 == 0 && heads > 0 && d % heads == 0, "attention: qkv shape ", qkv.shape().str(),
        " is not [B, T, 3*D] with D divisible by ", heads, " heads");
  const std::int64_t q = query_rows < 0 ? t : query_rows;
  check(q >= 1 && q <= t, "attention: query_rows ", query_rows, " outside 1..", t);
  if (cls_attn) check(first_patch >= 1 && first_patch <= t, "attention: first_patch ", first_patch, " outside 1..", t);
  return q;
}

// attention_backward's checks (a template: the CUDA op, mint/backend/cuda/attention.cuh, runs them too).
template <class D>
void attention_backward_check(const Tensor<D>& dout, const Tensor<D>& qkv, int heads, const Tensor<D>& probs,
                              const Tensor<D>& dqkv) {
  const std::int64_t b = qkv.dim(0), t = qkv.dim(1), d = qkv.dim(2) / 3;
  check(probs.rank() == 4 && probs.dim(0) == b && probs.dim(1) == heads && probs.dim(3) == t,
        "attention_backward: saved probabilities ", probs.shape().str(), " do not match qkv ", qkv.shape().str(),
        " with ", heads, " heads");
  check_shape(dout, Shape{b, probs.dim(2), d}, "attention_backward: d_output");
  check_shape(dqkv, qkv.shape(), "attention_backward: d_qkv");
}
}  // namespace detail

// requires: qkv [B, T, 3*D] with D divisible by heads; 1 <= query_rows <= T (-1: all T).
// ensures:  returns out [B, Q, D] (heads concatenated, before the output projection) for the first Q = query_rows
//           query tokens attending to all T tokens; saved->probs filled when saved != nullptr; when
//           cls_attn != nullptr it is set to [B, T - first_patch] holding mean_h probs[b, h, 0, first_patch + j].
// A ViT's last block only needs its CLS (and distillation) rows, since nothing else reaches the head:
// query_rows = 1 or 2 there, while keys and values still come from every token.
inline Tensor<Cpu> attention(const Tensor<Cpu>& qkv, int heads, AttentionSaved* saved, Tensor<Cpu>* cls_attn = nullptr,
                             int first_patch = 1, std::int64_t query_rows = -1) {
  const std::int64_t q = detail::attention_check(qkv, heads, cls_attn != nullptr, first_patch, query_rows);
  const std::int64_t b = qkv.dim(0), t = qkv.dim(1), d = qkv.dim(2) / 3, dh = d / heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
  auto out = Tensor<Cpu>::empty(Shape{b, q, d});
  auto probs = Tensor<Cpu>::empty(Shape{b, heads, q, t});
  const float* base = qkv.data();
  cpu::parallel_for(b * heads, [&](std::int64_t bh) {
    const std::int64_t i = bh / heads, h = bh % heads;
    const float* qp = base + i * t * 3 * d + h * dh;
    float* p = probs.data() + bh * q * t;
    cpu::gemm(false, true, q, t, dh, scale, qp, 3 * d, qp + d, 3 * d, 0.0f, p, t);
    for (std::int64_t r = 0; r < q; ++r) detail::softmax_row(p + r * t, t);
    cpu::gemm(false, false, q, dh, t, 1.0f, p, t, qp + 2 * d, 3 * d, 0.0f, out.data() + i * q * d + h * dh, d);
  });
  if (cls_attn) {
    const std::int64_t np = t - first_patch;
    *cls_attn = Tensor<Cpu>::zeros(Shape{b, np});
    const float inv_h = 1.0f / static_cast<float>(heads);
    for (std::int64_t i = 0; i < b; ++i)
      for (std::int64_t h = 0; h < heads; ++h) {
        const float* row0 = probs.data() + (i * heads + h) * q * t + first_patch;
        for (std::int64_t j = 0; j < np; ++j) (*cls_attn)[i * np + j] += row0[j] * inv_h;
      }
  }
  if (saved) saved->probs = probs;
  return out;
}

// backward of <out, dout>: dqkv += d/dqkv. Needs the saved probabilities of the forward pass (whose shape
// [B, H, Q, T] also says how many query rows the forward computed).
inline void attention_backward(const Tensor<Cpu>& dout, const Tensor<Cpu>& qkv, int heads, const AttentionSaved& saved,
                               Tensor<Cpu>& dqkv) {
  detail::attention_backward_check(dout, qkv, heads, saved.probs, dqkv);
  const std::int64_t b = qkv.dim(0), t = qkv.dim(1), d = qkv.dim(2) / 3, dh = d / heads, q = saved.probs.dim(2);
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
  const float* base = qkv.data();
  const int nt = cpu::num_threads();
  std::vector<float> scratch(static_cast<std::size_t>(nt) * q * t);
#pragma omp parallel for schedule(static) num_threads(nt)
  for (std::int64_t bh = 0; bh < b * heads; ++bh) {
#if defined(_OPENMP)
    float* dp = scratch.data() + static_cast<std::size_t>(omp_get_thread_num()) * q * t;
#else
    float* dp = scratch.data();
#endif
    const std::int64_t i = bh / heads, h = bh % heads;
    const float* qp = base + i * t * 3 * d + h * dh;
    const float* p = saved.probs.data() + bh * q * t;
    const float* dO = dout.data() + i * q * d + h * dh;
    float* dq = dqkv.data() + i * t * 3 * d + h * dh;
    // dV += P^T dO ; dP = dO V^T
    cpu::gemm(true, false, t, dh, q, 1.0f, p, t, dO, d, 1.0f, dq + 2 * d, 3 * d);
    cpu::gemm(false, true, q, t, dh, 1.0f, dO, d, qp + 2 * d, 3 * d, 0.0f, dp, t);
    // dS = P * (dP - rowsum(dP * P)), in place in dp
    for (std::int64_t r = 0; r < q; ++r) detail::softmax_row_backward_inplace(p + r * t, dp + r * t, t);
    // dQ += scale dS K (the first q rows) ; dK += scale dS^T Q
    cpu::gemm(false, false, q, dh, t, scale, dp, t, qp + d, 3 * d, 1.0f, dq, 3 * d);
    cpu::gemm(true, false, t, dh, q, scale, dp, t, qp, 3 * d, 1.0f, dq + d, 3 * d);
  }
}

}  // namespace mint::nn
