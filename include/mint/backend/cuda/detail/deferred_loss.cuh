// mint/backend/cuda/detail/deferred_loss.cuh -- deferred scalar results, for an iteration captured in a CUDA
// graph (nvcc only). Normally a CUDA loss op (cross_entropy, total_variation) reads its value back to the host,
// which synchronises the stream and cannot be captured. While deferred_loss().sum is set, those ops instead add
// their value on the device into *sum (a double) and return 0; the caller reads the sum once after the work.
#pragma once

#include <cstdint>

#include "mint/backend/cuda/detail/launch.cuh"

namespace mint::cuda::detail {

struct DeferredLoss {
  double* sum = nullptr;  // device; nullptr = off (the default: every op reads its value back)
};
inline DeferredLoss& deferred_loss() {
  static DeferredLoss d;
  return d;
}

// *out += scale * (v[0] + ... + v[n-1]), summed in index order by one thread (deterministic, n is a batch).
__global__ inline void add_scaled_sum_kernel(const double* v, std::int64_t n, double scale, double* out) {
  double s = 0.0;
  for (std::int64_t i = 0; i < n; ++i) s += v[i];
  *out += scale * s;
}
inline void add_scaled_sum(const double* v, std::int64_t n, double scale, double* out) {
  add_scaled_sum_kernel<<<1, 1, 0, stream()>>>(v, n, scale, out);
  check_launch("deferred loss (sum)");
}

}  // namespace mint::cuda::detail
