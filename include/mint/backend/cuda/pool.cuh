// mint/backend/cuda/pool.cuh -- max, average and adaptive average pooling on Tensor<Cuda> (contracts, argument
// checks and window arithmetic: mint/nn/pool.hpp).
//
// Forward: one thread per output element, scanning its window as the CPU loop does (cuda_detail::pool_window,
// fn::MaxPoolPick). Backward: one thread per input element gathers the gradient of every window that covers
// it, in the CPU's output order onto the value already there: no atomics, and the CPU's summation order.
#pragma once

#include <memory>

#include "mint/backend/cuda/allocator.hpp"
#include "mint/backend/cuda/detail/launch.cuh"
#include "mint/backend/cuda/tensor.hpp"
#include "mint/backend/functors_plain.hpp"
#include "mint/nn/pool.hpp"

namespace mint::nn {

// max_pool2d's saved state on the GPU: the argmax per output element (flat index h*W + w within its plane, as
// the CPU's) in device memory, and the window geometry the backward's gather needs.
template <>
struct MaxPoolSavedT<Cuda> {
  std::shared_ptr<cuda::detail::DeviceBuffer> argmax;  // int32 [N*C*Ho*Wo]
  std::int64_t count = 0;
  detail::PoolGeom geom{};
};
using MaxPoolSavedCuda = MaxPoolSavedT<Cuda>;

namespace cuda_detail {
// The window of output row (or column) o: [start, end) counting the padding (avg_pool2d's divisor), and its part
// inside the image [lo, hi) that max and average pooling scan. The CPU loops of mint/nn/pool.hpp compute the
// same four numbers inline (a call to a shared helper there made the CPU loops measurably slower); the GPU tests
// compare the two.
struct PoolWindow {
  std::int64_t start, end, lo, hi;
};
__device__ inline PoolWindow pool_window(std::int64_t o, std::int64_t stride, std::int64_t pad, std::int64_t kernel,
                                         std::int64_t n) {
  const std::int64_t s = o * stride - pad, e0 = s + kernel, e = e0 < n + pad ? e0 : n + pad;
  return {s, e, s > 0 ? s : 0, e0 < n ? e0 : n};
}

// The output rows o of a window geometry whose window [o*s - p, o*s - p + k) contains input row i: [lo, hi).
__device__ inline void covering_outputs(std::int64_t i, std::int64_t s, std::int64_t p, std::int64_t k,
                                        std::int64_t n_out, std::int64_t& lo, std::int64_t& hi) {
  const std::int64_t a = i + p - k + 1;  // o*s >= a
  lo = a <= 0 ? 0 : (a + s - 1) / s;
  hi = (i + p) / s + 1;  // o*s <= i + p
  if (hi > n_out) hi = n_out;
}
}  // namespace cuda_detail

// requires/ensures: as the CPU max_pool2d (the first maximum in scan order; a NaN wins, the last one if several).
inline Tensor<Cuda> max_pool2d(const Tensor<Cuda>& x, const Pool2dOptions& opt, MaxPoolSavedCuda* saved) {
  const auto g = detail::pool_geom(x, opt, "max_pool2d");
  auto y = Tensor<Cuda>::empty(detail::pool_out_shape(x, g.oh, g.ow));
  check(g.h * g.w <= std::numeric_limits<std::int32_t>::max(), "max_pool2d: plane of input shape ", x.shape().str(),
        " too large for 32-bit argmax indices");
  std::int32_t* ap = nullptr;
  if (saved) {
    saved->argmax = std::make_shared<cuda::detail::DeviceBuffer>(
        static_cast<std::size_t>(std::max<std::int64_t>(y.numel(), 1)) * sizeof(std::int32_t));
    saved->count = y.numel();
    saved->geom = g;
    ap = saved->argmax->as<std::int32_t>();
  }
  const float* xp = x.data();
  float* yp = y.data();
  cuda::detail::for_each(
      y.numel(),
      [=] __device__(std::int64_t o) {
        const std::int64_t pl = o / (g.oh * g.ow), oy = (o / g.ow) % g.oh, ox = o % g.ow;
        const float* in = xp + pl * g.h * g.w;
        const auto wy = cuda_detail::pool_window(oy, g.sh, g.ph, g.kh, g.h);
        const auto wx = cuda_detail::pool_window(ox, g.sw, g.pw, g.kw, g.w);
        float best = -INFINITY;
        std::int64_t arg = wy.lo * g.w + wx.lo;
        for (std::int64_t iy = wy.lo; iy < wy.hi; ++iy)
          for (std::int64_t ix = wx.lo; ix < wx.hi; ++ix) {
            const float v = in[iy * g.w + ix];
            if (fn::MaxPoolPick{}(v, best)) {
              best = v;
              arg = iy * g.w + ix;
            }
          }
        yp[o] = best;
        if (ap) ap[o] = static_cast<std::int32_t>(arg);
      },
      "max_pool2d");
  return y;
}

// backward of <y, dy>: dx += dy routed to each window's argmax (as the CPU op).
inline void max_pool2d_backward(const Tensor<Cuda>& dy, const MaxPoolSavedCuda& saved, Tensor<Cuda>& dx) {
  detail::max_pool2d_backward_check(dy, saved.count, saved.geom, dx);
  const auto g = saved.geom;
  if (dx.numel() == 0) return;
  const std::int32_t* ap = saved.argmax->as<std::int32_t>();
  const float* dyp = dy.data();
  float* dxp = dx.data();
  cuda::detail::for_each(
      dx.numel(),
      [=] __device__(std::int64_t t) {
        const std::int64_t pl = t / (g.h * g.w), p = t % (g.h * g.w), iy = p / g.w, ix = p % g.w;
        std::int64_t y0, y1, x0, x1;
        cuda_detail::covering_outputs(iy, g.sh, g.ph, g.kh, g.oh, y0, y1);
        cuda_detail::covering_outputs(ix, g.sw, g.pw, g.kw, g.ow, x0, x1);
        float acc = dxp[t];
        for (std::int64_t oy = y0; oy < y1; ++oy)
          for (std::int64_t ox = x0; ox < x1; ++ox) {
            const std::int64_t o = (pl * g.oh + oy) * g.ow + ox;
            if (ap[o] == p) acc += dyp[o];
          }
        dxp[t] = acc;
      },
      "max_pool2d_backward");
}

// requires/ensures: as the CPU avg_pool2d (count_include_pad = True).
inline Tensor<Cuda> avg_pool2d(const Tensor<Cuda>& x, const Pool2dOptions& opt) {
  const auto g = detail::pool_geom(x, opt, "avg_pool2d");
  auto y = Tensor<Cuda>::empty(detail::pool_out_shape(x, g.oh, g.ow));
  const float* xp = x.data();
  float* yp = y.data();
  cuda::detail::for_each(
      y.numel(),
      [=] __device__(std::int64_t o) {
        const std::int64_t pl = o / (g.oh * g.ow), oy = (o / g.ow) % g.oh, ox = o % g.ow;
        const float* in = xp + pl * g.h * g.w;
        const auto wy = cuda_detail::pool_window(oy, g.sh, g.ph, g.kh, g.h);
        const auto wx = cuda_detail::pool_window(ox, g.sw, g.pw, g.kw, g.w);
        float s = 0.0f;
        for (std::int64_t iy = wy.lo; iy < wy.hi; ++iy)
          for (std::int64_t ix = wx.lo; ix < wx.hi; ++ix) s += in[iy * g.w + ix];
        yp[o] = s / static_cast<float>((wy.end - wy.start) * (wx.end - wx.start));
      },
      "avg_pool2d");
  return y;
}

// backward of <y, dy>: dx += dy / window size over each window's inside-the-image part (as the CPU op).
inline void avg_pool2d_backward(const Tensor<Cuda>& dy, const Pool2dOptions& opt, Tensor<Cuda>& dx) {
  const auto g = detail::pool_geom(dx, opt, "avg_pool2d_backward");
  check_shape(dy, detail::pool_out_shape(dx, g.oh, g.ow), "avg_pool2d_backward: d_output");
  const float* dyp = dy.data();
  float* dxp = dx.data();
  cuda::detail::for_each(
      dx.numel(),
      [=] __device__(std::int64_t t) {
        const std::int64_t pl = t / (g.h * g.w), iy = (t / g.w) % g.h, ix = t % g.w;
        std::int64_t y0, y1, x0, x1;
        cuda_detail::covering_outputs(iy, g.sh, g.ph, g.kh, g.oh, y0, y1);
        cuda_detail::covering_outputs(ix, g.sw, g.pw, g.kw, g.ow, x0, x1);
        float acc = dxp[t];
        for (std::int64_t oy = y0; oy < y1; ++oy) {
          const auto wy = cuda_detail::pool_window(oy, g.sh, g.ph, g.kh, g.h);
          for (std::int64_t ox = x0; ox < x1; ++ox) {
            const auto wx = cuda_detail::pool_window(ox, g.sw, g.pw, g.kw, g.w);
            acc += dyp[(pl * g.oh + oy) * g.ow + ox] / static_cast<float>((wy.end - wy.start) * (wx.end - wx.start));
          }
        }
        dxp[t] = acc;
      },
      "avg_pool2d_backward");
}

// requires/ensures: as the CPU adaptive_avg_pool2d (torch's bins; the mean summed in double).
inline Tensor<Cuda> adaptive_avg_pool2d(const Tensor<Cuda>& x, std::int64_t out_h, std::int64_t out_w) {
  detail::adaptive_avg_pool2d_check(x, out_h, out_w);
  const std::int64_t h = x.dim(2), w = x.dim(3);
  auto y = Tensor<Cuda>::empty(detail::pool_out_shape(x, out_h, out_w));
  const float* xp = x.data();
  float* yp = y.data();
  cuda::detail::for_each(
      y.numel(),
      [=] __device__(std::int64_t o) {
        const std::int64_t pl = o / (out_h * out_w), i = (o / out_w) % out_h, j = o % out_w;
        const float* in = xp + pl * h * w;
        const std::int64_t y0 = detail::adaptive_start(i, h, out_h), y1 = detail::adaptive_end(i, h, out_h);
        const std::int64_t x0 = detail::adaptive_start(j, w, out_w), x1 = detail::adaptive_end(j, w, out_w);
        double s = 0.0;
        for (std::int64_t iy = y0; iy < y1; ++iy)
          for (std::int64_t ix = x0; ix < x1; ++ix) s += in[iy * w + ix];
        yp[o] = static_cast<float>(s / static_cast<double>((y1 - y0) * (x1 - x0)));
      },
      "adaptive_avg_pool2d");
  return y;
}

// backward of <y, dy>: dx += dy / bin size over each bin (as the CPU op). A thread scans the bins of its row and
// column (the output sizes are small: 1 x 1 for global pooling).
inline void adaptive_avg_pool2d_backward(const Tensor<Cuda>& dy, Tensor<Cuda>& dx) {
  detail::adaptive_avg_pool2d_backward_check(dy, dx);
  const std::int64_t h = dx.dim(2), w = dx.dim(3), oh = dy.dim(2), ow = dy.dim(3);
  const float* dyp = dy.data();
  float* dxp = dx.data();
  cuda::detail::for_each(
      dx.numel(),
      [=] __device__(std::int64_t t) {
        const std::int64_t pl = t / (h * w), iy = (t / w) % h, ix = t % w;
        float acc = dxp[t];
        for (std::int64_t i = 0; i < oh; ++i) {
          const std::int64_t y0 = detail::adaptive_start(i, h, oh), y1 = detail::adaptive_end(i, h, oh);
          if (iy < y0 || iy >= y1) continue;
          for (std::int64_t j = 0; j < ow; ++j) {
            const std::int64_t x0 = detail::adaptive_start(j, w, ow), x1 = detail::adaptive_end(j, w, ow);
            if (ix < x0 || ix >= x1) continue;
            acc += dyp[(pl * oh + i) * ow + j] / static_cast<float>((y1 - y0) * (x1 - x0));
          }
        }
        dxp[t] = acc;
      },
      "adaptive_avg_pool2d_backward");
}

// Global average pooling: x [N, C, H, W] -> [N, C, 1, 1], and its backward.
inline Tensor<Cuda> global_avg_pool2d(const Tensor<Cuda>& x) { return adaptive_avg_pool2d(x, 1, 1); }
inline void global_avg_pool2d_backward(const Tensor<Cuda>& dy, Tensor<Cuda>& dx) {
  adaptive_avg_pool2d_backward(dy, dx);
}

}  // namespace mint::nn
