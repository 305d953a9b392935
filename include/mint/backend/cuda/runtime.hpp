// mint/backend/cuda/runtime.hpp -- whether a GPU is usable, and the one stream mint's CUDA ops run on.
//
// Every mint CUDA op (copies, kernels, cuBLAS calls) is enqueued on cuda::stream(), so they run in order
// without host synchronisation, and the caching allocator may hand a block freed by one op to the next op at
// once (stream order makes that safe). A second stream would need events before such reuse; mint has none yet.
#pragma once

#include <string>

#include "mint/backend/cuda/error.hpp"

namespace mint::cuda {

struct DeviceStatus {
  bool available = false;
  int count = 0;
  std::string reason;  // why not, when !available (the runtime's error, or "no CUDA device")
};

// Probed once per process. Never throws: on a machine without a driver or GPU it reports why.
inline const DeviceStatus& device_status() {
  static const DeviceStatus status = [] {
    DeviceStatus s;
    const cudaError_t err = cudaGetDeviceCount(&s.count);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      s.count = 0;
      s.reason = mint::detail::concat("cudaGetDeviceCount failed: ", cudaGetErrorName(err), " (",
                                      cudaGetErrorString(err), ")");
    } else if (s.count == 0) {
      s.reason = "cudaGetDeviceCount returned 0: no CUDA device";
    } else {
      s.available = true;
    }
    return s;
  }();
  return status;
}

inline bool device_available() { return device_status().available; }

// The stream every mint CUDA op runs on (created on first use, non-blocking w.r.t. the legacy default stream).
inline cudaStream_t stream() {
  static cudaStream_t s = [] {
    check(device_available(), "mint::cuda: no usable GPU: ", device_status().reason);
    cudaStream_t st = nullptr;
    MINT_CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    return st;
  }();
  return s;
}

// Waits for everything enqueued on mint's stream; rethrows an asynchronous kernel error with its name.
inline void synchronize() { MINT_CUDA_CHECK(cudaStreamSynchronize(stream())); }

}  // namespace mint::cuda
