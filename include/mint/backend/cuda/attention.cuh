// mint/backend/cuda/attention.cuh -- multi-head self-attention on Tensor<Cuda> (contract: mint/nn/attention.hpp):
// softmax(Q K^T / sqrt(d_h)) V per (image, head), with the last block's head-averaged CLS attention from the
// same probabilities.
//
// Q, K and V are first copied out of the fused qkv buffer [B, T, 3*D] into head-major [3, B*H, T, d_h] (one
// pass), so each product is one strided-batched cuBLAS GEMM over all B*H heads; the softmax runs in place on the
// scores, one block per row (the kernels of mint/backend/cuda/softmax.cuh). The saved state is the
// probabilities [B, H, Q, T], as on the CPU; the backward re-derives the head-major copy from qkv instead of
// keeping it.
#pragma once

#include <cmath>

#include "mint/backend/cuda/detail/launch.cuh"
#include "mint/backend/cuda/gemm.hpp"
#include "mint/backend/cuda/softmax.cuh"
#include "mint/backend/cuda/tensor.hpp"
#include "mint/nn/attention.hpp"

namespace mint::nn {

namespace cuda_detail {

// qkv [B, T, 3D] -> heads [3, B*H, T, dh]: heads[s][b*H + h][t][e] = qkv[b][t][s*D + h*dh + e].
inline Tensor<Cuda> split_heads(const Tensor<Cuda>& qkv, std::int64_t heads) {
  const std::int64_t b = qkv.dim(0), t = qkv.dim(1), d = qkv.dim(2) / 3, dh = d / heads;
  auto out = Tensor<Cuda>::empty(Shape{3, b * heads, t, dh});
  const float* src = qkv.data();
  float* dst = out.data();
  cuda::detail::for_each(
      3 * b * t * d,
      [=] __device__(std::int64_t i) {  // i runs over qkv (coalesced reads)
        const std::int64_t c = i % (3 * d), bt = i / (3 * d), bi = bt / t, ti = bt % t;
        const std::int64_t s = c / d, h = (c % d) / dh, e = c % dh;
        dst[((s * b + bi) * heads + h) * t * dh + ti * dh + e] = src[i];
      },
      "attention (split heads)");
  return out;
}

}  // namespace cuda_detail

// requires/ensures: as the CPU attention (qkv [B, T, 3*D]; out [B, Q, D]; saved->probs [B, H, Q, T];
// cls_attn [B, T - first_patch] = mean over heads of probs[b, h, 0, first_patch + j], summed in head order).
inline Tensor<Cuda> attention(const Tensor<Cuda>& qkv, int heads, AttentionSavedT<Cuda>* saved,
                              Tensor<Cuda>* cls_attn = nullptr, int first_patch = 1, std::int64_t query_rows = -1) {
  const std::int64_t q = detail::attention_check(qkv, heads, cls_attn != nullptr, first_patch, query_rows);
  const std::int64_t b = qkv.dim(0), t = qkv.dim(1), d = qkv.dim(2) / 3;
  const std::int64_t h = heads, dh = d / h, bh = b * h;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
  auto hd = cuda_detail::split_heads(qkv, h);
  const float *qp = hd.data(), *kp = qp + bh * t * dh, *vp = kp + bh * t * dh;
  auto probs = Tensor<Cuda>::empty(Shape{b, h, q, t});
  cuda::gemm_strided_batched(false, true, q, t, dh, scale, qp, dh, t * dh, kp, dh, t * dh, 0.0f, probs.data(), t, q * t,
                             bh);
  cuda_detail::softmax_kernel<float><<<static_cast<unsigned>(bh * q), cuda::detail::row_threads(t), 0,
                                       cuda::stream()>>>(probs.data(), probs.data(), t);  // in place
  cuda::detail::check_launch("attention (softmax)");
  auto oh = Tensor<Cuda>::empty(Shape{bh, q, dh});
  cuda::gemm_strided_batched(false, false, q, dh, t, 1.0f, probs.data(), t, q * t, vp, dh, t * dh, 0.0f, oh.data(), dh,
                             q * dh, bh);
  auto out = Tensor<Cuda>::empty(Shape{b, q, d});
  {
    const float* src = oh.data();
    float* dst = out.data();
    cuda::detail::for_each(
        b * q * d,
        [=] __device__(std::int64_t i) {  // i runs over out (coalesced writes)
          const std::int64_t c = i % d, bq = i / d, bi = bq / q, qi = bq % q, hi = c / dh, e = c % dh;
          dst[i] = src[((bi * h + hi) * q + qi) * dh + e];
        },
        "attention (merge heads)");
  }
  if (cls_attn) {
    const std::int64_t np = t - first_patch, fp = first_patch;
    *cls_attn = Tensor<Cuda>::empty(Shape{b, np});
    const float* pp = probs.data();
    float* cp = cls_attn->data();
    const float inv_h = 1.0f / static_cast<float>(h);
    cuda::detail::for_each(
        b * np,
        [=] __device__(std::int64_t i) {
          const std::int64_t bi = i / np, j = i % np;
          float s = 0.0f;
          for (std::int64_t hi = 0; hi < h; ++hi) s += pp[((bi * h + hi) * q) * t + fp + j] * inv_h;
          cp[i] = s;
        },
        "attention (CLS attention)");
  }
  if (saved) saved->probs = probs;
  return out;
}

// backward of <out, dout>: dqkv += d/dqkv (as the CPU attention_backward).
inline void attention_backward(const Tensor<Cuda>& dout, const Tensor<Cuda>& qkv, int heads,
                               const AttentionSavedT<Cuda>& saved, Tensor<Cuda>& dqkv) {
  detail::attention_backward_check(dout, qkv, heads, saved.probs, dqkv);
  const std::int64_t b = qkv.dim(0), t = qkv.dim(1), d = qkv.dim(2) / 3, h = heads, dh = d / h, bh = b * h;
  const std::int64_t q = saved.probs.dim(2);
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
  auto hd = cuda_detail::split_heads(qkv, h);
  const float *qp = hd.data(), *kp = qp + bh * t * dh, *vp = kp + bh * t * dh;
  const float* p = saved.probs.data();
  auto doh = Tensor<Cuda>::empty(Shape{bh, q, dh});
  {
    const float* src = dout.data();
    float* dst = doh.data();
    cuda::detail::for_each(
        b * q * d,
        [=] __device__(std::int64_t i) {
          const std::int64_t c = i % d, bq = i / d, bi = bq / q, qi = bq % q, hi = c / dh, e = c % dh;
          dst[((bi * h + hi) * q + qi) * dh + e] = src[i];
        },
        "attention_backward (split d_output)");
  }
  // d heads [3, B*H, T, dh]; dQ fills only the first q rows of each head, the rest must read as zero
  auto dhd = q < t ? Tensor<Cuda>::zeros(hd.shape()) : Tensor<Cuda>::empty(hd.shape());
  float *dq = dhd.data(), *dk = dq + bh * t * dh, *dv = dk + bh * t * dh;
  // dV = P^T dO ; dP = dO V^T
  cuda::gemm_strided_batched(true, false, t, dh, q, 1.0f, p, t, q * t, doh.data(), dh, q * dh, 0.0f, dv, dh, t * dh, bh);
  auto dp = Tensor<Cuda>::empty(Shape{bh, q, t});
  cuda::gemm_strided_batched(false, true, q, t, dh, 1.0f, doh.data(), dh, q * dh, vp, dh, t * dh, 0.0f, dp.data(), t,
                             q * t, bh);
  cuda_detail::softmax_backward_kernel<float><<<static_cast<unsigned>(bh * q), cuda::detail::row_threads(t), 0,
                                                cuda::stream()>>>(dp.data(), p, dp.data(), t, false);  // dS in place of dP
  cuda::detail::check_launch("attention_backward (softmax)");
  // dQ = scale dS K ; dK = scale dS^T Q[:q]
  cuda::gemm_strided_batched(false, false, q, dh, t, scale, dp.data(), t, q * t, kp, dh, t * dh, 0.0f, dq, dh, t * dh, bh);
  cuda::gemm_strided_batched(true, false, t, dh, q, scale, dp.data(), t, q * t, qp, dh, t * dh, 0.0f, dk, dh, t * dh, bh);
  const float* src = dhd.data();
  float* dst = dqkv.data();
  cuda::detail::for_each(
      3 * b * t * d,
      [=] __device__(std::int64_t i) {
        const std::int64_t c = i % (3 * d), bt = i / (3 * d), bi = bt / t, ti = bt % t;
        const std::int64_t s = c / d, hi = (c % d) / dh, e = c % dh;
        dst[i] += src[((s * b + bi) * h + hi) * t * dh + ti * dh + e];
      },
      "attention_backward (merge heads)");
}

}  // namespace mint::nn
