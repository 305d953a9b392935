// mint/backend/cuda/conv.cuh -- conv2d and conv_transpose2d on Tensor<Cuda> (contracts, argument checks and the
// geometry: mint/nn/conv.hpp), as the CPU's im2col + GEMM with cuBLAS.
//
// Images run in chunks: im2col of a chunk of images into one column buffer (one thread per column entry), then
// one strided-batched cuBLAS GEMM over the chunk with the weight shared (stride 0). col2im gathers: one thread
// per image element sums the column entries that im2col read from it, in the CPU's (kernel row, kernel column)
// order onto the value already there, so no atomics and the same summation order as the CPU's col2im_add. The
// weight gradient sums over images: one GEMM per image accumulating into dw (beta = 1), in image order.
#pragma once

#include <algorithm>

#include "mint/backend/cuda/detail/launch.cuh"
#include "mint/backend/cuda/gemm.hpp"
#include "mint/backend/cuda/tensor.hpp"
#include "mint/nn/conv.hpp"

namespace mint::nn {

namespace cuda_detail {

// Column buffers hold at most this many floats (default 32 Mi floats, 128 MiB): the chunk of images im2col'ed
// at once (at least one image). Settable so a test can force several chunks on small inputs.
inline std::int64_t& conv_column_floats() {
  static std::int64_t n = std::int64_t{32} << 20;
  return n;
}

inline std::int64_t conv_chunk(std::int64_t n, std::int64_t per_image) {
  const std::int64_t fit = conv_column_floats() / std::max<std::int64_t>(per_image, 1);
  return std::max<std::int64_t>(1, std::min(n, fit));
}

// col[i][(ci*kh + ki)*kw + kj][oy*ow + ox] = img[i][ci][oy*sh - ph + ki][ox*sw - pw + kj] (0 in the padding) for
// images i in [0, count); img points at the first image of the chunk.
inline void im2col(const float* img, const detail::ConvGeom& g, std::int64_t count, float* col) {
  const std::int64_t rows = g.rows(), cols = g.cols(), per = rows * cols, plane = g.h * g.w;
  cuda::detail::for_each(
      count * per,
      [=] __device__(std::int64_t t) {
        const std::int64_t i = t / per, r = (t % per) / cols, p = t % cols;
        const std::int64_t ci = r / (g.kh * g.kw), ki = (r / g.kw) % g.kh, kj = r % g.kw;
        const std::int64_t iy = (p / g.ow) * g.sh - g.ph + ki, ix = (p % g.ow) * g.sw - g.pw + kj;
        col[t] = iy >= 0 && iy < g.h && ix >= 0 && ix < g.w ? img[(i * g.c + ci) * plane + iy * g.w + ix] : 0.0f;
      },
      "conv (im2col)");
}

// The adjoint of im2col: img[i][ci][iy][ix] += every column entry im2col read from there (gathered per element).
inline void col2im_add(const float* col, const detail::ConvGeom& g, std::int64_t count, float* img) {
  const std::int64_t cols = g.cols(), per = g.rows() * cols, plane = g.h * g.w;
  cuda::detail::for_each(
      count * g.c * plane,
      [=] __device__(std::int64_t t) {
        const std::int64_t i = t / (g.c * plane), ci = (t / plane) % g.c, iy = (t % plane) / g.w, ix = t % g.w;
        const float* ci_col = col + i * per + ci * g.kh * g.kw * cols;
        float acc = img[t];
        for (std::int64_t ki = 0; ki < g.kh; ++ki) {
          const std::int64_t ty = iy + g.ph - ki;
          if (ty < 0 || ty % g.sh != 0 || ty / g.sh >= g.oh) continue;
          for (std::int64_t kj = 0; kj < g.kw; ++kj) {
            const std::int64_t tx = ix + g.pw - kj;
            if (tx < 0 || tx % g.sw != 0 || tx / g.sw >= g.ow) continue;
            acc += ci_col[(ki * g.kw + kj) * cols + (ty / g.sh) * g.ow + tx / g.sw];
          }
        }
        img[t] = acc;
      },
      "conv (col2im)");
}

// y[n, c, :] = b[c].
inline void fill_bias(float* y, const float* b, std::int64_t n, std::int64_t c, std::int64_t hw) {
  cuda::detail::for_each(n * c * hw, [=] __device__(std::int64_t t) { y[t] = b[(t / hw) % c]; }, "conv (bias)");
}

// db[c] += the sum of dy[n, c, :] over images and positions: one block per channel, summed in double (as the
// CPU's add_bias_grad).
__global__ inline void bias_grad_kernel(const float* dy, std::int64_t n, std::int64_t c, std::int64_t hw, float* db) {
  using namespace mint::cuda::detail;
  const std::int64_t ch = blockIdx.x;
  double s = 0.0;
  for (std::int64_t t = threadIdx.x; t < n * hw; t += blockDim.x) s += dy[((t / hw) * c + ch) * hw + t % hw];
  s = block_reduce(s, Sum{}, 0.0);
  if (threadIdx.x == 0) db[ch] += static_cast<float>(s);
}

inline void add_bias_grad(const Tensor<Cuda>& dy, Tensor<Cuda>& db, const char* what) {
  const std::int64_t n = dy.dim(0), c = dy.dim(1), hw = dy.dim(2) * dy.dim(3);
  if (c == 0) return;
  bias_grad_kernel<<<static_cast<unsigned>(c), cuda::detail::row_threads(n * hw), 0, cuda::stream()>>>(
      dy.data(), n, c, hw, db.data());
  cuda::detail::check_launch(what);
}

}  // namespace cuda_detail

// requires/ensures: as the CPU conv2d (x [N, Cin, H, W], w [Cout, Cin, kh, kw], b [Cout] or nullptr).
inline Tensor<Cuda> conv2d(const Tensor<Cuda>& x, const Tensor<Cuda>& w, const Tensor<Cuda>* b,
                           const Conv2dOptions& opt = {}) {
  const auto g = detail::conv2d_check(x, w, b, opt);
  const std::int64_t n = x.dim(0), cout = w.dim(0), k = g.rows(), hw = g.cols(), in = g.c * g.h * g.w;
  auto y = Tensor<Cuda>::empty(Shape{n, cout, g.oh, g.ow});
  if (n == 0) return y;
  if (b) cuda_detail::fill_bias(y.data(), b->data(), n, cout, hw);
  const std::int64_t chunk = cuda_detail::conv_chunk(n, k * hw);
  auto col = Tensor<Cuda>::empty(Shape{chunk * k * hw});
  for (std::int64_t i0 = 0; i0 < n; i0 += chunk) {
    const std::int64_t m = std::min(chunk, n - i0);
    cuda_detail::im2col(x.data() + i0 * in, g, m, col.data());
    cuda::gemm_strided_batched(false, false, cout, hw, k, 1.0f, w.data(), k, 0, col.data(), hw, k * hw,
                               b ? 1.0f : 0.0f, y.data() + i0 * cout * hw, hw, cout * hw, m);
  }
  return y;
}

// backward of <y, dy>: as the CPU conv2d_backward (dx, dw, db added to; nullptr is not computed).
inline void conv2d_backward(const Tensor<Cuda>& dy, const Tensor<Cuda>& x, const Tensor<Cuda>& w,
                            const Conv2dOptions& opt, Tensor<Cuda>* dx, Tensor<Cuda>* dw, Tensor<Cuda>* db) {
  const auto g = detail::conv2d_backward_check(dy, x, w, opt, dx, dw, db);
  const std::int64_t n = x.dim(0), cout = w.dim(0), k = g.rows(), hw = g.cols(), in = g.c * g.h * g.w;
  if (db) cuda_detail::add_bias_grad(dy, *db, "conv2d_backward (d_bias)");
  if ((!dx && !dw) || n == 0) return;
  const std::int64_t chunk = cuda_detail::conv_chunk(n, k * hw);
  auto col = Tensor<Cuda>::empty(Shape{chunk * k * hw});
  for (std::int64_t i0 = 0; i0 < n; i0 += chunk) {
    const std::int64_t m = std::min(chunk, n - i0);
    const float* dyi = dy.data() + i0 * cout * hw;
    if (dw) {  // dw += dy_i im2col(x_i)^T, image by image
      cuda_detail::im2col(x.data() + i0 * in, g, m, col.data());
      for (std::int64_t i = 0; i < m; ++i)
        cuda::gemm(false, true, cout, k, hw, 1.0f, dyi + i * cout * hw, hw, col.data() + i * k * hw, hw, 1.0f,
                   dw->data(), k);
    }
    if (dx) {  // dx_i += col2im(W^T dy_i)
      cuda::gemm_strided_batched(true, false, k, hw, cout, 1.0f, w.data(), k, 0, dyi, hw, cout * hw, 0.0f,
                                 col.data(), hw, k * hw, m);
      cuda_detail::col2im_add(col.data(), g, m, dx->data() + i0 * in);
    }
  }
}

// requires/ensures: as the CPU conv_transpose2d (x [N, Cin, H, W], w [Cin, Cout, kh, kw], b [Cout] or nullptr).
inline Tensor<Cuda> conv_transpose2d(const Tensor<Cuda>& x, const Tensor<Cuda>& w, const Tensor<Cuda>* b,
                                     const Conv2dOptions& opt = {}) {
  const auto g = detail::conv_transpose2d_check(x, w, b, opt);
  const std::int64_t n = x.dim(0), cin = x.dim(1), k = g.rows(), hw = g.cols(), out_hw = g.h * g.w;
  auto y = b ? Tensor<Cuda>::empty(Shape{n, g.c, g.h, g.w}) : Tensor<Cuda>::zeros(Shape{n, g.c, g.h, g.w});
  if (n == 0) return y;
  if (b) cuda_detail::fill_bias(y.data(), b->data(), n, g.c, out_hw);
  const std::int64_t chunk = cuda_detail::conv_chunk(n, k * hw);
  auto col = Tensor<Cuda>::empty(Shape{chunk * k * hw});
  for (std::int64_t i0 = 0; i0 < n; i0 += chunk) {
    const std::int64_t m = std::min(chunk, n - i0);
    cuda::gemm_strided_batched(true, false, k, hw, cin, 1.0f, w.data(), k, 0, x.data() + i0 * cin * hw, hw, cin * hw,
                               0.0f, col.data(), hw, k * hw, m);
    cuda_detail::col2im_add(col.data(), g, m, y.data() + i0 * g.c * out_hw);
  }
  return y;
}

// backward of <y, dy>: as the CPU conv_transpose2d_backward (dx, dw, db added to; nullptr is not computed).
inline void conv_transpose2d_backward(const Tensor<Cuda>& dy, const Tensor<Cuda>& x, const Tensor<Cuda>& w,
                                      const Conv2dOptions& opt, Tensor<Cuda>* dx, Tensor<Cuda>* dw, Tensor<Cuda>* db) {
  const auto g = detail::conv_transpose2d_backward_check(dy, x, w, opt, dx, dw, db);
  const std::int64_t n = x.dim(0), cin = x.dim(1), k = g.rows(), hw = g.cols(), out_hw = g.h * g.w;
  if (db) cuda_detail::add_bias_grad(dy, *db, "conv_transpose2d_backward (d_bias)");
  if ((!dx && !dw) || n == 0) return;
  const std::int64_t chunk = cuda_detail::conv_chunk(n, k * hw);
  auto col = Tensor<Cuda>::empty(Shape{chunk * k * hw});
  for (std::int64_t i0 = 0; i0 < n; i0 += chunk) {
    const std::int64_t m = std::min(chunk, n - i0);
    cuda_detail::im2col(dy.data() + i0 * g.c * out_hw, g, m, col.data());
    if (dx)  // dx_i += W im2col(dy_i)
      cuda::gemm_strided_batched(false, false, cin, hw, k, 1.0f, w.data(), k, 0, col.data(), hw, k * hw, 1.0f,
                                 dx->data() + i0 * cin * hw, hw, cin * hw, m);
    if (dw)  // dw += x_i im2col(dy_i)^T, image by image
      for (std::int64_t i = 0; i < m; ++i)
        cuda::gemm(false, true, cin, k, hw, 1.0f, x.data() + (i0 + i) * cin * hw, hw, col.data() + i * k * hw, hw,
                   1.0f, dw->data(), k);
  }
}

}  // namespace mint::nn
