// mint/backend/cuda/elementwise.cuh -- residual add and scaling on Tensor<Cuda> (contract:
// mint/nn/elementwise.hpp), and the non-finite check of mint/core/tensor.hpp.
#pragma once

#include "mint/backend/cuda/detail/launch.cuh"
#include "mint/backend/cuda/tensor.hpp"
#include "mint/nn/elementwise.hpp"

namespace mint::nn {

inline Tensor<Cuda> add(const Tensor<Cuda>& a, const Tensor<Cuda>& b) {
  check_shape(b, a.shape(), "add: second operand");
  auto y = Tensor<Cuda>::empty(a.shape());
  const float *ap = a.data(), *bp = b.data();
  float* yp = y.data();
  cuda::detail::for_each(a.numel(), [=] __device__(std::int64_t i) { yp[i] = ap[i] + bp[i]; }, "add");
  return y;
}

inline void add_inplace(Tensor<Cuda>& a, const Tensor<Cuda>& b) {
  check_shape(b, a.shape(), "add_inplace: operand");
  float* ap = a.data();
  const float* bp = b.data();
  cuda::detail::for_each(a.numel(), [=] __device__(std::int64_t i) { ap[i] += bp[i]; }, "add_inplace");
}

// backward of <a + b, dy>: da += dy, db += dy (nullptr skips).
inline void add_backward(const Tensor<Cuda>& dy, Tensor<Cuda>* da, Tensor<Cuda>* db) {
  if (da) add_inplace(*da, dy);
  if (db) add_inplace(*db, dy);
}

inline void scale_inplace(Tensor<Cuda>& a, float s) {
  float* ap = a.data();
  cuda::detail::for_each(a.numel(), [=] __device__(std::int64_t i) { ap[i] *= s; }, "scale_inplace");
}

inline void add_scalar_inplace(Tensor<Cuda>& a, float s) {
  float* ap = a.data();
  cuda::detail::for_each(a.numel(), [=] __device__(std::int64_t i) { ap[i] += s; }, "add_scalar_inplace");
}

}  // namespace mint::nn

namespace mint {

// Throws if any element is NaN or infinite, naming `what` and the first bad index (as the CPU check_finite).
// The scan is one kernel that records the lowest bad index; reading it back synchronises the stream.
inline void check_finite(const Tensor<Cuda>& t, const char* what) {
  if (t.numel() == 0) return;
  cuda::detail::DeviceBuffer first(sizeof(unsigned long long));
  auto* fp = first.as<unsigned long long>();
  const unsigned long long none = ~0ull;
  MINT_CUDA_CHECK(cudaMemcpyAsync(fp, &none, sizeof none, cudaMemcpyHostToDevice, cuda::stream()));
  const float* p = t.data();
  cuda::detail::for_each(
      t.numel(),
      [=] __device__(std::int64_t i) {
        if (!isfinite(p[i])) atomicMin(fp, static_cast<unsigned long long>(i));
      },
      "check_finite");
  unsigned long long bad = none;
  MINT_CUDA_CHECK(cudaMemcpyAsync(&bad, fp, sizeof bad, cudaMemcpyDeviceToHost, cuda::stream()));
  MINT_CUDA_CHECK(cudaStreamSynchronize(cuda::stream()));
  if (bad == none) return;
  float v = 0.0f;
  MINT_CUDA_CHECK(cudaMemcpy(&v, p + bad, sizeof v, cudaMemcpyDeviceToHost));
  throw Error(detail::concat(what, ": non-finite value ", v, " at flat index ", bad, " of shape ", t.shape().str()));
}

}  // namespace mint
