// mint/nn/pool.hpp -- 2-D max and average pooling (NCHW, torch.nn.functional semantics, ceil_mode = False,
// dilation = 1) and adaptive average pooling (global average pooling is its 1 x 1 case).
// Each (image, channel) plane is independent, so all loops run in parallel over N*C planes.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "mint/backend/cpu/parallel.hpp"
#include "mint/backend/functors_plain.hpp"
#include "mint/core/tensor.hpp"

namespace mint::nn {

// kernel, stride and padding per axis; stride 0 (the default) means stride = kernel, as in torch.
struct Pool2dOptions {
  std::int64_t kernel_h = 1, kernel_w = 1;
  std::int64_t stride_h = 0, stride_w = 0;
  std::int64_t pad_h = 0, pad_w = 0;

  static Pool2dOptions square(std::int64_t kernel, std::int64_t stride = 0, std::int64_t padding = 0) {
    return {kernel, kernel, stride, stride, padding, padding};
  }
};

namespace detail {
struct PoolGeom {
  std::int64_t planes, h, w, kh, kw, sh, sw, ph, pw, oh, ow;
};
}  // namespace detail

// What max_pool2d_backward needs, per backend: the argmax and the forward's geometry (the CUDA op,
// mint/backend/cuda/pool.cuh, defines MaxPoolSavedT<Cuda>, the argmax in device memory).
template <class Device = Cpu>
struct MaxPoolSavedT;
template <>
struct MaxPoolSavedT<Cpu> {
  std::vector<std::int32_t> argmax;  // per output element: flat index h*W + w of the max within its input plane
  detail::PoolGeom geom{};
};
using MaxPoolSaved = MaxPoolSavedT<Cpu>;

namespace detail {

// Templates on the device: the CUDA ops (mint/backend/cuda/pool.cuh) run the same checks.
template <class D>
PoolGeom pool_geom(const Tensor<D>& x, const Pool2dOptions& o, const char* op) {
  check(x.rank() == 4, op, ": input must be [N, C, H, W], got shape ", x.shape().str());
  PoolGeom g{x.dim(0) * x.dim(1), x.dim(2), x.dim(3), o.kernel_h, o.kernel_w,
             o.stride_h ? o.stride_h : o.kernel_h, o.stride_w ? o.stride_w : o.kernel_w, o.pad_h, o.pad_w, 0, 0};
  check(g.kh >= 1 && g.kw >= 1 && g.sh >= 1 && g.sw >= 1, op, ": kernel (", g.kh, ", ", g.kw, ") and stride (",
        g.sh, ", ", g.sw, ") must be >= 1");
  check(g.ph >= 0 && g.pw >= 0 && 2 * g.ph <= g.kh && 2 * g.pw <= g.kw, op, ": padding (", g.ph, ", ", g.pw,
        ") must be >= 0 and at most half the kernel (", g.kh, ", ", g.kw, ")");
  check(g.h + 2 * g.ph >= g.kh && g.w + 2 * g.pw >= g.kw, op, ": kernel (", g.kh, ", ", g.kw,
        ") is larger than the padded input of shape ", x.shape().str());
  g.oh = (g.h + 2 * g.ph - g.kh) / g.sh + 1;
  g.ow = (g.w + 2 * g.pw - g.kw) / g.sw + 1;
  return g;
}

template <class D>
Shape pool_out_shape(const Tensor<D>& x, std::int64_t oh, std::int64_t ow) {
  return Shape{x.dim(0), x.dim(1), oh, ow};
}


// The checks of max_pool2d_backward: d_output and d_input agree on N and C, `argmax_count` indices for d_output.
template <class D>
void max_pool2d_backward_check(const Tensor<D>& dy, std::int64_t argmax_count, const PoolGeom& g, const Tensor<D>& dx) {
  check(dx.rank() == 4 && dy.rank() == 4 && dy.dim(0) == dx.dim(0) && dy.dim(1) == dx.dim(1),
        "max_pool2d_backward: d_output shape ", dy.shape().str(), " does not match d_input shape ", dx.shape().str());
  check(argmax_count == dy.numel(), "max_pool2d_backward: saved argmax holds ", argmax_count,
        " indices, d_output shape ", dy.shape().str(), " has ", dy.numel());
  // the argmax indices point into the forward's input planes: dx must have exactly that geometry
  check(dx.dim(2) == g.h && dx.dim(3) == g.w && dy.dim(2) == g.oh && dy.dim(3) == g.ow &&
            dx.dim(0) * dx.dim(1) == g.planes,
        "max_pool2d_backward: d_input shape ", dx.shape().str(), " and d_output shape ", dy.shape().str(),
        " do not match the saved forward (", g.planes, " planes of ", g.h, " x ", g.w, " pooled to ", g.oh, " x ",
        g.ow, ")");
}

template <class D>
void adaptive_avg_pool2d_check(const Tensor<D>& x, std::int64_t out_h, std::int64_t out_w) {
  check(x.rank() == 4 && x.dim(2) >= 1 && x.dim(3) >= 1,
        "adaptive_avg_pool2d: input must be [N, C, H, W] with H, W >= 1, got shape ", x.shape().str());
  check(out_h >= 1 && out_w >= 1, "adaptive_avg_pool2d: output size (", out_h, ", ", out_w, ") must be >= 1");
}

template <class D>
void adaptive_avg_pool2d_backward_check(const Tensor<D>& dy, const Tensor<D>& dx) {
  check(dx.rank() == 4 && dy.rank() == 4 && dy.dim(0) == dx.dim(0) && dy.dim(1) == dx.dim(1) && dy.dim(2) >= 1 &&
            dy.dim(3) >= 1,
        "adaptive_avg_pool2d_backward: d_output shape ", dy.shape().str(), " does not match d_input shape ",
        dx.shape().str());
}
}  // namespace detail

// requires: x [N, C, H, W]; kernel >= 1, stride >= 1 (0 = kernel), 0 <= padding <= kernel / 2.
// ensures:  returns y [N, C, Ho, Wo], Ho = (H + 2 pad_h - kernel_h) / stride_h + 1 (floor), Wo likewise;
//           y = the max over each window, padding counting as -inf; saved->argmax (if saved) holds where it
//           was: the first maximum in row-major scan order of the window; a NaN wins (the last NaN if several),
//           which is torch's CPU rule.
inline Tensor<Cpu> max_pool2d(const Tensor<Cpu>& x, const Pool2dOptions& opt, MaxPoolSaved* saved) {
  const auto g = detail::pool_geom(x, opt, "max_pool2d");
  auto y = Tensor<Cpu>::empty(detail::pool_out_shape(x, g.oh, g.ow));
  check(g.h * g.w <= std::numeric_limits<std::int32_t>::max(), "max_pool2d: plane of input shape ", x.shape().str(),
        " too large for 32-bit argmax indices");
  if (saved) {
    saved->argmax.assign(static_cast<std::size_t>(y.numel()), 0);
    saved->geom = g;
  }
  const float* xp = x.data();
  float* yp = y.data();
  cpu::parallel_for(g.planes, [&](std::int64_t pl) {
    const float* in = xp + pl * g.h * g.w;
    for (std::int64_t oy = 0; oy < g.oh; ++oy) {
      const std::int64_t y0 = std::max<std::int64_t>(oy * g.sh - g.ph, 0);
      const std::int64_t y1 = std::min(oy * g.sh - g.ph + g.kh, g.h);
      for (std::int64_t ox = 0; ox < g.ow; ++ox) {
        const std::int64_t x0 = std::max<std::int64_t>(ox * g.sw - g.pw, 0);
        const std::int64_t x1 = std::min(ox * g.sw - g.pw + g.kw, g.w);
        float best = -std::numeric_limits<float>::infinity();
        std::int64_t arg = y0 * g.w + x0;
        for (std::int64_t iy = y0; iy < y1; ++iy)
          for (std::int64_t ix = x0; ix < x1; ++ix) {
            const float v = in[iy * g.w + ix];
            if (fn::MaxPoolPick{}(v, best)) {
              best = v;
              arg = iy * g.w + ix;
            }
          }
        const std::int64_t o = (pl * g.oh + oy) * g.ow + ox;
        yp[o] = best;
        if (saved) saved->argmax[static_cast<std::size_t>(o)] = static_cast<std::int32_t>(arg);
      }
    }
  }, 4);
  return y;
}

// backward of <y, dy> for y = max_pool2d(x, opt, &saved): dx [N, C, H, W] += dy routed to each window's argmax
// (overlapping windows that share an argmax add up).
inline void max_pool2d_backward(const Tensor<Cpu>& dy, const MaxPoolSaved& saved, Tensor<Cpu>& dx) {
  detail::max_pool2d_backward_check(dy, static_cast<std::int64_t>(saved.argmax.size()), saved.geom, dx);
  const std::int64_t planes = dx.dim(0) * dx.dim(1), in = dx.dim(2) * dx.dim(3), out = dy.dim(2) * dy.dim(3);
  const float* dyp = dy.data();
  float* dxp = dx.data();
  cpu::parallel_for(planes, [&](std::int64_t pl) {
    for (std::int64_t o = 0; o < out; ++o) dxp[pl * in + saved.argmax[static_cast<std::size_t>(pl * out + o)]] += dyp[pl * out + o];
  }, 16);
}

// requires: as max_pool2d.
// ensures:  returns y [N, C, Ho, Wo] (sizes as max_pool2d) = the window sum divided by the window size
//           counting the padding (count_include_pad = True, torch's default).
inline Tensor<Cpu> avg_pool2d(const Tensor<Cpu>& x, const Pool2dOptions& opt) {
  const auto g = detail::pool_geom(x, opt, "avg_pool2d");
  auto y = Tensor<Cpu>::empty(detail::pool_out_shape(x, g.oh, g.ow));
  const float* xp = x.data();
  float* yp = y.data();
  cpu::parallel_for(g.planes, [&](std::int64_t pl) {
    const float* in = xp + pl * g.h * g.w;
    for (std::int64_t oy = 0; oy < g.oh; ++oy) {
      const std::int64_t ys = oy * g.sh - g.ph, ye = std::min(ys + g.kh, g.h + g.ph);
      const std::int64_t y0 = std::max<std::int64_t>(ys, 0), y1 = std::min(ye, g.h);
      for (std::int64_t ox = 0; ox < g.ow; ++ox) {
        const std::int64_t xs = ox * g.sw - g.pw, xe = std::min(xs + g.kw, g.w + g.pw);
        const std::int64_t x0 = std::max<std::int64_t>(xs, 0), x1 = std::min(xe, g.w);
        float s = 0.0f;
        for (std::int64_t iy = y0; iy < y1; ++iy)
          for (std::int64_t ix = x0; ix < x1; ++ix) s += in[iy * g.w + ix];
        yp[(pl * g.oh + oy) * g.ow + ox] = s / static_cast<float>((ye - ys) * (xe - xs));
      }
    }
  }, 4);
  return y;
}

// backward of <y, dy> for y = avg_pool2d(x, opt): dx [N, C, H, W] += dy / window size over each window's
// inside-the-image part.
inline void avg_pool2d_backward(const Tensor<Cpu>& dy, const Pool2dOptions& opt, Tensor<Cpu>& dx) {
  const auto g = detail::pool_geom(dx, opt, "avg_pool2d_backward");
  check_shape(dy, detail::pool_out_shape(dx, g.oh, g.ow), "avg_pool2d_backward: d_output");
  const float* dyp = dy.data();
  float* dxp = dx.data();
  cpu::parallel_for(g.planes, [&](std::int64_t pl) {
    float* d = dxp + pl * g.h * g.w;
    for (std::int64_t oy = 0; oy < g.oh; ++oy) {
      const std::int64_t ys = oy * g.sh - g.ph, ye = std::min(ys + g.kh, g.h + g.ph);
      const std::int64_t y0 = std::max<std::int64_t>(ys, 0), y1 = std::min(ye, g.h);
      for (std::int64_t ox = 0; ox < g.ow; ++ox) {
        const std::int64_t xs = ox * g.sw - g.pw, xe = std::min(xs + g.kw, g.w + g.pw);
        const std::int64_t x0 = std::max<std::int64_t>(xs, 0), x1 = std::min(xe, g.w);
        const float v = dyp[(pl * g.oh + oy) * g.ow + ox] / static_cast<float>((ye - ys) * (xe - xs));
        for (std::int64_t iy = y0; iy < y1; ++iy)
          for (std::int64_t ix = x0; ix < x1; ++ix) d[iy * g.w + ix] += v;
      }
    }
  }, 4);
}

namespace detail {
// torch's adaptive pooling bins: output i of o covers input [floor(i*n/o), ceil((i+1)*n/o)).
MINT_HOST_DEVICE inline std::int64_t adaptive_start(std::int64_t i, std::int64_t n, std::int64_t o) { return (i * n) / o; }
MINT_HOST_DEVICE inline std::int64_t adaptive_end(std::int64_t i, std::int64_t n, std::int64_t o) {
  return ((i + 1) * n + o - 1) / o;
}
}  // namespace detail

// requires: x [N, C, H, W] with H, W >= 1; out_h, out_w >= 1.
// ensures:  returns y [N, C, out_h, out_w], y[.., i, j] = the mean of x over rows [floor(i H / out_h),
//           ceil((i+1) H / out_h)) and the columns likewise (torch.nn.functional.adaptive_avg_pool2d).
inline Tensor<Cpu> adaptive_avg_pool2d(const Tensor<Cpu>& x, std::int64_t out_h, std::int64_t out_w) {
  detail::adaptive_avg_pool2d_check(x, out_h, out_w);
  const std::int64_t planes = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
  auto y = Tensor<Cpu>::empty(detail::pool_out_shape(x, out_h, out_w));
  const float* xp = x.data();
  float* yp = y.data();
  cpu::parallel_for(planes, [&](std::int64_t pl) {
    const float* in = xp + pl * h * w;
    for (std::int64_t i = 0; i < out_h; ++i) {
      const std::int64_t y0 = detail::adaptive_start(i, h, out_h), y1 = detail::adaptive_end(i, h, out_h);
      for (std::int64_t j = 0; j < out_w; ++j) {
        const std::int64_t x0 = detail::adaptive_start(j, w, out_w), x1 = detail::adaptive_end(j, w, out_w);
        double s = 0.0;
        for (std::int64_t iy = y0; iy < y1; ++iy)
          for (std::int64_t ix = x0; ix < x1; ++ix) s += in[iy * w + ix];
        yp[(pl * out_h + i) * out_w + j] = static_cast<float>(s / static_cast<double>((y1 - y0) * (x1 - x0)));
      }
    }
  }, 4);
  return y;
}

// backward of <y, dy> for y = adaptive_avg_pool2d(x, out_h, out_w), dy [N, C, out_h, out_w]:
// dx [N, C, H, W] += dy / bin size over each bin.
inline void adaptive_avg_pool2d_backward(const Tensor<Cpu>& dy, Tensor<Cpu>& dx) {
  detail::adaptive_avg_pool2d_backward_check(dy, dx);
  const std::int64_t planes = dx.dim(0) * dx.dim(1), h = dx.dim(2), w = dx.dim(3), oh = dy.dim(2), ow = dy.dim(3);
  const float* dyp = dy.data();
  float* dxp = dx.data();
  cpu::parallel_for(planes, [&](std::int64_t pl) {
    float* d = dxp + pl * h * w;
    for (std::int64_t i = 0; i < oh; ++i) {
      const std::int64_t y0 = detail::adaptive_start(i, h, oh), y1 = detail::adaptive_end(i, h, oh);
      for (std::int64_t j = 0; j < ow; ++j) {
        const std::int64_t x0 = detail::adaptive_start(j, w, ow), x1 = detail::adaptive_end(j, w, ow);
        const float v = dyp[(pl * oh + i) * ow + j] / static_cast<float>((y1 - y0) * (x1 - x0));
        for (std::int64_t iy = y0; iy < y1; ++iy)
          for (std::int64_t ix = x0; ix < x1; ++ix) d[iy * w + ix] += v;
      }
    }
  }, 4);
}

// Global average pooling: x [N, C, H, W] -> [N, C, 1, 1] (adaptive_avg_pool2d to 1 x 1).
inline Tensor<Cpu> global_avg_pool2d(const Tensor<Cpu>& x) { return adaptive_avg_pool2d(x, 1, 1); }

// backward of global_avg_pool2d: dx [N, C, H, W] += dy[n, c] / (H W).
inline void global_avg_pool2d_backward(const Tensor<Cpu>& dy, Tensor<Cpu>& dx) { adaptive_avg_pool2d_backward(dy, dx); }

}  // namespace mint::nn
