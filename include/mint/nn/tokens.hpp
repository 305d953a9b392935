// mint/nn/tokens.hpp -- from images to the token sequence a ViT runs on, with per-image token keep sets.
//
// Pruning follows SMI Sec. 4.2: tokens are dropped after the position-embedding add, so the blocks only see
// kept tokens and their cost follows the kept count. Because the patch embedding is a per-patch linear map,
// "embed every patch, add positions, gather" equals "gather the patches' pixels, embed them, add the
// gathered positions" -- mint does the latter, so the embedding GEMM shrinks with the kept count too.
#pragma once

#include <cstdint>
#include <vector>

#include "mint/backend/cpu/parallel.hpp"
#include "mint/core/tensor.hpp"

namespace mint::nn {

// Per-image kept patch indices, the same count K for every image (so the batch stays one dense tensor).
// index[b * count + k] is a patch number in [0, N) in row-major patch order; indices within an image are
// distinct. Their order is the order of the kept tokens (and of last_cls_attention()).
struct TokenIndex {
  std::int64_t batch = 0, count = 0;
  std::vector<std::int32_t> index;

  static TokenIndex all(std::int64_t batch, std::int64_t n) {
    TokenIndex t{batch, n, std::vector<std::int32_t>(static_cast<std::size_t>(batch * n))};
    for (std::int64_t b = 0; b < batch; ++b)
      for (std::int64_t k = 0; k < n; ++k) t.index[static_cast<std::size_t>(b * n + k)] = static_cast<std::int32_t>(k);
    return t;
  }
  [[nodiscard]] std::int32_t at(std::int64_t b, std::int64_t k) const { return index[static_cast<std::size_t>(b * count + k)]; }

