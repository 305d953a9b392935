// mint/backend/cuda/tensor.hpp -- storage for Tensor<Cuda> and copies between host and device.
//
// Tensor<Cuda> is the same class template as Tensor<Cpu> (mint/core/tensor.hpp): shared storage, clone(),
// reshape() views. Its buffer lives on the GPU, comes from the caching allocator (allocator.hpp), and every
// fill/copy is enqueued on cuda::stream(). Plain C++: g++ compiles this header (no kernels here), so host code
// can own and move device tensors; the ops that need kernels are in the .cuh headers nvcc compiles.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "mint/backend/cuda/allocator.hpp"
#include "mint/core/tensor.hpp"

namespace mint {

template <>
struct Storage<Cuda> {
  static std::shared_ptr<float> allocate(std::int64_t n) {
    if (n == 0) return {};
    std::size_t bytes = static_cast<std::size_t>(n) * sizeof(float);
    auto* p = static_cast<float*>(cuda::detail::DeviceCache::instance().allocate(bytes));
    return std::shared_ptr<float>(p, [bytes](float* q) { cuda::detail::DeviceCache::instance().deallocate(q, bytes); });
  }
  // A value whose four bytes are equal (0.0f among them) is a cudaMemsetAsync; any other value is written on
  // the host and copied (a fill kernel would need nvcc, and this header must stay plain C++).
  static void fill(float* p, std::int64_t n, float v) {
    if (n == 0) return;
    unsigned char b[4];
    std::memcpy(b, &v, 4);
    if (b[0] == b[1] && b[1] == b[2] && b[2] == b[3]) {
      MINT_CUDA_CHECK(cudaMemsetAsync(p, b[0], static_cast<std::size_t>(n) * sizeof(float), cuda::stream()));
      return;
    }
    std::vector<float> host(static_cast<std::size_t>(n), v);
    MINT_CUDA_CHECK(cudaMemcpyAsync(p, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice, cuda::stream()));
    MINT_CUDA_CHECK(cudaStreamSynchronize(cuda::stream()));  // `host` dies at return
  }
  static void copy(float* dst, const float* src, std::int64_t n) {
    if (n)
      MINT_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<std::size_t>(n) * sizeof(float), cudaMemcpyDeviceToDevice,
                                      cuda::stream()));
  }
  // `rows` runs of `width` floats (pitches in floats), one cudaMemcpy2DAsync on the stream.
  static void copy_2d(float* dst, std::int64_t dst_pitch, const float* src, std::int64_t src_pitch, std::int64_t width,
                      std::int64_t rows) {
    constexpr auto f = sizeof(float);
    MINT_CUDA_CHECK(cudaMemcpy2DAsync(dst, static_cast<std::size_t>(dst_pitch) * f, src, static_cast<std::size_t>(src_pitch) * f,
                                      static_cast<std::size_t>(width) * f, static_cast<std::size_t>(rows),
                                      cudaMemcpyDeviceToDevice, cuda::stream()));
  }
  // Host <-> device, synchronous (returns when the copy is done, so the host buffer may change afterwards).
  static void from_host(float* dst, const float* host, std::int64_t n) {
    if (!n) return;
    MINT_CUDA_CHECK(cudaMemcpyAsync(dst, host, static_cast<std::size_t>(n) * sizeof(float), cudaMemcpyHostToDevice,
                                    cuda::stream()));
    MINT_CUDA_CHECK(cudaStreamSynchronize(cuda::stream()));
  }
  static void to_host(float* host, const float* src, std::int64_t n) {
    if (!n) return;
    MINT_CUDA_CHECK(cudaMemcpyAsync(host, src, static_cast<std::size_t>(n) * sizeof(float), cudaMemcpyDeviceToHost,
                                    cuda::stream()));
    MINT_CUDA_CHECK(cudaStreamSynchronize(cuda::stream()));
  }
};

namespace cuda {

// A device copy of a host tensor (returns when the copy is done, so `t` may be changed afterwards).
inline Tensor<Cuda> to_device(const Tensor<Cpu>& t) {
  auto d = Tensor<Cuda>::empty(t.shape());
  if (t.numel()) {
    MINT_CUDA_CHECK(cudaMemcpyAsync(d.data(), t.data(), static_cast<std::size_t>(t.numel()) * sizeof(float),
                                    cudaMemcpyHostToDevice, stream()));
    MINT_CUDA_CHECK(cudaStreamSynchronize(stream()));
  }
  return d;
}

// A host copy of a device tensor; waits for the work queued before it (so kernel errors surface here).
inline Tensor<Cpu> to_host(const Tensor<Cuda>& t) {
  auto h = Tensor<Cpu>::empty(t.shape());
  if (t.numel()) {
    MINT_CUDA_CHECK(cudaMemcpyAsync(h.data(), t.data(), static_cast<std::size_t>(t.numel()) * sizeof(float),
                                    cudaMemcpyDeviceToHost, stream()));
    MINT_CUDA_CHECK(cudaStreamSynchronize(stream()));
  }
  return h;
}

}  // namespace cuda
}  // namespace mint
