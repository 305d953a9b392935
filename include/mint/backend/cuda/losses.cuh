// mint/backend/cuda/losses.cuh -- cross-entropy on Tensor<Cuda> (contract: mint/nn/losses.hpp). One block per
// row: the log-sum-exp in double (as the CPU's log_softmax_row), the row's loss to a scratch buffer, and
// dlogits += scale * (softmax - onehot) / B. The mean is summed on the host (reading it back synchronises), or,
// while cuda::detail::deferred_loss() is on (a CUDA-graph iteration), added on the device and 0 is returned.
#pragma once

#include <vector>

#include "mint/backend/cuda/detail/deferred_loss.cuh"
#include "mint/backend/cuda/detail/launch.cuh"
#include "mint/backend/cuda/tensor.hpp"
#include "mint/nn/losses.hpp"

namespace mint::nn {

namespace cuda_detail {

__global__ inline void cross_entropy_kernel(const float* z, const int* labels, std::int64_t c, float* dz, float scale_b,
                                            double* row_loss) {
  using namespace mint::cuda::detail;
  const std::int64_t r = blockIdx.x;
  const float* zr = z + r * c;
  float mx = -INFINITY;
  for (std::int64_t j = threadIdx.x; j < c; j += blockDim.x) mx = fmaxf(mx, zr[j]);
  mx = block_reduce(mx, Max{}, -INFINITY);
  double s = 0.0;
  for (std::int64_t j = threadIdx.x; j < c; j += blockDim.x) s += exp(static_cast<double>(zr[j]) - mx);
  s = block_reduce(s, Sum{}, 0.0);
  const double lse = mx + log(s);
  const int y = labels[r];
  if (threadIdx.x == 0) row_loss[r] = lse - static_cast<double>(zr[y]);
  if (dz)
    for (std::int64_t j = threadIdx.x; j < c; j += blockDim.x)
      dz[r * c + j] += static_cast<float>(scale_b * (exp(static_cast<double>(zr[j]) - lse) - (j == y ? 1.0 : 0.0)));
}

}  // namespace cuda_detail

// requires: logits [B, C], labels.size() == B, each in [0, C) (checked on the host). ensures: as the CPU op.
inline float cross_entropy(const Tensor<Cuda>& logits, const std::vector<int>& labels, Tensor<Cuda>* dlogits = nullptr,
                           float scale = 1.0f) {
  check_rank(logits, 2, "cross_entropy: logits");
  const std::int64_t b = logits.dim(0), c = logits.dim(1);
  check(static_cast<std::int64_t>(labels.size()) == b, "cross_entropy: ", labels.size(), " labels for logits ",
        logits.shape().str());
  if (dlogits) check_shape(*dlogits, logits.shape(), "cross_entropy: d_logits");
  for (std::int64_t i = 0; i < b; ++i) {
    const int y = labels[static_cast<std::size_t>(i)];
    check(y >= 0 && y < c, "cross_entropy: label ", y, " of image ", i, " outside 0..", c - 1);
  }
  if (b == 0) return 0.0f;
  static_assert(sizeof(int) == sizeof(std::int32_t));
  const auto* lab = reinterpret_cast<const int*>(cuda::detail::UploadCache::instance().get(
      reinterpret_cast<const std::int32_t*>(labels.data()), labels.size()));
  cuda::detail::DeviceBuffer rows(static_cast<std::size_t>(b) * sizeof(double));
  cuda_detail::cross_entropy_kernel<<<static_cast<unsigned>(b), cuda::detail::row_threads(c), 0, cuda::stream()>>>(
      logits.data(), lab, c, dlogits ? dlogits->data() : nullptr, scale / static_cast<float>(b), rows.as<double>());
  cuda::detail::check_launch("cross_entropy");
  if (double* sink = cuda::detail::deferred_loss().sum) {
    cuda::detail::add_scaled_sum(rows.as<double>(), b, 1.0 / static_cast<double>(b), sink);
    return 0.0f;
  }
  std::vector<double> host(static_cast<std::size_t>(b));
  MINT_CUDA_CHECK(cudaMemcpyAsync(host.data(), rows.as<double>(), host.size() * sizeof(double), cudaMemcpyDeviceToHost,
                                  cuda::stream()));
  MINT_CUDA_CHECK(cudaStreamSynchronize(cuda::stream()));
  double total = 0.0;
  for (double v : host) total += v;
  return static_cast<float>(total / static_cast<double>(b));
}

}  // namespace mint::nn
