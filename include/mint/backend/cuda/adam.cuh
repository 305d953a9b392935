// mint/backend/cuda/adam.cuh -- one Adam/AdamW update of a device tensor with fn::AdamStep, the functor the
// CPU optimiser (mint/optim/adam.hpp) and the inversion engine call per element.
#pragma once

#include "mint/backend/cuda/detail/launch.cuh"
#include "mint/backend/cuda/tensor.hpp"
#include "mint/backend/functors.hpp"

namespace mint::cuda {

// requires: p, g, m, v of one shape. ensures: f(p[i], g[i], m[i], v[i]) for every i.
inline void adam_step(const fn::AdamStep& f, Tensor<Cuda>& p, const Tensor<Cuda>& g, Tensor<Cuda>& m, Tensor<Cuda>& v) {
  check_shape(g, p.shape(), "cuda::adam_step: gradient");
  check_shape(m, p.shape(), "cuda::adam_step: first moment");
  check_shape(v, p.shape(), "cuda::adam_step: second moment");
  float *pp = p.data(), *mp = m.data(), *vp = v.data();
  const float* gp = g.data();
  cuda::detail::for_each(p.numel(), [=] __device__(std::int64_t i) { f(pp[i], gp[i], mp[i], vp[i]); }, "adam_step");
}

}  // namespace mint::cuda
