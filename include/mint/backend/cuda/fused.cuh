// mint/backend/cuda/fused.cuh -- the fused compositions of mint/nn/fused.hpp on Tensor<Cuda>: linear_gelu as one
// kernel; the residual and in-place gradient forms as the composition of the CUDA ops they are defined by.
#pragma once

#include "mint/backend/cuda/activation.cuh"
#include "mint/backend/cuda/detail/launch.cuh"
#include "mint/backend/cuda/elementwise.cuh"
#include "mint/backend/cuda/gemm.hpp"
#include "mint/backend/cuda/layernorm.cuh"
#include "mint/backend/cuda/linear.cuh"
#include "mint/backend/cuda/tensor.hpp"
#include "mint/backend/functors.hpp"
#include "mint/nn/fused.hpp"

namespace mint::nn {

// requires/ensures: as the CPU linear_gelu. One GEMM without bias into `pre`, then one kernel adds the bias and
// applies fn::Gelu (the CPU GELU's functor), writing both pre (for gelu_backward) and the activation.
inline Tensor<Cuda> linear_gelu(const Tensor<Cuda>& x, const Tensor<Cuda>& w, const Tensor<Cuda>& b, Tensor<Cuda>& pre) {
  check_rank(w, 2, "linear_gelu: weight");
  const std::int64_t k = w.dim(1), n = w.dim(0);
  check(x.rank() >= 1 && x.dim(-1) == k, "linear_gelu: input shape ", x.shape().str(), " does not end in ", k,
        " (weight shape ", w.shape().str(), ")");
  check_shape(b, Shape{n}, "linear_gelu: bias");
  const std::int64_t m = x.numel() / k;
  Shape out = x.shape();
  out[out.rank() - 1] = n;
  pre = Tensor<Cuda>::empty(out);
  auto y = Tensor<Cuda>::empty(out);
  cuda::gemm(false, true, m, n, k, 1.0f, x.data(), k, w.data(), k, 0.0f, pre.data(), n);
  float *pp = pre.data(), *yp = y.data();
  const float* bp = b.data();
  cuda::detail::for_each(
      m * n,
      [=] __device__(std::int64_t i) {
        const float v = pp[i] + bp[i % n];
        pp[i] = v;
        yp[i] = fn::Gelu{}(v);
      },
      "linear_gelu (bias + GELU)");
  return y;
}

namespace detail {
// x [B, T, D]'s first R rows per image as [B, R, D] (x itself when R = T).
inline Tensor<Cuda> leading_rows(const Tensor<Cuda>& x, std::int64_t rows) {
  check(x.rank() == 3 && rows <= x.dim(1), "residual ", x.shape().str(), " has fewer than ", rows, " rows");
  if (rows == x.dim(1)) return x;
  const std::int64_t b = x.dim(0), t = x.dim(1), d = x.dim(2);
  auto y = Tensor<Cuda>::empty(Shape{b, rows, d});
  copy_rows(y, 0, rows * d, x, 0, t * d, rows * d, b);
  return y;
}
}  // namespace detail

// requires/ensures: as the CPU linear_residual (the composition linear, then add_inplace).
inline Tensor<Cuda> linear_residual(const Tensor<Cuda>& a, const Tensor<Cuda>& w, const Tensor<Cuda>& b,
                                    const Tensor<Cuda>& x) {
  auto y = linear(a, w, &b);
  add_inplace(y, detail::leading_rows(x, y.dim(1)));
  return y;
}

// requires/ensures: as the CPU linear_residual_layernorm (linear_residual, then layernorm).
inline Tensor<Cuda> linear_residual_layernorm(const Tensor<Cuda>& a, const Tensor<Cuda>& w, const Tensor<Cuda>& b,
                                              const Tensor<Cuda>& x, const Tensor<Cuda>& gamma,
                                              const Tensor<Cuda>& beta, float eps, LayerNormSavedT<Cuda>* saved,
                                              Tensor<Cuda>& sum) {
  sum = linear_residual(a, w, b, x);
  return layernorm(sum, gamma, beta, eps, saved);
}

// requires/ensures: as the CPU gelu_backward_inplace (gelu_backward into a zero buffer, which then replaces dy).
inline void gelu_backward_inplace(Tensor<Cuda>& dy, const Tensor<Cuda>& x) {
  auto dx = Tensor<Cuda>::zeros(x.shape());
  gelu_backward(dy, x, dx);
  dy = dx;
}

// requires/ensures: as the CPU layernorm_backward_residual (d_residual into the leading rows of a zero buffer,
// then layernorm_backward adds into it).
inline Tensor<Cuda> layernorm_backward_residual(const Tensor<Cuda>& dy, const Tensor<Cuda>& x,
                                                const Tensor<Cuda>& gamma, const LayerNormSavedT<Cuda>& saved,
                                                const Tensor<Cuda>& d_residual, Tensor<Cuda>* dgamma,
                                                Tensor<Cuda>* dbeta) {
  check(x.rank() == 3 && d_residual.rank() == 3 && d_residual.dim(0) == x.dim(0) && d_residual.dim(2) == x.dim(2) &&
            d_residual.dim(1) <= x.dim(1),
        "layernorm_backward_residual: residual gradient ", d_residual.shape().str(), " does not fit ", x.shape().str());
  auto dx = Tensor<Cuda>::zeros(x.shape());
  const std::int64_t b = x.dim(0), t = x.dim(1), r = d_residual.dim(1), d = x.dim(2);
  copy_rows(dx, 0, t * d, d_residual, 0, r * d, r * d, b);
  layernorm_backward(dy, x, gamma, saved, &dx, dgamma, dbeta);
  return dx;
}

}  // namespace mint::nn
