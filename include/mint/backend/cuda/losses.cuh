// mint/backend/cuda/losses.cuh -- cross-entropy and the temperature KL of distillation on Tensor<Cuda>
// (contracts: mint/nn/losses.hpp). One block per row: the log-sum-exp in double (as the CPU's log_softmax_row),
// the row's loss to a scratch buffer, and the gradient added. The mean is summed on the host (reading it back
// synchronises), or, when the caller passes a device sum (`sink`: the inversion engine's LossSink<Cuda>), added
// into it on the device and 0 is returned (no read-back: what a CUDA-graph iteration needs).
#pragma once

#include <vector>

#include "mint/backend/cuda/detail/device_sum.cuh"
#include "mint/backend/cuda/detail/launch.cuh"
#include "mint/backend/cuda/tensor.hpp"
#include "mint/backend/functors_plain.hpp"
#include "mint/nn/losses.hpp"

namespace mint::nn {

namespace cuda_detail {

// The log-sum-exp of row z[0..c) divided by tau, in double (the CPU's log_softmax_row: max, then the sum of exp).
__device__ inline double row_lse(const float* z, std::int64_t c, double tau) {
  using namespace mint::cuda::detail;
  double mx = -INFINITY;
  for (std::int64_t j = threadIdx.x; j < c; j += blockDim.x) mx = fmax(mx, z[j] / tau);
  mx = block_reduce(mx, MaxD{}, -static_cast<double>(INFINITY));
  double s = 0.0;
  for (std::int64_t j = threadIdx.x; j < c; j += blockDim.x) s += exp(z[j] / tau - mx);
  return mx + log(block_reduce(s, Sum{}, 0.0));
}

__global__ inline void cross_entropy_kernel(const float* z, const int* labels, std::int64_t c, float* dz, float scale_b,
                                            double* row_loss) {
  using namespace mint::cuda::detail;
  const std::int64_t r = blockIdx.x;
  const float* zr = z + r * c;
  const double lse = row_lse(zr, c, 1.0);
  const int y = labels[r];
  if (threadIdx.x == 0) row_loss[r] = lse - static_cast<double>(zr[y]);
  if (dz)
    for (std::int64_t j = threadIdx.x; j < c; j += blockDim.x)
      dz[r * c + j] += static_cast<float>(scale_b * (exp(static_cast<double>(zr[j]) - lse) - (j == y ? 1.0 : 0.0)));
}

// Row r of the temperature KL: row_loss[r] = sum_j fn::KlDivTerm value; ds += k * grad (k = scale tau / B).
__global__ inline void kl_div_kernel(const float* zs, const float* zt, std::int64_t c, double tau, float* ds, double k,
                                     double* row_loss) {
  using namespace mint::cuda::detail;
  const std::int64_t r = blockIdx.x;
  const float *s = zs + r * c, *t = zt + r * c;
  const double lse_s = row_lse(s, c, tau), lse_t = row_lse(t, c, tau);
  double acc = 0.0;
  for (std::int64_t j = threadIdx.x; j < c; j += blockDim.x) {
    const double ls = s[j] / tau - lse_s, lt = t[j] / tau - lse_t;
    acc += fn::KlDivTerm{}.value(lt, ls);
    if (ds) ds[r * c + j] += static_cast<float>(k * fn::KlDivTerm{}.grad(lt, ls));
  }
  acc = block_reduce(acc, Sum{}, 0.0);
  if (threadIdx.x == 0) row_loss[r] = acc;
}

// The mean of row_loss[0..b) times `scale`: added into *sink on the device when sink is given (returns 0), else
// read back (synchronises).
inline float finish_rows(const double* row_loss, std::int64_t b, double scale, double* sink = nullptr) {
  if (sink) {
    cuda::detail::add_scaled_sum(row_loss, b, scale, sink);
    return 0.0f;
  }
  std::vector<double> host(static_cast<std::size_t>(b));
  MINT_CUDA_CHECK(cudaMemcpyAsync(host.data(), row_loss, host.size() * sizeof(double), cudaMemcpyDeviceToHost,
                                  cuda::stream()));
  MINT_CUDA_CHECK(cudaStreamSynchronize(cuda::stream()));
  double total = 0.0;
  for (double v : host) total += v;
  return static_cast<float>(total * scale);
}

}  // namespace cuda_detail

// requires: logits [B, C], labels.size() == B, each in [0, C) (checked on the host). ensures: as the CPU op;
// with `sink` (a device double) the loss is added into *sink on the device and 0 is returned.
inline float cross_entropy(const Tensor<Cuda>& logits, const std::vector<int>& labels, Tensor<Cuda>* dlogits = nullptr,
                           float scale = 1.0f, double* sink = nullptr) {
  detail::cross_entropy_check(logits, labels, dlogits);
  const std::int64_t b = logits.dim(0), c = logits.dim(1);
  if (b == 0) return 0.0f;
  static_assert(sizeof(int) == sizeof(std::int32_t));
  const auto* lab = reinterpret_cast<const int*>(cuda::detail::UploadCache::instance().get(
      reinterpret_cast<const std::int32_t*>(labels.data()), labels.size()));
  cuda::detail::DeviceBuffer rows(static_cast<std::size_t>(b) * sizeof(double));
  cuda_detail::cross_entropy_kernel<<<static_cast<unsigned>(b), cuda::detail::row_threads(c), 0, cuda::stream()>>>(
      logits.data(), lab, c, dlogits ? dlogits->data() : nullptr, scale / static_cast<float>(b), rows.as<double>());
  cuda::detail::check_launch("cross_entropy");
  return cuda_detail::finish_rows(rows.as<double>(), b, 1.0 / static_cast<double>(b), sink);
}

// Knowledge-distillation KL with temperature tau (SMI Eq. 6), as the CPU kl_div_temperature:
// returns tau^2 / B * sum_b KL(p_t || p_s); dstudent (if given) += scale * tau / B * (p_s - p_t).
inline float kl_div_temperature(const Tensor<Cuda>& student, const Tensor<Cuda>& teacher, float tau,
                                Tensor<Cuda>* dstudent = nullptr, float scale = 1.0f) {
  detail::kl_div_check(student, teacher, tau, dstudent);
  const std::int64_t b = student.dim(0), c = student.dim(1);
  if (b == 0) return 0.0f;
  cuda::detail::DeviceBuffer rows(static_cast<std::size_t>(b) * sizeof(double));
  cuda_detail::kl_div_kernel<<<static_cast<unsigned>(b), cuda::detail::row_threads(c), 0, cuda::stream()>>>(
      student.data(), teacher.data(), c, tau, dstudent ? dstudent->data() : nullptr,
      static_cast<double>(scale) * tau / static_cast<double>(b), rows.as<double>());
  cuda::detail::check_launch("kl_div_temperature");
  return cuda_detail::finish_rows(rows.as<double>(), b, static_cast<double>(tau) * tau / static_cast<double>(b));
}

}  // namespace mint::nn
