// mint/backend/cuda/tokens.cuh -- token gather (keep sets) and its scatter-add backward on Tensor<Cuda>
// (contract: mint/nn/tokens.hpp). The keep set is validated on the host and uploaded per call (B*K ints).
#pragma once

#include "mint/backend/cuda/detail/launch.cuh"
#include "mint/backend/cuda/tensor.hpp"
#include "mint/nn/tokens.hpp"

namespace mint::nn {

namespace cuda_detail {
struct DeviceIndex {
  cuda::detail::DeviceBuffer buf;
  explicit DeviceIndex(const TokenIndex& keep) : buf(keep.index.size() * sizeof(std::int32_t)) {
    if (!keep.index.empty())
      MINT_CUDA_CHECK(cudaMemcpyAsync(buf.as<std::int32_t>(), keep.index.data(), keep.index.size() * sizeof(std::int32_t),
                                      cudaMemcpyHostToDevice, cuda::stream()));
    // A pageable-memory copy returns once the source is consumed; the buffer itself is only reused by later
    // work on the same stream, so no synchronisation is needed here.
  }
};
}  // namespace cuda_detail

// requires: x [B, N, F], keep valid for (B, N). ensures: [B, K, F], row k of image b = x[b, keep(b, k)].
inline Tensor<Cuda> gather_tokens(const Tensor<Cuda>& x, const TokenIndex& keep) {
  check_rank(x, 3, "gather_tokens: x");
  const std::int64_t b = x.dim(0), n = x.dim(1), f = x.dim(2), k = keep.count;
  keep.validate(b, n);
  auto out = Tensor<Cuda>::empty(Shape{b, k, f});
  cuda_detail::DeviceIndex idx(keep);
  const std::int32_t* ip = idx.buf.as<std::int32_t>();
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
  const std::int32_t* ip = idx.buf.as<std::int32_t>();
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

}  // namespace mint::nn
