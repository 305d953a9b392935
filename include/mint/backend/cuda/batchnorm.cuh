// mint/backend/cuda/batchnorm.cuh -- BatchNorm2d (training and eval mode) and the per-channel batch statistics
// with their gradients on Tensor<Cuda> (contracts and argument checks: mint/nn/batchnorm.hpp).
//
// Per-channel sums are one block per channel, in double (as the CPU's), two-pass for the variance; the
// per-channel scalars (rstd, the running-statistics update, the backward's a and b) and the pointwise parts
// (normalise, the input gradients) are the fn:: functors the CPU loops call.
#pragma once

#include "mint/backend/cuda/detail/launch.cuh"
#include "mint/backend/cuda/tensor.hpp"
#include "mint/backend/functors_plain.hpp"
#include "mint/nn/batchnorm.hpp"

namespace mint::nn {

using BatchNormSavedCuda = BatchNormSavedT<Cuda>;
using ChannelStatsCuda = ChannelStatsT<Cuda>;

namespace cuda_detail {

// mean[c] and biased var[c] of x [N, C, HW] over N and HW, two passes in double; one block per channel.
__global__ inline void channel_stats_kernel(const float* x, std::int64_t n, std::int64_t c, std::int64_t hw,
                                            float* mean, float* var) {
  using namespace mint::cuda::detail;
  const std::int64_t ch = blockIdx.x, m = n * hw;
  double s = 0.0;
  for (std::int64_t t = threadIdx.x; t < m; t += blockDim.x) s += x[((t / hw) * c + ch) * hw + t % hw];
  const double mu = block_reduce(s, Sum{}, 0.0) / static_cast<double>(m);
  double q = 0.0;
  for (std::int64_t t = threadIdx.x; t < m; t += blockDim.x) {
    const double d = static_cast<double>(x[((t / hw) * c + ch) * hw + t % hw]) - mu;
    q += d * d;
  }
  q = block_reduce(q, Sum{}, 0.0);
  if (threadIdx.x == 0) {
    mean[ch] = static_cast<float>(mu);
    var[ch] = static_cast<float>(q / static_cast<double>(m));
  }
}

inline ChannelStatsCuda channel_stats_launch(const Tensor<Cuda>& x) {
  const std::int64_t n = x.dim(0), c = x.dim(1), hw = x.dim(2) * x.dim(3);
  ChannelStatsCuda s{Tensor<Cuda>::empty(Shape{c}), Tensor<Cuda>::empty(Shape{c})};
  if (c == 0) return s;
  channel_stats_kernel<<<static_cast<unsigned>(c), cuda::detail::row_threads(n * hw), 0, cuda::stream()>>>(
      x.data(), n, c, hw, s.mean.data(), s.var.data());
  cuda::detail::check_launch("channel_stats");
  return s;
}

// Per channel: sdy = sum(dy), sdyx = sum(dy xhat) in double (as the CPU's); dgamma += sdyx, dbeta += sdy; and
// the input gradient's functor coefficients ab[2c] = a, ab[2c+1] = b (training mode; 0 in eval mode).
__global__ inline void batch_norm_backward_sums_kernel(const float* dy, const float* x, const float* mean,
                                                       const float* rstd, std::int64_t n, std::int64_t c,
                                                       std::int64_t hw, bool training, float* dgamma, float* dbeta,
                                                       float* ab) {
  using namespace mint::cuda::detail;
  const std::int64_t ch = blockIdx.x, m = n * hw;
  const float mu = mean[ch], rs = rstd[ch];
  double sdy = 0.0, sdyx = 0.0;
  for (std::int64_t t = threadIdx.x; t < m; t += blockDim.x) {
    const std::int64_t o = ((t / hw) * c + ch) * hw + t % hw;
    sdy += dy[o];
    sdyx += static_cast<double>(dy[o]) * static_cast<double>((x[o] - mu) * rs);
  }
  sdy = block_reduce(sdy, Sum{}, 0.0);
  sdyx = block_reduce(sdyx, Sum{}, 0.0);
  if (threadIdx.x == 0) {
    if (dgamma) dgamma[ch] += static_cast<float>(sdyx);
    if (dbeta) dbeta[ch] += static_cast<float>(sdy);
    ab[2 * ch] = training ? static_cast<float>(sdy / static_cast<double>(m)) : 0.0f;
    ab[2 * ch + 1] = training ? static_cast<float>(sdyx / static_cast<double>(m)) : 0.0f;
  }
}

}  // namespace cuda_detail

// requires/ensures: as the CPU channel_stats (x [N, C, H, W], N*H*W >= 1; mean and biased var [C]).
inline ChannelStatsCuda channel_stats(const Tensor<Cuda>& x) {
  detail::channel_stats_check(x);
  return cuda_detail::channel_stats_launch(x);
}

// backward of <mean, dmean> + <var, dvar>: dx += dmean[c] / M + dvar[c] * 2 (x - mean[c]) / M (fn::ChannelStatsGrad).
inline void channel_stats_backward(const Tensor<Cuda>& x, const ChannelStatsCuda& stats, const Tensor<Cuda>* dmean,
                                   const Tensor<Cuda>* dvar, Tensor<Cuda>& dx) {
  detail::channel_stats_backward_check(x, stats, dmean, dvar, dx);
  const std::int64_t c = x.dim(1), hw = x.dim(2) * x.dim(3), m = x.dim(0) * hw;
  const float inv_m = 1.0f / static_cast<float>(m);
  const float *xp = x.data(), *mp = stats.mean.data(), *dmp = dmean ? dmean->data() : nullptr,
              *dvp = dvar ? dvar->data() : nullptr;
  float* dxp = dx.data();
  cuda::detail::for_each(
      x.numel(),
      [=] __device__(std::int64_t i) {
        const std::int64_t ch = (i / hw) % c;
        const fn::ChannelStatsGrad f{dmp ? dmp[ch] * inv_m : 0.0f, dvp ? 2.0f * dvp[ch] * inv_m : 0.0f, mp[ch]};
        dxp[i] += f(xp[i]);
      },
      "channel_stats_backward");
}

// requires/ensures: as the CPU batch_norm2d: training mode normalises with the batch statistics and updates the
// running statistics (if given) in place with the unbiased variance; eval mode uses the running statistics.
inline Tensor<Cuda> batch_norm2d(const Tensor<Cuda>& x, const Tensor<Cuda>* gamma, const Tensor<Cuda>* beta,
                                 Tensor<Cuda>* running_mean, Tensor<Cuda>* running_var, const BatchNormOptions& opt,
                                 BatchNormSavedCuda* saved) {
  const std::int64_t m = detail::batch_norm2d_check(x, gamma, beta, running_mean, running_var, opt);
  const std::int64_t c = x.dim(1), hw = x.dim(2) * x.dim(3);
  auto mean = Tensor<Cuda>::empty(Shape{c}), rstd = Tensor<Cuda>::empty(Shape{c});
  float *mp = mean.data(), *rp = rstd.data();
  float *rmp = running_mean ? running_mean->data() : nullptr, *rvp = running_var ? running_var->data() : nullptr;
  const float eps = opt.eps;
  if (opt.training) {
    auto st = cuda_detail::channel_stats_launch(x);
    const float unbias = static_cast<float>(static_cast<double>(m) / static_cast<double>(m - 1));
    const fn::RunningAverage avg{opt.momentum};
    const float *smp = st.mean.data(), *svp = st.var.data();
    cuda::detail::for_each(
        c,
        [=] __device__(std::int64_t ch) {
          mp[ch] = smp[ch];
          rp[ch] = fn::inv_std(svp[ch], eps);
          if (rmp) {
            rmp[ch] = avg(rmp[ch], smp[ch]);
            rvp[ch] = avg(rvp[ch], svp[ch] * unbias);
          }
        },
        "batch_norm2d (statistics)");
  } else {
    cuda::detail::for_each(
        c,
        [=] __device__(std::int64_t ch) {
          mp[ch] = rmp[ch];
          rp[ch] = fn::inv_std(rvp[ch], eps);
        },
        "batch_norm2d (running statistics)");
  }
  auto y = Tensor<Cuda>::empty(x.shape());
  const float *xp = x.data(), *gp = gamma ? gamma->data() : nullptr, *bp = beta ? beta->data() : nullptr;
  float* yp = y.data();
  cuda::detail::for_each(
      x.numel(),
      [=] __device__(std::int64_t i) {
        const std::int64_t ch = (i / hw) % c;
        yp[i] = fn::BatchNormAffine(mp[ch], rp[ch], gp ? gp[ch] : 1.0f, bp ? bp[ch] : 0.0f)(xp[i]);
      },
      "batch_norm2d");
  if (saved) {
    saved->mean = mean;
    saved->rstd = rstd;
    saved->training = opt.training;
  }
  return y;
}

// backward of <y, dy>: as the CPU batch_norm2d_backward (through the batch statistics in training mode, not in
// eval mode; dx, dgamma, dbeta added to; nullptr is not computed).
inline void batch_norm2d_backward(const Tensor<Cuda>& dy, const Tensor<Cuda>& x, const Tensor<Cuda>* gamma,
                                  const BatchNormSavedCuda& saved, Tensor<Cuda>* dx, Tensor<Cuda>* dgamma,
                                  Tensor<Cuda>* dbeta) {
  detail::batch_norm2d_backward_check(dy, x, gamma, saved, dx, dgamma, dbeta);
  const std::int64_t n = x.dim(0), c = x.dim(1), hw = x.dim(2) * x.dim(3);
  if (c == 0 || (!dx && !dgamma && !dbeta)) return;
  auto ab = Tensor<Cuda>::zeros(Shape{2 * c});
  const bool need_sums = dgamma || dbeta || (dx && saved.training);
  if (need_sums) {
    cuda_detail::batch_norm_backward_sums_kernel<<<static_cast<unsigned>(c), cuda::detail::row_threads(n * hw), 0,
                                                   cuda::stream()>>>(
        dy.data(), x.data(), saved.mean.data(), saved.rstd.data(), n, c, hw, saved.training,
        dgamma ? dgamma->data() : nullptr, dbeta ? dbeta->data() : nullptr, ab.data());
    cuda::detail::check_launch("batch_norm2d_backward (sums)");
  }
  if (!dx) return;
  const float *dyp = dy.data(), *xp = x.data(), *mp = saved.mean.data(), *rp = saved.rstd.data(), *abp = ab.data(),
              *gp = gamma ? gamma->data() : nullptr;
  float* dxp = dx->data();
  cuda::detail::for_each(
      x.numel(),
      [=] __device__(std::int64_t i) {
        const std::int64_t ch = (i / hw) % c;
        const float rs = rp[ch];
        const fn::BatchNormGrad f{(gp ? gp[ch] : 1.0f) * rs, abp[2 * ch], abp[2 * ch + 1], mp[ch], rs};
        dxp[i] += f(dyp[i], xp[i]);
      },
      "batch_norm2d_backward (d_input)");
}

}  // namespace mint::nn
