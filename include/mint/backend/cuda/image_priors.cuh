// mint/backend/cuda/image_priors.cuh -- total variation (SMI Eq. 2, the exact ranges of mint/nn/image_priors.hpp)
// and the L2 prior on Tensor<Cuda>. TV: one thread per (image, term, pixel); per-image sums in double (atomicAdd
// on double), gradient contributions by float atomicAdd (so the gradient's summation order, not its value, varies
// run to run).
#pragma once

#include <algorithm>
#include <vector>

#include "mint/backend/cuda/detail/device_sum.cuh"
#include "mint/backend/cuda/detail/launch.cuh"
#include "mint/backend/cuda/tensor.hpp"
#include "mint/backend/functors_plain.hpp"
#include "mint/nn/image_priors.hpp"

namespace mint::nn {

namespace cuda_detail {
struct TvTerms {
  detail::TvTerm t[4];
};
}  // namespace cuda_detail

namespace cuda_detail {
// accp[b] = TV of image b (zeroed here), and (if dimages given) dimages[b] += grad_weight * dTV_b/dX. Enqueued only.
inline void total_variation_launch(const Tensor<Cuda>& images, Tensor<Cuda>* dimages, float grad_weight, double* accp) {
  const std::int64_t b = images.dim(0), c = images.dim(1), h = images.dim(2), w = images.dim(3), hw = h * w;
  MINT_CUDA_CHECK(cudaMemsetAsync(accp, 0, static_cast<std::size_t>(b) * sizeof(double), cuda::stream()));
  const float* x = images.data();
  float* g = dimages ? dimages->data() : nullptr;
  cuda_detail::TvTerms terms{};  // the host table, captured by value (a constexpr array is not device memory)
  for (int i = 0; i < 4; ++i) terms.t[i] = detail::kTvTerms[i];
  cuda::detail::for_each(
      b * 4 * hw,
      [=] __device__(std::int64_t t) {
        const std::int64_t p = t % hw, term = (t / hw) % 4, n = t / (4 * hw), i = p / w, j = p % w;
        const detail::TvTerm tm = terms.t[term];
        if (i < 1 || j < tm.j_lo || j >= w - tm.j_hi_minus) return;
        const std::int64_t q = (i + tm.dy) * w + (j + tm.dx);
        const float* xi = x + n * c * hw;
        float s = 0.0f;
        for (std::int64_t ch = 0; ch < c; ++ch) {
          const float d = xi[ch * hw + p] - xi[ch * hw + q];
          s += d * d;
        }
        const float norm = sqrtf(s);
        atomicAdd(accp + n, static_cast<double>(norm));
        if (g && norm > 0.0f) {
          const float k = grad_weight / norm;
          float* gi = g + n * c * hw;
          for (std::int64_t ch = 0; ch < c; ++ch) {
            const float d = k * (xi[ch * hw + p] - xi[ch * hw + q]);
            atomicAdd(gi + ch * hw + p, d);
            atomicAdd(gi + ch * hw + q, -d);
          }
        }
      },
      "total_variation");
}
}  // namespace cuda_detail

// Per-image TV of SMI Eq. 2 and (if dimages given) dimages[b] += grad_weight * dTV_b/dX. Waits for the result.
inline std::vector<double> total_variation_per_image(const Tensor<Cuda>& images, Tensor<Cuda>* dimages = nullptr,
                                                     float grad_weight = 1.0f) {
  check_rank(images, 4, "total_variation: images");
  if (dimages) check_shape(*dimages, images.shape(), "total_variation: d_images");
  const std::int64_t b = images.dim(0);
  std::vector<double> tv(static_cast<std::size_t>(b), 0.0);
  if (b == 0) return tv;
  cuda::detail::DeviceBuffer acc(static_cast<std::size_t>(b) * sizeof(double));
  cuda_detail::total_variation_launch(images, dimages, grad_weight, acc.as<double>());
  MINT_CUDA_CHECK(cudaMemcpyAsync(tv.data(), acc.as<double>(), tv.size() * sizeof(double), cudaMemcpyDeviceToHost,
                                  cuda::stream()));
  MINT_CUDA_CHECK(cudaStreamSynchronize(cuda::stream()));
  return tv;
}

// weight * mean_b TV(image_b); dimages += its gradient. With `sink` (a device double: the engine's LossSink<Cuda>)
// the value is added into *sink on the device and 0 is returned (no read-back, so it can be captured).
inline float total_variation(const Tensor<Cuda>& images, float weight, Tensor<Cuda>* dimages = nullptr,
                             double* sink = nullptr) {
  const auto b = static_cast<double>(images.dim(0));
  if (sink) {
    check_rank(images, 4, "total_variation: images");
    if (dimages) check_shape(*dimages, images.shape(), "total_variation: d_images");
    if (images.dim(0) == 0) return 0.0f;
    cuda::detail::DeviceBuffer acc(static_cast<std::size_t>(images.dim(0)) * sizeof(double));
    cuda_detail::total_variation_launch(images, dimages, static_cast<float>(weight / b), acc.as<double>());
    cuda::detail::add_scaled_sum(acc.as<double>(), images.dim(0), weight / b, sink);
    return 0.0f;
  }
  const auto tv = total_variation_per_image(images, dimages, static_cast<float>(weight / b));
  double s = 0.0;
  for (double v : tv) s += v;
  return static_cast<float>(weight * s / b);
}

namespace cuda_detail {
// *acc += sum of fn::L2Term values of x[0..n) (block sums in double, added by a double atomicAdd per block);
// dx[i] += fn::L2Term grad with factor k (if dx given).
__global__ inline void l2_prior_kernel(const float* x, std::int64_t n, float k, float* dx, double* acc) {
  using namespace mint::cuda::detail;
  double s = 0.0;
  const std::int64_t stride = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    s += fn::L2Term{}.value(x[i]);
    if (dx) dx[i] += fn::L2Term{}.grad(x[i], k);
  }
  s = block_reduce(s, Sum{}, 0.0);
  if (threadIdx.x == 0) atomicAdd(acc, s);
}
}  // namespace cuda_detail

