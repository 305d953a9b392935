// mint/backend/cuda/detail/launch.cuh -- the launch helpers every mint kernel uses (nvcc only).
//   for_each(n, f, what):  f(i) for i in [0, n) on cuda::stream(), grid-stride, f a __device__ lambda or a
//                          functor; errors name `what`.
//   block_reduce(v, op):   the reduction of v over a thread block, returned to every thread.
#pragma once

#if !defined(__CUDACC__)
#error "mint/backend/cuda/*.cuh are CUDA sources: include them from a .cu file compiled by nvcc"
#endif

#include <cstdint>

#include "mint/backend/cuda/runtime.hpp"

namespace mint::cuda::detail {

// A launch error (bad configuration, no kernel image for this GPU) names the op that launched.
inline void check_launch(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess)
    throw Error(mint::detail::concat("CUDA kernel launch for ", what, " failed: ", cudaGetErrorName(err), " (",
                                     cudaGetErrorString(err), ")"));
}

template <class F>
__global__ void for_each_kernel(std::int64_t n, F f) {
  const std::int64_t stride = static_cast<std::int64_t>(blockDim.x) * gridDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) f(i);
}

inline constexpr int kThreads = 256;

template <class F>
void for_each(std::int64_t n, F f, const char* what) {
  if (n <= 0) return;
  const std::int64_t blocks = (n + kThreads - 1) / kThreads;
  const unsigned grid = static_cast<unsigned>(blocks < 65536 * 4 ? blocks : 65536 * 4);  // grid-stride beyond
  for_each_kernel<<<grid, kThreads, 0, stream()>>>(n, f);
  check_launch(what);
}

struct Sum {
  template <class T>
  __device__ T operator()(T a, T b) const { return a + b; }
};
struct Max {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct MaxD {
  __device__ double operator()(double a, double b) const { return fmax(a, b); }
};

// requires: every thread of the block calls it (it synchronises); blockDim.x a multiple of 32, <= 1024.
template <class T, class Op>
__device__ T block_reduce(T v, Op op, T identity) {
  __shared__ T partial[32];
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < warps ? partial[lane] : identity;
    for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
    if (lane == 0) partial[0] = v;
  }
  __syncthreads();
  v = partial[0];
  __syncthreads();  // partial[] may be reused by the next call
  return v;
}

// Threads per block for a row-wise kernel over rows of n elements: enough to cover short rows, at most 512.
inline int row_threads(std::int64_t n) {
  int t = 32;
  while (t < 512 && t < n) t *= 2;
  return t;
}

}  // namespace mint::cuda::detail
