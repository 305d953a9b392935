// mint/backend/cuda/tokens.cuh -- images to tokens on Tensor<Cuda> (contracts: mint/nn/tokens.hpp): token
// gather (keep sets) and its scatter-add backward; patchify fused with the gather (one kernel reads the kept
// patches' pixels straight from the images) and its backward; the CLS/position embedding and its backward.
// A keep set is validated on the host and uploaded when it changes (B*K ints).
#pragma once

#include <optional>

#include "mint/backend/cuda/detail/launch.cuh"
#include "mint/backend/cuda/tensor.hpp"
#include "mint/nn/tokens.hpp"

namespace mint::nn {

namespace cuda_detail {
// The keep set's indices on the device: cuda::detail::UploadCache (an unchanged keep set is not copied again,
// and a CUDA graph replays on the same pointer).
struct DeviceIndex {
  const std::int32_t* ptr;
  explicit DeviceIndex(const TokenIndex& keep)
      : ptr(cuda::detail::UploadCache::instance().get(keep.index.data(), keep.index.size())) {}
};
}  // namespace cuda_detail

// requires: x [B, N, F], keep valid for (B, N). ensures: [B, K, F], row k of image b = x[b, keep(b, k)].
inline Tensor<Cuda> gather_tokens(const Tensor<Cuda>& x, const TokenIndex& keep) {
  check_rank(x, 3, "gather_tokens: x");
  const std::int64_t b = x.dim(0), n = x.dim(1), f = x.dim(2), k = keep.count;
  keep.validate(b, n);
  auto out = Tensor<Cuda>::empty(Shape{b, k, f});
  cuda_detail::DeviceIndex idx(keep);
  const std::int32_t* ip = idx.ptr;
  const float* xp = x.data();
  float* op = out.data();
  cuda::detail::for_each(
      b * k * f,
      [=] __device__(std::int64_t t) {
        const std::int64_t bk = t / f, e = t % f, i = bk / k;
        op[t] = xp[(i * n + ip[bk]) * f + e];
      },
      "gather_tokens");
  return out;
}

// backward: dx[b, keep(b, k)] += dy[b, k]. Indices within an image are distinct, so no two threads add to the
// same element: plain adds, deterministic.
inline void gather_tokens_backward(const Tensor<Cuda>& dy, const TokenIndex& keep, Tensor<Cuda>& dx) {
  check_rank(dx, 3, "gather_tokens_backward: d_input");
  const std::int64_t b = dx.dim(0), n = dx.dim(1), f = dx.dim(2), k = keep.count;
  check_shape(dy, Shape{b, k, f}, "gather_tokens_backward: d_output");
  keep.validate(b, n);
  cuda_detail::DeviceIndex idx(keep);
  const std::int32_t* ip = idx.ptr;
  const float* dyp = dy.data();
  float* dxp = dx.data();
  cuda::detail::for_each(
      b * k * f,
      [=] __device__(std::int64_t t) {
        const std::int64_t bk = t / f, e = t % f, i = bk / k;
        dxp[(i * n + ip[bk]) * f + e] += dyp[t];
      },
      "gather_tokens_backward");
}


// requires: images [B, C, H, W], H and W divisible by p; keep valid for (B, N) or nullptr (all N patches).
// ensures:  [B, K, C*p*p]: = gather_tokens(patchify(images, p), *keep), in one pass over the kept pixels.
inline Tensor<Cuda> patchify(const Tensor<Cuda>& images, std::int64_t p, const TokenIndex* keep = nullptr) {
  check_rank(images, 4, "patchify: images");
  const std::int64_t b = images.dim(0), c = images.dim(1), h = images.dim(2), w = images.dim(3);
  check(p > 0 && h % p == 0 && w % p == 0, "patchify: image shape ", images.shape().str(),
        " is not divisible into ", p, "x", p, " patches");
  const std::int64_t gw = w / p, n = (h / p) * gw, f = c * p * p, k = keep ? keep->count : n;
  if (keep) keep->validate(b, n);
  auto out = Tensor<Cuda>::empty(Shape{b, k, f});
  std::optional<cuda_detail::DeviceIndex> idx;
  if (keep) idx.emplace(*keep);
  const std::int32_t* ip = idx ? idx->ptr : nullptr;
  const float* src = images.data();
  float* dst = out.data();
  cuda::detail::for_each(
      b * k * f,
      [=] __device__(std::int64_t t) {
        const std::int64_t bk = t / f, e = t % f, i = bk / k, pi = ip ? ip[bk] : bk % k;
        const std::int64_t ch = e / (p * p), y = (e / p) % p, x = e % p, py = pi / gw, px = pi % gw;
        dst[t] = src[((i * c + ch) * h + py * p + y) * w + px * p + x];
      },
      "patchify");
  return out;
}

// backward: dimages += the kept patches written back to their pixels (distinct patches: plain adds).
inline void patchify_backward(const Tensor<Cuda>& dpatches, std::int64_t p, const TokenIndex* keep,
                              Tensor<Cuda>& dimages) {
  check_rank(dimages, 4, "patchify_backward: d_images");
  const std::int64_t b = dimages.dim(0), c = dimages.dim(1), h = dimages.dim(2), w = dimages.dim(3);
  const std::int64_t gw = w / p, n = (h / p) * gw, f = c * p * p, k = keep ? keep->count : n;
  check_shape(dpatches, Shape{b, k, f}, "patchify_backward: d_patches");
  if (keep) keep->validate(b, n);
  std::optional<cuda_detail::DeviceIndex> idx;
  if (keep) idx.emplace(*keep);
  const std::int32_t* ip = idx ? idx->ptr : nullptr;
  const float* src = dpatches.data();
  float* dst = dimages.data();
  cuda::detail::for_each(
      b * k * f,
      [=] __device__(std::int64_t t) {
        const std::int64_t bk = t / f, e = t % f, i = bk / k, pi = ip ? ip[bk] : bk % k;
        const std::int64_t ch = e / (p * p), y = (e / p) % p, x = e % p, py = pi / gw, px = pi % gw;
        dst[((i * c + ch) * h + py * p + y) * w + px * p + x] += src[t];
      },
      "patchify_backward");
}
inline void patchify_backward(const Tensor<Cuda>& dpatches, std::int64_t p, Tensor<Cuda>& dimages) {
  patchify_backward(dpatches, p, nullptr, dimages);
}

// requires/ensures: as the CPU embed_tokens ([B, E + K, D]).
inline Tensor<Cuda> embed_tokens(const Tensor<Cuda>& patch_tokens, const TokenIndex* keep,
                                 const TokenEmbedParamsT<Cuda>& prm) {
  detail::embed_tokens_check(patch_tokens, keep, prm);
  const std::int64_t b = patch_tokens.dim(0), k = patch_tokens.dim(1), d = patch_tokens.dim(2);
  const std::int64_t e = prm.dist ? 2 : 1, n = prm.pos->dim(1) - e;
  if (keep) keep->validate(b, n);  // the device reads pos rows by these indices without bounds checks
  auto out = Tensor<Cuda>::empty(Shape{b, e + k, d});
  std::optional<cuda_detail::DeviceIndex> idx;
  if (keep) idx.emplace(*keep);
  const std::int32_t* ip = idx ? idx->ptr : nullptr;
  const float *pt = patch_tokens.data(), *pos = prm.pos->data(), *cls = prm.cls->data();
  const float* dist = prm.dist ? prm.dist->data() : nullptr;
  float* dst = out.data();
  cuda::detail::for_each(
      b * (e + k) * d,
      [=] __device__(std::int64_t t) {
        const std::int64_t col = t % d, bt = t / d, i = bt / (e + k), r = bt % (e + k);
        if (r < e) {
          dst[t] = (r == 0 ? cls : dist)[col] + pos[r * d + col];
        } else {
          const std::int64_t j = r - e, pr = e + (ip ? ip[i * k + j] : j);
          dst[t] = pt[(i * k + j) * d + col] + pos[pr * d + col];
        }
      },
      "embed_tokens");
  return out;
}

// backward: as the CPU embed_tokens_backward. d_cls/d_dist are column sums over the batch (deterministic);
// d_pos adds with float atomics (a kept position row may be hit by several images), so its summation order,
// not its value, varies run to run.
inline void embed_tokens_backward(const Tensor<Cuda>& dy, const TokenIndex* keep, std::int64_t extra,
                                  const TokenEmbedGradsT<Cuda>& g) {
  check_rank(dy, 3, "embed_tokens_backward: d_output");
  const std::int64_t b = dy.dim(0), t = dy.dim(1), d = dy.dim(2), k = t - extra;
  const float* src = dy.data();
  if (g.patch_tokens) {
    check_shape(*g.patch_tokens, Shape{b, k, d}, "embed_tokens_backward: d_patch_tokens");
    float* dst = g.patch_tokens->data();
    cuda::detail::for_each(
        b * k * d,
        [=] __device__(std::int64_t i) {
          const std::int64_t bk = i / d, col = i % d;
          dst[i] += src[((bk / k) * t + extra + bk % k) * d + col];
        },
        "embed_tokens_backward (d_patch_tokens)");
  }
  for (std::int64_t r = 0; r < extra; ++r) {
    Tensor<Cuda>* tok = r == 0 ? g.cls : g.dist;
    if (!tok) continue;
    check(tok->numel() == d, "embed_tokens_backward: d_token has ", tok->numel(), " elements, expected ", d);
    float* dst = tok->data();
    cuda::detail::for_each(
        d,
        [=] __device__(std::int64_t col) {
          float s = 0.0f;
          for (std::int64_t i = 0; i < b; ++i) s += src[(i * t + r) * d + col];
          dst[col] += s;
        },
        "embed_tokens_backward (d_cls, d_dist)");
  }
  if (g.pos) {
    if (keep) keep->validate(b, g.pos->dim(1) - extra);
    std::optional<cuda_detail::DeviceIndex> idx;
    if (keep) idx.emplace(*keep);
    const std::int32_t* ip = idx ? idx->ptr : nullptr;
    float* dst = g.pos->data();
    cuda::detail::for_each(
        b * t * d,
        [=] __device__(std::int64_t i) {
          const std::int64_t col = i % d, bt = i / d, bi = bt / t, r = bt % t;
          const std::int64_t pr = r < extra ? r : extra + (ip ? ip[bi * k + r - extra] : r - extra);
          atomicAdd(dst + pr * d + col, src[i]);
        },
        "embed_tokens_backward (d_pos)");
  }
}

}  // namespace mint::nn
