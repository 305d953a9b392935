// mint/nn/batchnorm.hpp -- BatchNorm2d (torch.nn.BatchNorm2d semantics) and the per-channel batch statistics
// of an NCHW tensor with their gradient (what DeepInversion's BN-statistics image prior matches against a
// teacher's running statistics).
//
// Statistics are two-pass sums in double per channel (conv activations can have large means), over
// M = N * H * W values. Training mode normalises with the batch mean and the biased variance, and updates the
// running statistics with the UNBIASED variance, as torch does:
//   running_mean = (1 - momentum) running_mean + momentum mean
//   running_var  = (1 - momentum) running_var  + momentum var * M / (M - 1)
// Eval mode normalises with the running statistics.
#pragma once

#include <cmath>
#include <cstdint>

#include <Eigen/Core>

#include "mint/backend/cpu/parallel.hpp"
#include "mint/backend/functors_plain.hpp"
#include "mint/core/tensor.hpp"

namespace mint::nn {

struct BatchNormOptions {
  bool training = true;
  float momentum = 0.1f;  // torch's default; the weight of the new batch statistic in the running average
  float eps = 1e-5f;
};

// What the backward needs, per backend (the CUDA op, mint/backend/cuda/batchnorm.cuh, fills BatchNormSavedT<Cuda>).
template <class Device = Cpu>
struct BatchNormSavedT {
  Tensor<Device> mean, rstd;  // [C]: the statistics the forward normalised with (batch or running), 1/sqrt(var+eps)
  bool training = true;       // whether they were batch statistics (backward then goes through them)
};
using BatchNormSaved = BatchNormSavedT<Cpu>;

template <class Device = Cpu>
struct ChannelStatsT {
  Tensor<Device> mean, var;  // [C]: mean and biased variance over the N, H, W axes
};
using ChannelStats = ChannelStatsT<Cpu>;

// The argument checks, shared with the CUDA ops (templates on the device; shapes are host data).
namespace detail {
template <class D>
void check_nchw(const Tensor<D>& x, const char* op) {
  check(x.rank() == 4, op, ": input must be [N, C, H, W], got shape ", x.shape().str());
}

// channel_stats: returns M = N*H*W.
template <class D>
std::int64_t channel_stats_check(const Tensor<D>& x) {
  check_nchw(x, "channel_stats");
  const std::int64_t m = x.dim(0) * x.dim(2) * x.dim(3);
  check(m >= 1, "channel_stats: input shape ", x.shape().str(), " has no values per channel");
  return m;
}

template <class D>
void channel_stats_backward_check(const Tensor<D>& x, const ChannelStatsT<D>& stats, const Tensor<D>* dmean,
                                  const Tensor<D>* dvar, const Tensor<D>& dx) {
  check_nchw(x, "channel_stats_backward");
  const std::int64_t c = x.dim(1);
  check_shape(stats.mean, Shape{c}, "channel_stats_backward: mean");
  if (dmean) check_shape(*dmean, Shape{c}, "channel_stats_backward: d_mean");
  if (dvar) check_shape(*dvar, Shape{c}, "channel_stats_backward: d_var");
  check_shape(dx, x.shape(), "channel_stats_backward: d_input");
}

// batch_norm2d: returns M = N*H*W.
template <class D>
std::int64_t batch_norm2d_check(const Tensor<D>& x, const Tensor<D>* gamma, const Tensor<D>* beta,
                                const Tensor<D>* running_mean, const Tensor<D>* running_var,
                                const BatchNormOptions& opt) {
  check_nchw(x, "batch_norm2d");
  const std::int64_t c = x.dim(1), m = x.dim(0) * x.dim(2) * x.dim(3);
  if (gamma) check_shape(*gamma, Shape{c}, "batch_norm2d: weight");
  if (beta) check_shape(*beta, Shape{c}, "batch_norm2d: bias");
  if (running_mean) check_shape(*running_mean, Shape{c}, "batch_norm2d: running_mean");
  if (running_var) check_shape(*running_var, Shape{c}, "batch_norm2d: running_var");
  check((running_mean == nullptr) == (running_var == nullptr), "batch_norm2d: give both running statistics or neither");
  if (opt.training)
    check(m > 1, "batch_norm2d: expected more than 1 value per channel when training, got input shape ",
          x.shape().str());
  else
    check(running_mean != nullptr, "batch_norm2d: eval mode needs running_mean and running_var");
  return m;
}

// batch_norm2d_backward: returns M = N*H*W.
template <class D>
std::int64_t batch_norm2d_backward_check(const Tensor<D>& dy, const Tensor<D>& x, const Tensor<D>* gamma,
                                         const BatchNormSavedT<D>& saved, const Tensor<D>* dx,
                                         const Tensor<D>* dgamma, const Tensor<D>* dbeta) {
  check_nchw(x, "batch_norm2d_backward");
  const std::int64_t c = x.dim(1);
  check_shape(dy, x.shape(), "batch_norm2d_backward: d_output");
  check_shape(saved.mean, Shape{c}, "batch_norm2d_backward: saved mean");
  check_shape(saved.rstd, Shape{c}, "batch_norm2d_backward: saved rstd");
  if (gamma) check_shape(*gamma, Shape{c}, "batch_norm2d_backward: weight");
  if (dx) check_shape(*dx, x.shape(), "batch_norm2d_backward: d_input");
  if (dgamma) check_shape(*dgamma, Shape{c}, "batch_norm2d_backward: d_weight");
  if (dbeta) check_shape(*dbeta, Shape{c}, "batch_norm2d_backward: d_bias");
  return x.dim(0) * x.dim(2) * x.dim(3);
}
}  // namespace detail

// requires: x [N, C, H, W] with N*H*W >= 1.
// ensures:  mean[c] = sum_{n,h,w} x[n,c,h,w] / M,  var[c] = sum (x - mean[c])^2 / M  (biased), both [C],
//           M = N*H*W (torch: x.mean((0,2,3)), x.var((0,2,3), unbiased=False)).
inline ChannelStats channel_stats(const Tensor<Cpu>& x) {
  const std::int64_t m = detail::channel_stats_check(x);
  const std::int64_t n = x.dim(0), c = x.dim(1), hw = x.dim(2) * x.dim(3);
  ChannelStats s{Tensor<Cpu>::empty(Shape{c}), Tensor<Cpu>::empty(Shape{c})};
  const float* xp = x.data();
  cpu::parallel_for(c, [&](std::int64_t ch) {
    double sum = 0.0;
    for (std::int64_t i = 0; i < n; ++i)
      sum += Eigen::Map<const Eigen::ArrayXf>(xp + (i * c + ch) * hw, hw).cast<double>().sum();
    const double mean = sum / static_cast<double>(m);
    double sq = 0.0;
    for (std::int64_t i = 0; i < n; ++i)
      sq += (Eigen::Map<const Eigen::ArrayXf>(xp + (i * c + ch) * hw, hw).cast<double>() - mean).square().sum();
    s.mean[ch] = static_cast<float>(mean);
    s.var[ch] = static_cast<float>(sq / static_cast<double>(m));
  }, 4);
  return s;
}

// backward of <mean, dmean> + <var, dvar> for (mean, var) = channel_stats(x); dmean, dvar [C] or nullptr (zero):
//   dx[n,c,h,w] += dmean[c] / M + dvar[c] * 2 (x[n,c,h,w] - mean[c]) / M.
// `stats` is what channel_stats(x) returned (only its mean is read).
inline void channel_stats_backward(const Tensor<Cpu>& x, const ChannelStats& stats, const Tensor<Cpu>* dmean,
                                   const Tensor<Cpu>* dvar, Tensor<Cpu>& dx) {
  detail::channel_stats_backward_check(x, stats, dmean, dvar, dx);
  const std::int64_t n = x.dim(0), c = x.dim(1), hw = x.dim(2) * x.dim(3), m = n * hw;
  const float inv_m = 1.0f / static_cast<float>(m);
  const float* xp = x.data();
  float* dxp = dx.data();
  cpu::parallel_for(n * c, [&](std::int64_t nc) {
    const std::int64_t ch = nc % c;
    const fn::ChannelStatsGrad f{dmean ? (*dmean)[ch] * inv_m : 0.0f, dvar ? 2.0f * (*dvar)[ch] * inv_m : 0.0f,
                                 stats.mean[ch]};
    Eigen::Map<Eigen::ArrayXf> d(dxp + nc * hw, hw);
    d += f(Eigen::Map<const Eigen::ArrayXf>(xp + nc * hw, hw));
  }, 16);
}

// requires: x [N, C, H, W]; gamma, beta [C] or nullptr (affine = False: 1 and 0); running_mean, running_var [C]
//           or nullptr in training mode (track_running_stats = False), required in eval mode; training needs
//           N*H*W > 1 (torch: "Expected more than 1 value per channel when training").
// ensures:  returns y [N, C, H, W] = (x - mean[c]) / sqrt(var[c] + eps) * gamma[c] + beta[c], with the batch
//           mean and biased variance in training mode (and the running statistics updated in place, see the
//           top of this file), the running statistics in eval mode. saved (if given) gets mean and 1/std.
inline Tensor<Cpu> batch_norm2d(const Tensor<Cpu>& x, const Tensor<Cpu>* gamma, const Tensor<Cpu>* beta,
                                Tensor<Cpu>* running_mean, Tensor<Cpu>* running_var, const BatchNormOptions& opt,
                                BatchNormSaved* saved) {
  const std::int64_t m = detail::batch_norm2d_check(x, gamma, beta, running_mean, running_var, opt);
  const std::int64_t n = x.dim(0), c = x.dim(1), hw = x.dim(2) * x.dim(3);
  auto mean = Tensor<Cpu>::empty(Shape{c}), rstd = Tensor<Cpu>::empty(Shape{c});
  if (opt.training) {
    auto st = channel_stats(x);
    const float unbias = static_cast<float>(static_cast<double>(m) / static_cast<double>(m - 1));
    const fn::RunningAverage avg{opt.momentum};
    for (std::int64_t ch = 0; ch < c; ++ch) {
      mean[ch] = st.mean[ch];
      rstd[ch] = fn::inv_std(st.var[ch], opt.eps);
      if (running_mean) {
        (*running_mean)[ch] = avg((*running_mean)[ch], st.mean[ch]);
        (*running_var)[ch] = avg((*running_var)[ch], st.var[ch] * unbias);
      }
    }
  } else {
    for (std::int64_t ch = 0; ch < c; ++ch) {
      mean[ch] = (*running_mean)[ch];
      rstd[ch] = fn::inv_std((*running_var)[ch], opt.eps);
    }
  }
  auto y = Tensor<Cpu>::empty(x.shape());
  const float* xp = x.data();
  float* yp = y.data();
  cpu::parallel_for(n * c, [&](std::int64_t nc) {
    const std::int64_t ch = nc % c;
    const fn::BatchNormAffine f(mean[ch], rstd[ch], gamma ? (*gamma)[ch] : 1.0f, beta ? (*beta)[ch] : 0.0f);
    Eigen::Map<Eigen::ArrayXf>(yp + nc * hw, hw) = f(Eigen::Map<const Eigen::ArrayXf>(xp + nc * hw, hw));
  }, 16);
  if (saved) {
    saved->mean = mean;
    saved->rstd = rstd;
    saved->training = opt.training;
  }
  return y;
}

// backward of <y, dy> for y = batch_norm2d(x, gamma, beta, ..., saved), dy [N, C, H, W], with
// xhat = (x - mean) rstd and sums over n, h, w per channel (M values):
//   training: dx += gamma rstd (dy - sum(dy) / M - xhat sum(dy xhat) / M)   (through the batch statistics)
//   eval:     dx += gamma rstd dy
//   dgamma [C] += sum(dy xhat),  dbeta [C] += sum(dy).   nullptr gradients are not computed (InputOnly).
inline void batch_norm2d_backward(const Tensor<Cpu>& dy, const Tensor<Cpu>& x, const Tensor<Cpu>* gamma,
                                  const BatchNormSaved& saved, Tensor<Cpu>* dx, Tensor<Cpu>* dgamma,
                                  Tensor<Cpu>* dbeta) {
  const std::int64_t m = detail::batch_norm2d_backward_check(dy, x, gamma, saved, dx, dgamma, dbeta);
  const std::int64_t n = x.dim(0), c = x.dim(1), hw = x.dim(2) * x.dim(3);
  const bool need_sums = dgamma || dbeta || (dx && saved.training);
  const float *xp = x.data(), *dyp = dy.data();
  cpu::parallel_for(c, [&](std::int64_t ch) {
    const float mu = saved.mean[ch], rs = saved.rstd[ch], g = gamma ? (*gamma)[ch] : 1.0f;
    double sdy = 0.0, sdyx = 0.0;
    if (need_sums)
      for (std::int64_t i = 0; i < n; ++i) {
        Eigen::Map<const Eigen::ArrayXf> d(dyp + (i * c + ch) * hw, hw), xv(xp + (i * c + ch) * hw, hw);
        sdy += d.cast<double>().sum();
        sdyx += (d.cast<double>() * ((xv - mu) * rs).cast<double>()).sum();
      }
    if (dgamma) (*dgamma)[ch] += static_cast<float>(sdyx);
    if (dbeta) (*dbeta)[ch] += static_cast<float>(sdy);
    if (!dx) return;
    const fn::BatchNormGrad f{g * rs, saved.training ? static_cast<float>(sdy / static_cast<double>(m)) : 0.0f,
                              saved.training ? static_cast<float>(sdyx / static_cast<double>(m)) : 0.0f, mu, rs};
    for (std::int64_t i = 0; i < n; ++i) {
      Eigen::Map<const Eigen::ArrayXf> d(dyp + (i * c + ch) * hw, hw), xv(xp + (i * c + ch) * hw, hw);
      Eigen::Map<Eigen::ArrayXf> out(dx->data() + (i * c + ch) * hw, hw);
      out += f(d, xv);
    }
  }, 2);
}

}  // namespace mint::nn
