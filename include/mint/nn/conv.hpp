// mint/nn/conv.hpp -- 2-D convolution and transposed convolution (NCHW, torch.nn.functional semantics,
// groups = 1, dilation = 1), as im2col + GEMM.
//
// conv2d, per image:            y_n [Cout, Ho*Wo] = W [Cout, Cin*kh*kw] . im2col(x_n) [Cin*kh*kw, Ho*Wo]
// conv_transpose2d, per image:  y_n = col2im(W^T [Cout*kh*kw, Cin] . x_n [Cin, H*W])
// The transposed convolution is the adjoint of a convolution (its forward is conv2d's input gradient), so the
// two share im2col / col2im and swap roles in backward. Images run in parallel (one im2col buffer per thread,
// Eigen single-threaded inside) when the batch has at least as many images as threads; otherwise images run
// one after another and each GEMM is parallel itself.
#pragma once

#include <algorithm>
#include <cstdint>

#include "mint/backend/cpu/gemm.hpp"
#include "mint/backend/cpu/parallel.hpp"
#include "mint/core/tensor.hpp"

namespace mint::nn {

// Stride and zero padding per spatial axis; output_padding only applies to conv_transpose2d (torch's extra
// rows/columns at the bottom/right of the output, which must be smaller than the stride).
struct Conv2dOptions {
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t pad_h = 0, pad_w = 0;
  std::int64_t out_pad_h = 0, out_pad_w = 0;

