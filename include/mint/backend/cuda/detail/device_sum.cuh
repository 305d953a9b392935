// mint/backend/cuda/detail/device_sum.cuh -- adding a scalar result into a device double (nvcc only): what a CUDA
// loss op does when the caller passes it a device sum (the engine's LossSink<Cuda>, mint/inversion/
// inverter_cuda.cuh) instead of reading its value back, which would synchronise and cannot be captured in a graph.
#pragma once

#include <cstdint>

#include "mint/backend/cuda/detail/launch.cuh"

namespace mint::cuda::detail {

// *out += scale * (v[0] + ... + v[n-1]), summed in index order by one thread (deterministic, n is a batch).
__global__ inline void add_scaled_sum_kernel(const double* v, std::int64_t n, double scale, double* out) {
  double s = 0.0;
  for (std::int64_t i = 0; i < n; ++i) s += v[i];
  *out += scale * s;
}
inline void add_scaled_sum(const double* v, std::int64_t n, double scale, double* out) {
  add_scaled_sum_kernel<<<1, 1, 0, stream()>>>(v, n, scale, out);
  check_launch("device sum");
}

}  // namespace mint::cuda::detail