// weight * mean_b ||image_b||_2^2; dimages += 2 weight / B x (as the CPU l2_prior; the sum's order differs).
// With `sink` (a device double) the value is added into *sink on the device and 0 is returned.
inline float l2_prior(const Tensor<Cuda>& images, float weight, Tensor<Cuda>* dimages = nullptr,
                      double* sink = nullptr) {
  detail::l2_prior_check(images, dimages);
  const double b = static_cast<double>(images.dim(0));
  const std::int64_t n = images.numel();
  cuda::detail::DeviceBuffer acc(sizeof(double));
  MINT_CUDA_CHECK(cudaMemsetAsync(acc.as<double>(), 0, sizeof(double), cuda::stream()));
  if (n > 0) {
    const std::int64_t blocks = std::min<std::int64_t>((n + cuda::detail::kThreads - 1) / cuda::detail::kThreads, 1024);
    cuda_detail::l2_prior_kernel<<<static_cast<unsigned>(blocks), cuda::detail::kThreads, 0, cuda::stream()>>>(
        images.data(), n, static_cast<float>(2.0 * weight / b), dimages ? dimages->data() : nullptr, acc.as<double>());
    cuda::detail::check_launch("l2_prior");
  }
  if (sink) {
    cuda::detail::add_scaled_sum(acc.as<double>(), 1, weight / b, sink);
    return 0.0f;
  }
  double s = 0.0;
  MINT_CUDA_CHECK(cudaMemcpyAsync(&s, acc.as<double>(), sizeof s, cudaMemcpyDeviceToHost, cuda::stream()));
  MINT_CUDA_CHECK(cudaStreamSynchronize(cuda::stream()));
  return static_cast<float>(weight * s / b);
}

}  // namespace mint::nn
