// mint/backend/cuda/fused.cuh -- the fused compositions of mint/nn/fused.hpp on Tensor<Cuda>.
#pragma once

#include "mint/backend/cuda/detail/launch.cuh"
#include "mint/backend/cuda/gemm.hpp"
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

}  // namespace mint::nn