  // The same stride / padding / output padding on both axes.
  static Conv2dOptions square(std::int64_t stride, std::int64_t padding, std::int64_t output_padding = 0) {
    return {stride, stride, padding, padding, output_padding, output_padding};
  }
};

namespace detail {

inline int thread_index() {
#if defined(_OPENMP)
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// A convolution's geometry: an image c x h x w, a kernel kh x kw, stride, padding, and the output oh x ow.
struct ConvGeom {
  std::int64_t c, h, w, kh, kw, sh, sw, ph, pw, oh, ow;
  [[nodiscard]] MINT_HOST_DEVICE std::int64_t rows() const { return c * kh * kw; }  // im2col rows
  [[nodiscard]] MINT_HOST_DEVICE std::int64_t cols() const { return oh * ow; }      // im2col columns
};

// The output columns ox whose input column ox*s - p + j lies inside [0, w): [lo, hi).
inline void valid_range(std::int64_t w, std::int64_t s, std::int64_t p, std::int64_t j, std::int64_t ow,
                        std::int64_t& lo, std::int64_t& hi) {
  const std::int64_t a = p - j;  // ox*s >= a
  lo = a <= 0 ? 0 : std::min(ow, (a + s - 1) / s);
  const std::int64_t t = w - 1 + p - j;  // ox*s <= t
  hi = t < 0 ? 0 : std::min(ow, t / s + 1);
  hi = std::max(hi, lo);
}

// col[(ci*kh + i)*kw + j, oy*ow + ox] = img[ci, oy*sh - ph + i, ox*sw - pw + j], 0 in the padding.
// Channels run in parallel when called outside a parallel region (a batch smaller than the thread count).
inline void im2col(const float* img, const ConvGeom& g, float* col) {
  cpu::parallel_for(g.c, [&](std::int64_t ci) {
    for (std::int64_t i = 0; i < g.kh; ++i)
      for (std::int64_t j = 0; j < g.kw; ++j) {
        float* row = col + ((ci * g.kh + i) * g.kw + j) * g.oh * g.ow;
        std::int64_t lo, hi;
        valid_range(g.w, g.sw, g.pw, j, g.ow, lo, hi);
        for (std::int64_t oy = 0; oy < g.oh; ++oy) {
          float* r = row + oy * g.ow;
          const std::int64_t iy = oy * g.sh - g.ph + i;
          if (iy < 0 || iy >= g.h) {
            std::fill(r, r + g.ow, 0.0f);
            continue;
          }
          const float* src = img + (ci * g.h + iy) * g.w;
          const std::int64_t off = j - g.pw;  // input column of ox = ox * sw + off, inside [0, w) for lo <= ox < hi
          std::fill(r, r + lo, 0.0f);
          if (g.sw == 1 && hi > lo)
            std::copy(src + lo + off, src + hi + off, r + lo);
          else if (g.sw != 1)
            for (std::int64_t ox = lo; ox < hi; ++ox) r[ox] = src[ox * g.sw + off];
          std::fill(r + hi, r + g.ow, 0.0f);
        }
      }
  }, 4);
}

// The adjoint of im2col: img[ci, iy, ix] += every col entry that im2col read from there.
// Channels write disjoint planes, so they run in parallel like im2col's.
inline void col2im_add(const float* col, const ConvGeom& g, float* img) {
  cpu::parallel_for(g.c, [&](std::int64_t ci) {
    for (std::int64_t i = 0; i < g.kh; ++i)
      for (std::int64_t j = 0; j < g.kw; ++j) {
        const float* row = col + ((ci * g.kh + i) * g.kw + j) * g.oh * g.ow;
        std::int64_t lo, hi;
        valid_range(g.w, g.sw, g.pw, j, g.ow, lo, hi);
        for (std::int64_t oy = 0; oy < g.oh; ++oy) {
          const std::int64_t iy = oy * g.sh - g.ph + i;
          if (iy < 0 || iy >= g.h) continue;
          const float* r = row + oy * g.ow;
          float* dst = img + (ci * g.h + iy) * g.w;
          const std::int64_t off = j - g.pw;
          for (std::int64_t ox = lo; ox < hi; ++ox) dst[ox * g.sw + off] += r[ox];
        }
      }
  }, 4);
}

// Calls body(i, scratch, wpart) for every image i in [0, n). `scratch` holds scratch_size floats, private to
// the calling thread. When wgrad != nullptr, body adds its weight gradient (wgrad_size floats) into wpart:
// per-thread zeroed partial sums, added to wgrad at the end, when images run in parallel; wgrad itself when
// they run serially (then each GEMM is parallel). wpart is nullptr when wgrad is.
template <class F>
void for_each_image(std::int64_t n, std::int64_t scratch_size, float* wgrad, std::int64_t wgrad_size, F&& body) {
  const int nt = cpu::num_threads();
  if (nt <= 1 || n < nt) {
    auto scratch = Tensor<Cpu>::empty(Shape{scratch_size});
    for (std::int64_t i = 0; i < n; ++i) body(i, scratch.data(), wgrad);
    return;
  }
  auto scratch = Tensor<Cpu>::empty(Shape{nt * scratch_size});
  auto parts = wgrad ? Tensor<Cpu>::zeros(Shape{nt * wgrad_size}) : Tensor<Cpu>();
  cpu::parallel_for(n, [&](std::int64_t i) {
    const int t = thread_index();
    body(i, scratch.data() + t * scratch_size, wgrad ? parts.data() + t * wgrad_size : nullptr);
  });
  if (wgrad) {
    Eigen::Map<Eigen::ArrayXf> acc(wgrad, wgrad_size);
    for (int t = 0; t < nt; ++t) acc += Eigen::Map<const Eigen::ArrayXf>(parts.data() + t * wgrad_size, wgrad_size);
  }
}

// y[n, c, :] = b[c] for every image and channel (the bias, before a GEMM or col2im adds the rest).
inline void fill_bias(float* y, const float* b, std::int64_t n, std::int64_t c, std::int64_t hw) {
  cpu::parallel_for(n * c, [&](std::int64_t nc) { std::fill(y + nc * hw, y + (nc + 1) * hw, b[nc % c]); }, 64);
}

// db[c] += sum over images and positions of dy[n, c, :].
inline void add_bias_grad(const Tensor<Cpu>& dy, Tensor<Cpu>& db) {
  const std::int64_t n = dy.dim(0), c = dy.dim(1), hw = dy.dim(2) * dy.dim(3);
  const float* p = dy.data();
  cpu::parallel_for(c, [&](std::int64_t ch) {
    double s = 0.0;
    for (std::int64_t i = 0; i < n; ++i)
      s += Eigen::Map<const Eigen::ArrayXf>(p + (i * c + ch) * hw, hw).cast<double>().sum();
    db[ch] += static_cast<float>(s);
  }, 8);
}

// Geometry of conv2d(x, w) with x [N, Cin, H, W], w [Cout, Cin, kh, kw]: checks the shapes and options.
// Templates on the device: the CUDA ops (mint/backend/cuda/conv.cuh) run the same checks (shapes are host data).
template <class D>
ConvGeom conv2d_geom(const Tensor<D>& x, const Tensor<D>& w, const Conv2dOptions& o, const char* op) {
  check(x.rank() == 4, op, ": input must be [N, C, H, W], got shape ", x.shape().str());
  check(w.rank() == 4, op, ": weight must be [Cout, Cin, kh, kw], got shape ", w.shape().str());
  check(w.dim(1) == x.dim(1), op, ": input shape ", x.shape().str(), " has ", x.dim(1),
        " channels but weight shape ", w.shape().str(), " expects ", w.dim(1));
  check(o.stride_h >= 1 && o.stride_w >= 1 && o.pad_h >= 0 && o.pad_w >= 0, op, ": stride (", o.stride_h, ", ",
        o.stride_w, ") must be >= 1 and padding (", o.pad_h, ", ", o.pad_w, ") >= 0");
  ConvGeom g{x.dim(1), x.dim(2), x.dim(3), w.dim(2), w.dim(3), o.stride_h, o.stride_w, o.pad_h, o.pad_w, 0, 0};
  check(g.h + 2 * g.ph >= g.kh && g.w + 2 * g.pw >= g.kw && g.kh >= 1 && g.kw >= 1, op, ": kernel of weight shape ",
        w.shape().str(), " is larger than the padded input (input shape ", x.shape().str(), ", padding (", g.ph,
        ", ", g.pw, "))");
  g.oh = (g.h + 2 * g.ph - g.kh) / g.sh + 1;
  g.ow = (g.w + 2 * g.pw - g.kw) / g.sw + 1;
  return g;
}

// Geometry of conv_transpose2d(x, w) with x [N, Cin, H, W], w [Cin, Cout, kh, kw], as the convolution it is
// the adjoint of: image = the output [Cout, Ho, Wo], "output" = the input's H x W.
template <class D>
ConvGeom conv_transpose2d_geom(const Tensor<D>& x, const Tensor<D>& w, const Conv2dOptions& o, const char* op) {
  check(x.rank() == 4, op, ": input must be [N, C, H, W], got shape ", x.shape().str());
  check(w.rank() == 4, op, ": weight must be [Cin, Cout, kh, kw], got shape ", w.shape().str());
  check(w.dim(0) == x.dim(1), op, ": input shape ", x.shape().str(), " has ", x.dim(1),
        " channels but weight shape ", w.shape().str(), " expects ", w.dim(0));
  check(o.stride_h >= 1 && o.stride_w >= 1 && o.pad_h >= 0 && o.pad_w >= 0, op, ": stride (", o.stride_h, ", ",
        o.stride_w, ") must be >= 1 and padding (", o.pad_h, ", ", o.pad_w, ") >= 0");
  check(o.out_pad_h >= 0 && o.out_pad_w >= 0 && o.out_pad_h < o.stride_h && o.out_pad_w < o.stride_w, op,
        ": output_padding (", o.out_pad_h, ", ", o.out_pad_w, ") must be >= 0 and smaller than the stride (",
        o.stride_h, ", ", o.stride_w, ")");
  const std::int64_t ho = (x.dim(2) - 1) * o.stride_h - 2 * o.pad_h + w.dim(2) + o.out_pad_h;
  const std::int64_t wo = (x.dim(3) - 1) * o.stride_w - 2 * o.pad_w + w.dim(3) + o.out_pad_w;
  check(ho >= 1 && wo >= 1 && w.dim(2) >= 1 && w.dim(3) >= 1, op, ": input shape ", x.shape().str(),
        " and weight shape ", w.shape().str(), " give an empty output (", ho, " x ", wo, ")");
  return {w.dim(1), ho, wo, w.dim(2), w.dim(3), o.stride_h, o.stride_w, o.pad_h, o.pad_w, x.dim(2), x.dim(3)};
}

// The checks of conv2d (shapes, options, bias [Cout]); returns the geometry.
template <class D>
ConvGeom conv2d_check(const Tensor<D>& x, const Tensor<D>& w, const Tensor<D>* b, const Conv2dOptions& opt) {
  const auto g = conv2d_geom(x, w, opt, "conv2d");
  if (b) check_shape(*b, Shape{w.dim(0)}, "conv2d: bias");
  return g;
}

// The checks of conv2d_backward (the forward's, then d_output and every gradient given); returns the geometry.
template <class D>
ConvGeom conv2d_backward_check(const Tensor<D>& dy, const Tensor<D>& x, const Tensor<D>& w, const Conv2dOptions& opt,
                               const Tensor<D>* dx, const Tensor<D>* dw, const Tensor<D>* db) {
  const auto g = conv2d_geom(x, w, opt, "conv2d_backward");
  check_shape(dy, Shape{x.dim(0), w.dim(0), g.oh, g.ow}, "conv2d_backward: d_output");
  if (dx) check_shape(*dx, x.shape(), "conv2d_backward: d_input");
  if (dw) check_shape(*dw, w.shape(), "conv2d_backward: d_weight");
  if (db) check_shape(*db, Shape{w.dim(0)}, "conv2d_backward: d_bias");
  return g;
}

// The checks of conv_transpose2d (shapes, options, bias [Cout]); returns the geometry.
template <class D>
ConvGeom conv_transpose2d_check(const Tensor<D>& x, const Tensor<D>& w, const Tensor<D>* b,
                                const Conv2dOptions& opt) {
  const auto g = conv_transpose2d_geom(x, w, opt, "conv_transpose2d");
  if (b) check_shape(*b, Shape{g.c}, "conv_transpose2d: bias");
  return g;
}

// The checks of conv_transpose2d_backward; returns the geometry.
template <class D>
ConvGeom conv_transpose2d_backward_check(const Tensor<D>& dy, const Tensor<D>& x, const Tensor<D>& w,
                                         const Conv2dOptions& opt, const Tensor<D>* dx, const Tensor<D>* dw,
                                         const Tensor<D>* db) {
  const auto g = conv_transpose2d_geom(x, w, opt, "conv_transpose2d_backward");
  check_shape(dy, Shape{x.dim(0), g.c, g.h, g.w}, "conv_transpose2d_backward: d_output");
  if (dx) check_shape(*dx, x.shape(), "conv_transpose2d_backward: d_input");
  if (dw) check_shape(*dw, w.shape(), "conv_transpose2d_backward: d_weight");
  if (db) check_shape(*db, Shape{g.c}, "conv_transpose2d_backward: d_bias");
  return g;
}

}  // namespace detail

// requires: x [N, Cin, H, W], w [Cout, Cin, kh, kw], b [Cout] or nullptr; H + 2 pad_h >= kh (same for W).
// ensures:  returns y [N, Cout, Ho, Wo], Ho = (H + 2 pad_h - kh) / stride_h + 1 (floor), Wo likewise;
//           y[n, o, p, q] = b[o] + sum_{c,i,j} w[o, c, i, j] x[n, c, p*stride_h - pad_h + i, q*stride_w - pad_w + j]
//           with x = 0 outside the image (torch.nn.functional.conv2d, groups = 1, dilation = 1).
inline Tensor<Cpu> conv2d(const Tensor<Cpu>& x, const Tensor<Cpu>& w, const Tensor<Cpu>* b,
                          const Conv2dOptions& opt = {}) {
  const auto g = detail::conv2d_check(x, w, b, opt);
  const std::int64_t n = x.dim(0), cout = w.dim(0), k = g.rows(), hw = g.cols();
  auto y = Tensor<Cpu>::empty(Shape{n, cout, g.oh, g.ow});
  if (b) detail::fill_bias(y.data(), b->data(), n, cout, hw);
  const float* xp = x.data();
  detail::for_each_image(n, k * hw, nullptr, 0, [&](std::int64_t i, float* col, float*) {
    detail::im2col(xp + i * g.c * g.h * g.w, g, col);
    cpu::gemm(false, false, cout, hw, k, 1.0f, w.data(), k, col, hw, b ? 1.0f : 0.0f, y.data() + i * cout * hw, hw);
  });
  return y;
}

// backward of <y, dy> for y = conv2d(x, w, b, opt), dy [N, Cout, Ho, Wo]:
//   dx [N, Cin, H, W] += col2im(W^T dy_n),  dw [Cout, Cin, kh, kw] += sum_n dy_n im2col(x_n)^T,
//   db [Cout] += sum of dy over images and positions.
// A nullptr gradient is not computed (InputOnly passes nullptr for dw and db: no weight-gradient GEMM runs).
inline void conv2d_backward(const Tensor<Cpu>& dy, const Tensor<Cpu>& x, const Tensor<Cpu>& w,
                            const Conv2dOptions& opt, Tensor<Cpu>* dx, Tensor<Cpu>* dw, Tensor<Cpu>* db) {
  const auto g = detail::conv2d_backward_check(dy, x, w, opt, dx, dw, db);
  const std::int64_t n = x.dim(0), cout = w.dim(0), k = g.rows(), hw = g.cols();
  if (db) detail::add_bias_grad(dy, *db);
  if (!dx && !dw) return;
  const float *xp = x.data(), *dyp = dy.data();
  detail::for_each_image(n, k * hw, dw ? dw->data() : nullptr, w.numel(), [&](std::int64_t i, float* col, float* dwp) {
    const float* dyi = dyp + i * cout * hw;
    if (dwp) {
      detail::im2col(xp + i * g.c * g.h * g.w, g, col);
      cpu::gemm(false, true, cout, k, hw, 1.0f, dyi, hw, col, hw, 1.0f, dwp, k);
    }
    if (dx) {
      cpu::gemm(true, false, k, hw, cout, 1.0f, w.data(), k, dyi, hw, 0.0f, col, hw);
      detail::col2im_add(col, g, dx->data() + i * g.c * g.h * g.w);
    }
  });
}

// requires: x [N, Cin, H, W], w [Cin, Cout, kh, kw] (torch's ConvTranspose2d layout), b [Cout] or nullptr,
//           0 <= out_pad < stride on each axis.
// ensures:  returns y [N, Cout, Ho, Wo], Ho = (H - 1) stride_h - 2 pad_h + kh + out_pad_h, Wo likewise;
//           y[n, o, p*stride_h - pad_h + i, q*stride_w - pad_w + j] += x[n, c, p, q] w[c, o, i, j] for every
//           (c, p, q, i, j) that lands inside y, plus b[o] (torch.nn.functional.conv_transpose2d, groups = 1).
inline Tensor<Cpu> conv_transpose2d(const Tensor<Cpu>& x, const Tensor<Cpu>& w, const Tensor<Cpu>* b,
                                    const Conv2dOptions& opt = {}) {
  const auto g = detail::conv_transpose2d_check(x, w, b, opt);
  const std::int64_t n = x.dim(0), cin = x.dim(1), k = g.rows(), hw = g.cols(), out_hw = g.h * g.w;
  auto y = Tensor<Cpu>::empty(Shape{n, g.c, g.h, g.w});
  if (b) detail::fill_bias(y.data(), b->data(), n, g.c, out_hw);
  else y.fill(0.0f);
  const float* xp = x.data();
  detail::for_each_image(n, k * hw, nullptr, 0, [&](std::int64_t i, float* col, float*) {
    cpu::gemm(true, false, k, hw, cin, 1.0f, w.data(), k, xp + i * cin * hw, hw, 0.0f, col, hw);
    detail::col2im_add(col, g, y.data() + i * g.c * out_hw);
  });
  return y;
}

// backward of <y, dy> for y = conv_transpose2d(x, w, b, opt), dy [N, Cout, Ho, Wo]:
//   dx [N, Cin, H, W] += W im2col(dy_n),  dw [Cin, Cout, kh, kw] += sum_n x_n im2col(dy_n)^T,
//   db [Cout] += sum of dy over images and positions.   nullptr gradients are not computed.
inline void conv_transpose2d_backward(const Tensor<Cpu>& dy, const Tensor<Cpu>& x, const Tensor<Cpu>& w,
                                      const Conv2dOptions& opt, Tensor<Cpu>* dx, Tensor<Cpu>* dw, Tensor<Cpu>* db) {
  const auto g = detail::conv_transpose2d_backward_check(dy, x, w, opt, dx, dw, db);
  const std::int64_t n = x.dim(0), cin = x.dim(1), k = g.rows(), hw = g.cols(), out_hw = g.h * g.w;
  if (db) detail::add_bias_grad(dy, *db);
  if (!dx && !dw) return;
  const float *xp = x.data(), *dyp = dy.data();
  detail::for_each_image(n, k * hw, dw ? dw->data() : nullptr, w.numel(), [&](std::int64_t i, float* col, float* dwp) {
    detail::im2col(dyp + i * g.c * out_hw, g, col);
    if (dx) cpu::gemm(false, false, cin, hw, k, 1.0f, w.data(), k, col, hw, 1.0f, dx->data() + i * cin * hw, hw);
    if (dwp) cpu::gemm(false, true, cin, k, hw, 1.0f, xp + i * cin * hw, hw, col, hw, 1.0f, dwp, k);
  });
}

}  // namespace mint::nn
