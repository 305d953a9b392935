// mint/core/device.hpp -- backend tag types and the host/device annotation for shared pointwise math.
// Backends are types, not a build-wide switch: Tensor<Cpu> and Tensor<Cuda> can live in one binary.
#pragma once

#if defined(__CUDACC__)
#define MINT_HOST_DEVICE __host__ __device__
#else
#define MINT_HOST_DEVICE
#endif

namespace mint {

struct Cpu {
  static constexpr const char* name = "cpu";
};

// The CUDA backend (mint/backend/cuda) defines storage for this tag; the CPU build only names it.
struct Cuda {
  static constexpr const char* name = "cuda";
};

}  // namespace mint