  // Throws unless this is a valid keep set for `batch` images of `n` patches.
  void validate(std::int64_t batch_expected, std::int64_t n) const {
    check(batch == batch_expected, "keep set: built for batch ", batch, ", used with batch ", batch_expected);
    check(count >= 1 && count <= n, "keep set: count ", count, " outside 1..", n);
    check(static_cast<std::int64_t>(index.size()) == batch * count, "keep set: ", index.size(), " indices for batch ",
          batch, " x count ", count);
    std::vector<char> seen(static_cast<std::size_t>(n));
    for (std::int64_t b = 0; b < batch; ++b) {
      std::fill(seen.begin(), seen.end(), 0);
      for (std::int64_t k = 0; k < count; ++k) {
        const auto p = at(b, k);
        check(p >= 0 && p < n, "keep set: image ", b, " keeps patch ", p, " outside 0..", n - 1);
        check(!seen[static_cast<std::size_t>(p)], "keep set: image ", b, " keeps patch ", p, " twice");
        seen[static_cast<std::size_t>(p)] = 1;
      }
    }
  }
};

// requires: images [B, C, H, W], H and W divisible by p.
// ensures:  returns [B, N, C*p*p], N = (H/p)*(W/p), patches in row-major order, each flattened as (c, y, x) --
//           the layout of a Conv2d(C, D, p, stride=p) weight flattened to [D, C*p*p], so the patch embedding
//           is linear(patchify(images), conv_weight.reshape(D, C*p*p), conv_bias).
inline Tensor<Cpu> patchify(const Tensor<Cpu>& images, std::int64_t p) {
  check_rank(images, 4, "patchify: images");
  const std::int64_t b = images.dim(0), c = images.dim(1), h = images.dim(2), w = images.dim(3);
  check(p > 0 && h % p == 0 && w % p == 0, "patchify: image shape ", images.shape().str(),
        " is not divisible into ", p, "x", p, " patches");
  const std::int64_t gh = h / p, gw = w / p, n = gh * gw, f = c * p * p;
  auto out = Tensor<Cpu>::empty(Shape{b, n, f});
  cpu::parallel_for(b * n, [&](std::int64_t bn) {
    const std::int64_t i = bn / n, pi = bn % n, py = pi / gw, px = pi % gw;
    float* dst = out.data() + bn * f;
    for (std::int64_t ch = 0; ch < c; ++ch)
      for (std::int64_t y = 0; y < p; ++y) {
        const float* src = images.data() + ((i * c + ch) * h + py * p + y) * w + px * p;
        for (std::int64_t x = 0; x < p; ++x) *dst++ = src[x];
      }
  }, 64);
  return out;
}

// backward of <patchify(images), dpatches>: dimages += the patches written back to their pixels.
inline void patchify_backward(const Tensor<Cpu>& dpatches, std::int64_t p, Tensor<Cpu>& dimages) {
  check_rank(dimages, 4, "patchify_backward: d_images");
  const std::int64_t b = dimages.dim(0), c = dimages.dim(1), h = dimages.dim(2), w = dimages.dim(3);
  const std::int64_t gw = w / p, n = (h / p) * gw, f = c * p * p;
  check_shape(dpatches, Shape{b, n, f}, "patchify_backward: d_patches");
  cpu::parallel_for(b * n, [&](std::int64_t bn) {
    const std::int64_t i = bn / n, pi = bn % n, py = pi / gw, px = pi % gw;
    const float* src = dpatches.data() + bn * f;
    for (std::int64_t ch = 0; ch < c; ++ch)
      for (std::int64_t y = 0; y < p; ++y) {
        float* dst = dimages.data() + ((i * c + ch) * h + py * p + y) * w + px * p;
        for (std::int64_t x = 0; x < p; ++x) dst[x] += *src++;
      }
  }, 64);
}

// requires: x [B, N, F], keep valid for (B, N).
// ensures:  returns [B, K, F] with row k of image b = x[b, keep(b, k)].
inline Tensor<Cpu> gather_tokens(const Tensor<Cpu>& x, const TokenIndex& keep) {
  check_rank(x, 3, "gather_tokens: x");
  const std::int64_t b = x.dim(0), n = x.dim(1), f = x.dim(2), k = keep.count;
  keep.validate(b, n);
  auto out = Tensor<Cpu>::empty(Shape{b, k, f});
  cpu::parallel_for(b * k, [&](std::int64_t bk) {
    const std::int64_t i = bk / k;
    const float* src = x.data() + (i * n + keep.index[static_cast<std::size_t>(bk)]) * f;
    std::copy(src, src + f, out.data() + bk * f);
  }, 64);
  return out;
}

// backward of <gather(x), dy>: dx[b, keep(b, k)] += dy[b, k] (a scatter-add; dropped rows get nothing).
inline void gather_tokens_backward(const Tensor<Cpu>& dy, const TokenIndex& keep, Tensor<Cpu>& dx) {
  const std::int64_t b = dx.dim(0), n = dx.dim(1), f = dx.dim(2), k = keep.count;
  check_shape(dy, Shape{b, k, f}, "gather_tokens_backward: d_output");
  // Indices within an image are distinct, so images can run in parallel without write conflicts.
  cpu::parallel_for(b, [&](std::int64_t i) {
    for (std::int64_t j = 0; j < k; ++j) {
      const float* src = dy.data() + (i * k + j) * f;
      float* dst = dx.data() + (i * n + keep.at(i, j)) * f;
      for (std::int64_t e = 0; e < f; ++e) dst[e] += src[e];
    }
  });
}

// The kept patches of every image, [B, K, C*p*p] (keep == nullptr: all N, = patchify(images, p)).
// Equal to gather_tokens(patchify(images, p), *keep); the CUDA op reads the kept pixels directly.
inline Tensor<Cpu> patchify(const Tensor<Cpu>& images, std::int64_t p, const TokenIndex* keep) {
  auto patches = patchify(images, p);
  return keep ? gather_tokens(patches, *keep) : patches;
}

// backward of <patchify(images, p, keep), dpatches>: dimages += the kept patches written back to their pixels.
inline void patchify_backward(const Tensor<Cpu>& dpatches, std::int64_t p, const TokenIndex* keep, Tensor<Cpu>& dimages) {
  if (!keep) return patchify_backward(dpatches, p, dimages);
  check_rank(dimages, 4, "patchify_backward: d_images");
  check_rank(dpatches, 3, "patchify_backward: d_patches");
  const std::int64_t n = (dimages.dim(2) / p) * (dimages.dim(3) / p);
  auto dall = Tensor<Cpu>::zeros(Shape{dimages.dim(0), n, dpatches.dim(2)});
  gather_tokens_backward(dpatches, *keep, dall);
  patchify_backward(dall, p, dimages);
}

// The CLS (and, for distilled DeiT, distillation) tokens and the position embedding.
template <class Device = Cpu>
struct TokenEmbedParamsT {
  const Tensor<Device>* cls;   // [1, 1, D]
  const Tensor<Device>* dist;  // [1, 1, D] or nullptr
  const Tensor<Device>* pos;   // [1, E + N, D], E = 1 + (dist != nullptr)
};
using TokenEmbedParams = TokenEmbedParamsT<Cpu>;

namespace detail {
// embed_tokens' checks (a template: the CUDA op, mint/backend/cuda/tokens.cuh, runs them too). The keep set's
// indices are not validated here (the ViT forward does that once).
template <class D>
void embed_tokens_check(const Tensor<D>& patch_tokens, const TokenIndex* keep, const TokenEmbedParamsT<D>& prm) {
  check_rank(patch_tokens, 3, "embed_tokens: patch tokens");
  const std::int64_t b = patch_tokens.dim(0), k = patch_tokens.dim(1), d = patch_tokens.dim(2);
  const std::int64_t n = prm.pos->dim(1) - (prm.dist ? 2 : 1);
  check_shape(*prm.cls, Shape{1, 1, d}, "embed_tokens: cls_token");
  if (prm.dist) check_shape(*prm.dist, Shape{1, 1, d}, "embed_tokens: dist_token");
  check(prm.pos->rank() == 3 && prm.pos->dim(2) == d && n >= 1, "embed_tokens: pos_embed shape ", prm.pos->shape().str(),
        " does not fit tokens of width ", d);
  if (keep) check(keep->count == k && keep->batch == b, "embed_tokens: keep set (", keep->batch, " x ", keep->count,
                  ") does not match patch tokens ", patch_tokens.shape().str());
  else check(k == n, "embed_tokens: ", k, " patch tokens without a keep set, but pos_embed has ", n, " patch rows");
}
}  // namespace detail

// requires: patch_tokens [B, K, D] (embedded kept patches), keep (nullptr = all N patches in order).
// ensures:  returns [B, E + K, D]: row 0 = cls + pos[0], (row 1 = dist + pos[1]), row E + k =
//           patch_tokens[b, k] + pos[E + keep(b, k)].
inline Tensor<Cpu> embed_tokens(const Tensor<Cpu>& patch_tokens, const TokenIndex* keep, const TokenEmbedParams& prm) {
  detail::embed_tokens_check(patch_tokens, keep, prm);
  const std::int64_t b = patch_tokens.dim(0), k = patch_tokens.dim(1), d = patch_tokens.dim(2);
  const std::int64_t e = prm.dist ? 2 : 1;
  auto out = Tensor<Cpu>::empty(Shape{b, e + k, d});
  const float* pos = prm.pos->data();
  cpu::parallel_for(b * (e + k), [&](std::int64_t bt) {
    const std::int64_t i = bt / (e + k), r = bt % (e + k);
    float* dst = out.data() + bt * d;
    const float* src;
    const float* pr;
    if (r < e) {
      src = (r == 0 ? prm.cls : prm.dist)->data();
      pr = pos + r * d;
    } else {
      const std::int64_t j = r - e;
      src = patch_tokens.data() + (i * k + j) * d;
      pr = pos + (e + (keep ? keep->at(i, j) : j)) * d;
    }
    for (std::int64_t c = 0; c < d; ++c) dst[c] = src[c] + pr[c];
  }, 64);
  return out;
}

template <class Device = Cpu>
struct TokenEmbedGradsT {
  Tensor<Device>* patch_tokens;  // [B, K, D] or nullptr
  Tensor<Device>* cls;           // nullptr in InputOnly mode
  Tensor<Device>* dist;
  Tensor<Device>* pos;
};
using TokenEmbedGrads = TokenEmbedGradsT<Cpu>;

// backward of <embed_tokens(...), dy>: d_patch_tokens += dy[:, E:], d_cls += sum_b dy[b, 0],
// d_dist += sum_b dy[b, 1], d_pos[row] += every dy row that used it.
inline void embed_tokens_backward(const Tensor<Cpu>& dy, const TokenIndex* keep, std::int64_t extra,
                                  const TokenEmbedGrads& g) {
  const std::int64_t b = dy.dim(0), t = dy.dim(1), d = dy.dim(2), k = t - extra;
  if (g.patch_tokens) {
    check_shape(*g.patch_tokens, Shape{b, k, d}, "embed_tokens_backward: d_patch_tokens");
    cpu::parallel_for(b * k, [&](std::int64_t bk) {
      const float* src = dy.data() + ((bk / k) * t + extra + bk % k) * d;
      float* dst = g.patch_tokens->data() + bk * d;
      for (std::int64_t c = 0; c < d; ++c) dst[c] += src[c];
    }, 64);
  }
  // Parameter gradients are reductions over the batch: serial over images, vectorised over D.
  for (std::int64_t i = 0; i < b; ++i) {
    const float* row = dy.data() + i * t * d;
    for (std::int64_t r = 0; r < t; ++r) {
      const float* src = row + r * d;
      if (r < extra) {
        Tensor<Cpu>* tok = r == 0 ? g.cls : g.dist;
        if (tok)
          for (std::int64_t c = 0; c < d; ++c) (*tok)[c] += src[c];
      }
      if (g.pos) {
        const std::int64_t pr = r < extra ? r : extra + (keep ? keep->at(i, r - extra) : r - extra);
        float* dst = g.pos->data() + pr * d;
        for (std::int64_t c = 0; c < d; ++c) dst[c] += src[c];
      }
    }
  }
}

}  // namespace mint::nn
