// mint/nn/fused.hpp -- compositions a backend runs as one pass over memory (after its GEMM). Each is defined as
// the plain composition named in its contract, and the CPU loops here compute that composition element for element
// (the same float operations in the same order, so the same bits whenever the GEMM rounds its beta = 1 update
// like a beta = 0 product plus C, as a single-panel GEMM does); tests/nn/test_fused.cpp checks each against it.
// The CUDA overloads are in mint/backend/cuda/fused.cuh (linear_gelu as one kernel, the others as the composition).
//
// What the fusions save per transformer block on the CPU (mint/models/vit.hpp): the bias pre-fill and the separate
// residual add, GELU and gradient zero-fill passes, and an OpenMP parallel region for each of them.
#pragma once

#include <algorithm>

#include "mint/backend/cpu/parallel.hpp"
#include "mint/nn/activation.hpp"
#include "mint/nn/layernorm.hpp"
#include "mint/nn/linear.hpp"

namespace mint::nn {

namespace detail {
// p[i] += b[i mod n] for i in [o, o + len) of a row-major [M, n] buffer.
inline void add_bias_range(float* p, const float* b, std::int64_t n, std::int64_t o, std::int64_t len) {
  for (std::int64_t i = o, end = o + len; i < end;) {
    const std::int64_t j0 = i % n, stop = std::min(end, i + (n - j0));
    for (std::int64_t j = j0; i < stop; ++i, ++j) p[i] += b[j];
  }
}

// x [B, T, D] as the residual of y [B, R, D] (R <= T: a ViT's last block keeps only its leading rows).
inline void residual_check(const Tensor<Cpu>& y, const Tensor<Cpu>& x, const char* what) {
  if (x.rank() == 3 && y.rank() == 3 && x.dim(0) == y.dim(0) && x.dim(2) == y.dim(2) && y.dim(1) <= x.dim(1)) return;
  // (the shapes are formatted only on failure: check's arguments are evaluated on every call)
  check(false, what, ": residual ", x.shape().str(), " is not [B, T, D] with T >= the rows of ", y.shape().str());
}

// Row r of y [B, R, D] is row (r / R) * T + r % R of its residual x [B, T, D].
inline std::int64_t residual_row(std::int64_t r, std::int64_t rows, std::int64_t tokens) {
  return (r / rows) * tokens + r % rows;
}

// y = linear(a, w, nullptr) + b + x's leading rows, in place, one pass; then f(row, y row) on each row, in the same
// pass (the row is in cache). requires: the shapes of linear_residual.
template <class RowFn>
Tensor<Cpu> linear_residual_rows(const Tensor<Cpu>& a, const Tensor<Cpu>& w, const Tensor<Cpu>& b,
                                 const Tensor<Cpu>& x, const char* what, RowFn&& f) {
  Tensor<Cpu> y = linear(a, w, nullptr);  // the GEMM at beta = 0 (no bias pre-fill); checks a and w
  check_shape(b, Shape{w.dim(0)}, what);
  residual_check(y, x, what);
  const std::int64_t d = y.dim(2), rows = y.dim(1), tokens = x.dim(1);
  float* yp = y.data();
  const float *xp = x.data(), *bp = b.data();
  cpu::parallel_for(y.numel() / d, [&](std::int64_t r) {
    float* yr = yp + r * d;
    const float* xr = xp + residual_row(r, rows, tokens) * d;
    for (std::int64_t j = 0; j < d; ++j) yr[j] = (yr[j] + bp[j]) + xr[j];  // linear's bias, then the residual
    f(r, yr);
  }, kLayerNormGrain);
  return y;
}
}  // namespace detail

// requires: as linear(x, w, b) with b != nullptr.
// ensures:  *pre = linear(x, w, b) (the pre-activation gelu_backward needs); returns gelu(*pre). One GEMM without
//           bias, then one pass (16K-element chunks, as gelu) that adds the bias and applies GELU.
inline Tensor<Cpu> linear_gelu(const Tensor<Cpu>& x, const Tensor<Cpu>& w, const Tensor<Cpu>& b, Tensor<Cpu>& pre) {
  check_rank(w, 2, "linear_gelu: weight");
  check_shape(b, Shape{w.dim(0)}, "linear_gelu: bias");
  pre = linear(x, w, nullptr);
  auto y = Tensor<Cpu>::empty(pre.shape());
  const std::int64_t n = w.dim(0);
  float *pp = pre.data(), *yp = y.data();
  detail::for_chunks(pre.numel(), [&](std::int64_t o, std::int64_t len) {
    detail::add_bias_range(pp, b.data(), n, o, len);
    detail::gelu_chunk(pp + o, yp + o, len);
  });
  return y;
}

// requires: a [B, R, K], w [D, K], b [D]; x [B, T, D] with T >= R (the residual: its first R rows per image).
// ensures:  returns linear(a, w, &b) + x[:, :R] (a transformer block's output x_mid + fc2(...)), in one pass after
//           the GEMM.
inline Tensor<Cpu> linear_residual(const Tensor<Cpu>& a, const Tensor<Cpu>& w, const Tensor<Cpu>& b,
                                   const Tensor<Cpu>& x) {
  return detail::linear_residual_rows(a, w, b, x, "linear_residual", [](std::int64_t, float*) {});
}

// requires: as linear_residual; gamma, beta [D].
// ensures:  *sum = linear(a, w, &b) + x[:, :R] (a block's x_mid); returns layernorm(*sum, gamma, beta, eps, saved)
//           (the block's LN2), both from one pass after the GEMM.
inline Tensor<Cpu> linear_residual_layernorm(const Tensor<Cpu>& a, const Tensor<Cpu>& w, const Tensor<Cpu>& b,
                                             const Tensor<Cpu>& x, const Tensor<Cpu>& gamma, const Tensor<Cpu>& beta,
                                             float eps, LayerNormSaved* saved, Tensor<Cpu>& sum) {
  check_rank(a, 3, "linear_residual_layernorm: input");
  check_rank(w, 2, "linear_residual_layernorm: weight");
  const std::int64_t d = w.dim(0), rows = a.dim(0) * a.dim(1);
  check_shape(gamma, Shape{d}, "linear_residual_layernorm: LayerNorm weight");
  check_shape(beta, Shape{d}, "linear_residual_layernorm: LayerNorm bias");
  auto h = Tensor<Cpu>::empty(Shape{a.dim(0), a.dim(1), d});
  if (saved) {
    saved->mean = Tensor<Cpu>::empty(Shape{rows});
    saved->rstd = Tensor<Cpu>::empty(Shape{rows});
  }
  float* hp = h.data();
  const float *g = gamma.data(), *bt = beta.data();
  sum = detail::linear_residual_rows(a, w, b, x, "linear_residual_layernorm", [&](std::int64_t r, float* yr) {
    const auto [mean, rstd] = detail::layernorm_row(yr, hp + r * d, d, g, bt, eps);
    if (saved) {
      saved->mean[r] = mean;
      saved->rstd[r] = rstd;
    }
  });
  return h;
}

// requires: dy, x the same shape.
// ensures:  dy = dy * gelu'(x) in place: what gelu_backward(dy, x, dx) adds into a zero dx, without the zero-filled
//           buffer (the fc2 -> fc1 gradient of a block).
inline void gelu_backward_inplace(Tensor<Cpu>& dy, const Tensor<Cpu>& x) {
  check_shape(dy, x.shape(), "gelu_backward_inplace: d_output");
  detail::for_chunks(x.numel(), [&](std::int64_t o, std::int64_t len) {
    detail::ConstArrayMap xs(x.data() + o, len);
    detail::ArrayMap dys(dy.data() + o, len);
    dys = dys * detail::gelu_derivative(xs);
  });
}

// requires: dy, x [B, T, D]; saved from layernorm(x, gamma, ...); d_residual [B, R, D] with R <= T.
// ensures:  returns dx = d_residual (in its first R rows per image, 0 in the others) + the input gradient of
//           layernorm_backward(dy, x, gamma, saved, ...), one pass, no zero-filled buffer; dgamma, dbeta as
//           layernorm_backward (nullptr skips). A block's backward through a residual and the LayerNorm after it.
inline Tensor<Cpu> layernorm_backward_residual(const Tensor<Cpu>& dy, const Tensor<Cpu>& x, const Tensor<Cpu>& gamma,
                                               const LayerNormSaved& saved, const Tensor<Cpu>& d_residual,
                                               Tensor<Cpu>* dgamma, Tensor<Cpu>* dbeta) {
  check_shape(dy, x.shape(), "layernorm_backward_residual: d_output");
  detail::residual_check(d_residual, x, "layernorm_backward_residual");
  const std::int64_t d = x.dim(2), tokens = x.dim(1), rows = d_residual.dim(1);
  check_shape(gamma, Shape{d}, "layernorm_backward_residual: weight");
  auto dx = Tensor<Cpu>::empty(x.shape());
  const float *xp = x.data(), *dyp = dy.data(), *g = gamma.data(), *rp = d_residual.data();
  float* dxp = dx.data();
  cpu::parallel_for(x.numel() / d, [&](std::int64_t r) {
    float* dxr = dxp + r * d;
    const std::int64_t t = r % tokens;
    if (t < rows) std::copy(rp + ((r / tokens) * rows + t) * d, rp + ((r / tokens) * rows + t + 1) * d, dxr);
    else std::fill(dxr, dxr + d, 0.0f);
    detail::layernorm_backward_row(dyp + r * d, xp + r * d, g, saved.mean[r], saved.rstd[r], d, dxr);
  }, detail::kLayerNormGrain);
  if (dgamma || dbeta) layernorm_backward(dy, x, gamma, saved, nullptr, dgamma, dbeta);
  return dx;
}

}  // namespace mint::nn
