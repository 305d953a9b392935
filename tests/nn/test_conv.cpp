// conv2d and conv_transpose2d: forward against naive loops, the adjoint identity between them, gradients
// against finite differences in both backward modes, serial vs image-parallel paths, shape errors, and
// PyTorch parity (tests/fixtures/cnn_ops.safetensors, written by make_cnn_fixtures.py).
#include "test_util.hpp"

#include <algorithm>
#include <cmath>

#include "mint/autodiff/backward.hpp"
#include "mint/io/safetensors.hpp"
#include "mint/nn/conv.hpp"

using namespace mint;
using testing::uniform;

namespace {

// y[n,o,p,q] = b[o] + sum w[o,c,i,j] x[n,c,p*sh-ph+i, q*sw-pw+j], in double.
Tensor<> naive_conv2d(const Tensor<>& x, const Tensor<>& w, const Tensor<>* b, const nn::Conv2dOptions& o) {
  const auto n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3), co = w.dim(0), kh = w.dim(2), kw = w.dim(3);
  const auto oh = (h + 2 * o.pad_h - kh) / o.stride_h + 1, ow = (wd + 2 * o.pad_w - kw) / o.stride_w + 1;
  auto y = Tensor<>::zeros(Shape{n, co, oh, ow});
  for (std::int64_t in = 0; in < n; ++in)
    for (std::int64_t oc = 0; oc < co; ++oc)
      for (std::int64_t p = 0; p < oh; ++p)
        for (std::int64_t q = 0; q < ow; ++q) {
          double s = b ? (*b)[oc] : 0.0;
          for (std::int64_t ic = 0; ic < c; ++ic)
            for (std::int64_t i = 0; i < kh; ++i)
              for (std::int64_t j = 0; j < kw; ++j) {
                const auto iy = p * o.stride_h - o.pad_h + i, ix = q * o.stride_w - o.pad_w + j;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                s += static_cast<double>(w[((oc * c + ic) * kh + i) * kw + j]) * x[((in * c + ic) * h + iy) * wd + ix];
              }
          y[((in * co + oc) * oh + p) * ow + q] = static_cast<float>(s);
        }
  return y;
}

// Scatter form of the transposed convolution: every x[n,c,p,q] w[c,o,i,j] lands at (p*sh-ph+i, q*sw-pw+j).
Tensor<> naive_conv_transpose2d(const Tensor<>& x, const Tensor<>& w, const Tensor<>* b, const nn::Conv2dOptions& o) {
  const auto n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3), co = w.dim(1), kh = w.dim(2), kw = w.dim(3);
  const auto oh = (h - 1) * o.stride_h - 2 * o.pad_h + kh + o.out_pad_h;
  const auto ow = (wd - 1) * o.stride_w - 2 * o.pad_w + kw + o.out_pad_w;
  std::vector<double> acc(static_cast<std::size_t>(n * co * oh * ow), 0.0);
  for (std::int64_t in = 0; in < n; ++in)
    for (std::int64_t ic = 0; ic < c; ++ic)
      for (std::int64_t p = 0; p < h; ++p)
        for (std::int64_t q = 0; q < wd; ++q)
          for (std::int64_t oc = 0; oc < co; ++oc)
            for (std::int64_t i = 0; i < kh; ++i)
              for (std::int64_t j = 0; j < kw; ++j) {
                const auto oy = p * o.stride_h - o.pad_h + i, ox = q * o.stride_w - o.pad_w + j;
                if (oy < 0 || oy >= oh || ox < 0 || ox >= ow) continue;
                acc[static_cast<std::size_t>(((in * co + oc) * oh + oy) * ow + ox)] +=
                    static_cast<double>(x[((in * c + ic) * h + p) * wd + q]) * w[((ic * co + oc) * kh + i) * kw + j];
              }
  auto y = Tensor<>::empty(Shape{n, co, oh, ow});
  for (std::int64_t k = 0; k < y.numel(); ++k)
    y[k] = static_cast<float>(acc[static_cast<std::size_t>(k)] + (b ? (*b)[(k / (oh * ow)) % co] : 0.0));
  return y;
}

struct ConvCase {
  Shape x, w;
  nn::Conv2dOptions opt;
  bool bias;
};

// Stride 1 and 2, zero and non-zero padding, non-square kernels, strides and paddings, a 1x1 kernel, a kernel
// larger than the stride (overlap) and one smaller (gaps), a batch of 1 and of 3.
const std::vector<ConvCase> kConvCases = {
    {Shape{2, 3, 6, 7}, Shape{4, 3, 3, 3}, nn::Conv2dOptions::square(1, 0), true},
    {Shape{2, 3, 7, 9}, Shape{4, 3, 3, 3}, nn::Conv2dOptions::square(2, 1), true},
    {Shape{1, 2, 8, 5}, Shape{3, 2, 2, 3}, nn::Conv2dOptions{2, 1, 1, 2, 0, 0}, false},
    {Shape{3, 4, 5, 5}, Shape{2, 4, 1, 1}, nn::Conv2dOptions::square(1, 0), true},
    {Shape{2, 2, 9, 8}, Shape{3, 2, 2, 2}, nn::Conv2dOptions::square(3, 1), true},
    {Shape{1, 1, 4, 4}, Shape{2, 1, 5, 5}, nn::Conv2dOptions::square(1, 2), false},
};

// Transposed cases: output_padding 0 and 1, stride 1, 2, 3, non-square options.
struct TCase {
  Shape x, w;
  nn::Conv2dOptions opt;
  bool bias;
};
const std::vector<TCase> kTCases = {
    {Shape{2, 4, 4, 5}, Shape{4, 3, 3, 3}, nn::Conv2dOptions::square(2, 1, 1), true},
    {Shape{2, 3, 3, 3}, Shape{3, 2, 4, 4}, nn::Conv2dOptions::square(2, 1, 0), false},
    {Shape{1, 2, 5, 4}, Shape{2, 3, 3, 2}, nn::Conv2dOptions{1, 2, 1, 0, 0, 1}, true},
    {Shape{2, 2, 3, 4}, Shape{2, 2, 2, 2}, nn::Conv2dOptions::square(3, 0, 2), true},
};

}  // namespace

TEST_CASE("conv2d forward matches a naive loop", "[nn][conv]") {
  int seed = 100;
  for (const auto& c : kConvCases) {
    CAPTURE(c.x.str(), c.w.str(), c.opt.stride_h, c.opt.stride_w, c.opt.pad_h, c.opt.pad_w);
    auto x = uniform(c.x, seed++), w = uniform(c.w, seed++), b = uniform(Shape{c.w[0]}, seed++);
    auto y = nn::conv2d(x, w, c.bias ? &b : nullptr, c.opt);
    MINT_REQUIRE_CLOSE(testing::compare(y, naive_conv2d(x, w, c.bias ? &b : nullptr, c.opt), {1e-5, 1e-5}, "conv2d"));
  }
}

TEST_CASE("conv_transpose2d forward matches a naive scatter loop", "[nn][conv]") {
  int seed = 200;
  for (const auto& c : kTCases) {
    CAPTURE(c.x.str(), c.w.str(), c.opt.stride_h, c.opt.pad_h, c.opt.out_pad_h);
    auto x = uniform(c.x, seed++), w = uniform(c.w, seed++), b = uniform(Shape{c.w[1]}, seed++);
    auto y = nn::conv_transpose2d(x, w, c.bias ? &b : nullptr, c.opt);
    MINT_REQUIRE_CLOSE(testing::compare(y, naive_conv_transpose2d(x, w, c.bias ? &b : nullptr, c.opt), {1e-5, 1e-5},
                                        "conv_transpose2d"));
  }
}

TEST_CASE("conv_transpose2d is the adjoint of conv2d: <conv(x), u> == <x, conv_t(u)>", "[nn][conv]") {
  // Same weight tensor read as [Cout, Cin, k, k] by conv2d and as [Cin', Cout'] = [Cout, Cin] by the transpose.
  auto x = uniform(Shape{2, 3, 9, 8}, 301), w = uniform(Shape{5, 3, 3, 4}, 302);
  const auto opt = nn::Conv2dOptions::square(2, 1);  // 9x8 -> 5x4; back: (5-1)*2-2+3 = 9, (4-1)*2-2+4 = 8
  auto y = nn::conv2d(x, w, nullptr, opt);
  REQUIRE(y.shape() == Shape{2, 5, 5, 4});
  auto u = uniform(y.shape(), 303);
  auto xt = nn::conv_transpose2d(u, w, nullptr, opt);
  REQUIRE(xt.shape() == x.shape());
  REQUIRE(testing::dot(y, u) == Approx(testing::dot(x, xt)).epsilon(1e-5));
}

TEST_CASE("conv2d backward: finite differences, input-only and full", "[nn][conv][gradcheck]") {
  int seed = 400;
  for (const auto& c : kConvCases) {
    CAPTURE(c.x.str(), c.w.str(), c.opt.stride_h, c.opt.pad_h);
    auto x = uniform(c.x, seed++), w = uniform(c.w, seed++), b = uniform(Shape{c.w[0]}, seed++);
    const Tensor<>* bp_ = c.bias ? &b : nullptr;
    auto r = uniform(nn::conv2d(x, w, bp_, c.opt).shape(), seed++);
    auto loss = [&] { return testing::dot(nn::conv2d(x, w, bp_, c.opt), r); };
    for (auto mode : {Backward::InputOnly, Backward::Full}) {
      Param<> wp{w, {}}, bp{b, {}};
      auto dx = Tensor<>::zeros(x.shape());
      nn::conv2d_backward(r, x, w, c.opt, &dx, wp.grad_for(mode), c.bias ? bp.grad_for(mode) : nullptr);
      MINT_REQUIRE_CLOSE(testing::check_gradient(loss, x, dx, "conv2d dx"));
      if (mode == Backward::Full) {
        MINT_REQUIRE_CLOSE(testing::check_gradient(loss, w, wp.grad, "conv2d dW"));
        if (c.bias) MINT_REQUIRE_CLOSE(testing::check_gradient(loss, b, bp.grad, "conv2d db"));
      } else {
        REQUIRE_FALSE(wp.grad.defined());  // no weight gradient exists in input-only mode
        REQUIRE_FALSE(bp.grad.defined());
      }
    }
  }
}

TEST_CASE("conv_transpose2d backward: finite differences, input-only and full", "[nn][conv][gradcheck]") {
  int seed = 500;
  for (const auto& c : kTCases) {
    CAPTURE(c.x.str(), c.w.str(), c.opt.stride_h, c.opt.pad_h, c.opt.out_pad_h);
    auto x = uniform(c.x, seed++), w = uniform(c.w, seed++), b = uniform(Shape{c.w[1]}, seed++);
    const Tensor<>* bp_ = c.bias ? &b : nullptr;
    auto r = uniform(nn::conv_transpose2d(x, w, bp_, c.opt).shape(), seed++);
    auto loss = [&] { return testing::dot(nn::conv_transpose2d(x, w, bp_, c.opt), r); };
    for (auto mode : {Backward::InputOnly, Backward::Full}) {
      Param<> wp{w, {}}, bp{b, {}};
      auto dx = Tensor<>::zeros(x.shape());
      nn::conv_transpose2d_backward(r, x, w, c.opt, &dx, wp.grad_for(mode), c.bias ? bp.grad_for(mode) : nullptr);
      MINT_REQUIRE_CLOSE(testing::check_gradient(loss, x, dx, "conv_transpose2d dx"));
      if (mode == Backward::Full) {
        MINT_REQUIRE_CLOSE(testing::check_gradient(loss, w, wp.grad, "conv_transpose2d dW"));
        if (c.bias) MINT_REQUIRE_CLOSE(testing::check_gradient(loss, b, bp.grad, "conv_transpose2d db"));
      } else {
        REQUIRE_FALSE(wp.grad.defined());
        REQUIRE_FALSE(bp.grad.defined());
      }
    }
  }
}

TEST_CASE("conv backward adds into the gradients it is given", "[nn][conv]") {
  auto x = uniform(Shape{2, 3, 6, 5}, 601), w = uniform(Shape{4, 3, 3, 3}, 602);
  const auto opt = nn::Conv2dOptions::square(2, 1);
  auto dy = uniform(nn::conv2d(x, w, nullptr, opt).shape(), 603);
  auto dx1 = Tensor<>::zeros(x.shape()), dw1 = Tensor<>::zeros(w.shape()), db1 = Tensor<>::zeros(Shape{4});
  nn::conv2d_backward(dy, x, w, opt, &dx1, &dw1, &db1);
  auto dx2 = Tensor<>::full(x.shape(), 1.f), dw2 = Tensor<>::full(w.shape(), 1.f), db2 = Tensor<>::full(Shape{4}, 1.f);
  nn::conv2d_backward(dy, x, w, opt, &dx2, &dw2, &db2);
  for (auto* t : {&dx1, &dw1, &db1})
    for (std::int64_t i = 0; i < t->numel(); ++i) (*t)[i] += 1.f;
  MINT_REQUIRE_CLOSE(testing::compare(dx2, dx1, {1e-6, 1e-6}, "conv2d dx accumulates"));
  MINT_REQUIRE_CLOSE(testing::compare(dw2, dw1, {1e-6, 1e-6}, "conv2d dW accumulates"));
  MINT_REQUIRE_CLOSE(testing::compare(db2, db1, {1e-6, 1e-6}, "conv2d db accumulates"));
}

TEST_CASE("conv: images in parallel give the serial results", "[nn][conv]") {
  // With 2 threads and a batch of 5, images run in parallel with per-thread im2col buffers and dW partials; with a
  // batch of 1 they run serially with im2col / col2im parallel over channels and parallel GEMMs.
  auto x1 = uniform(Shape{1, 6, 8, 7}, 709), w1 = uniform(Shape{4, 6, 3, 3}, 710), xt1 = uniform(Shape{1, 4, 4, 4}, 711);
  auto x = uniform(Shape{5, 3, 8, 7}, 701), w = uniform(Shape{4, 3, 3, 3}, 702), b = uniform(Shape{4}, 703);
  auto xt = uniform(Shape{5, 4, 4, 4}, 704), wt = uniform(Shape{4, 3, 3, 3}, 705), bt = uniform(Shape{3}, 708);
  const auto opt = nn::Conv2dOptions::square(2, 1), opt_t = nn::Conv2dOptions::square(2, 1, 1);
  struct Out {
    Tensor<> y, dx, dw, db, yt, dxt, dwt, dbt, y1, dx1, dw1, yt1, dxt1, dwt1;
  };
  auto run = [&] {
    Out o;
    o.y = nn::conv2d(x, w, &b, opt);
    auto dy = uniform(o.y.shape(), 706);
    o.dx = Tensor<>::zeros(x.shape()), o.dw = Tensor<>::zeros(w.shape()), o.db = Tensor<>::zeros(Shape{4});
    nn::conv2d_backward(dy, x, w, opt, &o.dx, &o.dw, &o.db);
    o.yt = nn::conv_transpose2d(xt, wt, &bt, opt_t);
    auto dyt = uniform(o.yt.shape(), 707);
    o.dxt = Tensor<>::zeros(xt.shape()), o.dwt = Tensor<>::zeros(wt.shape()), o.dbt = Tensor<>::zeros(Shape{3});
    nn::conv_transpose2d_backward(dyt, xt, wt, opt_t, &o.dxt, &o.dwt, &o.dbt);
    o.y1 = nn::conv2d(x1, w1, nullptr, opt);
    o.dx1 = Tensor<>::zeros(x1.shape()), o.dw1 = Tensor<>::zeros(w1.shape());
    nn::conv2d_backward(uniform(o.y1.shape(), 712), x1, w1, opt, &o.dx1, &o.dw1, nullptr);
    o.yt1 = nn::conv_transpose2d(xt1, w1, nullptr, opt_t);
    o.dxt1 = Tensor<>::zeros(xt1.shape()), o.dwt1 = Tensor<>::zeros(w1.shape());
    nn::conv_transpose2d_backward(uniform(o.yt1.shape(), 713), xt1, w1, opt_t, &o.dxt1, &o.dwt1, nullptr);
    return o;
  };
  const int saved_threads = cpu::num_threads();
  cpu::set_num_threads(1);
  const Out serial = run();
  cpu::set_num_threads(2);
  const Out par = run();
  cpu::set_num_threads(saved_threads);
  const testing::Tolerance tol{1e-6, 1e-5};
  MINT_REQUIRE_CLOSE(testing::compare(par.y, serial.y, tol, "conv2d y"));
  MINT_REQUIRE_CLOSE(testing::compare(par.dx, serial.dx, tol, "conv2d dx"));
  MINT_REQUIRE_CLOSE(testing::compare(par.dw, serial.dw, tol, "conv2d dW"));
  MINT_REQUIRE_CLOSE(testing::compare(par.db, serial.db, tol, "conv2d db"));
  MINT_REQUIRE_CLOSE(testing::compare(par.yt, serial.yt, tol, "conv_transpose2d y"));
  MINT_REQUIRE_CLOSE(testing::compare(par.dxt, serial.dxt, tol, "conv_transpose2d dx"));
  MINT_REQUIRE_CLOSE(testing::compare(par.dwt, serial.dwt, tol, "conv_transpose2d dW"));
  MINT_REQUIRE_CLOSE(testing::compare(par.dbt, serial.dbt, tol, "conv_transpose2d db"));
  MINT_REQUIRE_CLOSE(testing::compare(par.y1, serial.y1, tol, "conv2d y (batch 1)"));
  MINT_REQUIRE_CLOSE(testing::compare(par.dx1, serial.dx1, tol, "conv2d dx (batch 1)"));
  MINT_REQUIRE_CLOSE(testing::compare(par.dw1, serial.dw1, tol, "conv2d dW (batch 1)"));
  MINT_REQUIRE_CLOSE(testing::compare(par.yt1, serial.yt1, tol, "conv_transpose2d y (batch 1)"));
  MINT_REQUIRE_CLOSE(testing::compare(par.dxt1, serial.dxt1, tol, "conv_transpose2d dx (batch 1)"));
  MINT_REQUIRE_CLOSE(testing::compare(par.dwt1, serial.dwt1, tol, "conv_transpose2d dW (batch 1)"));
}

TEST_CASE("conv: shape errors name the op, the argument and both shapes", "[nn][conv]") {
  auto x = uniform(Shape{2, 3, 8, 8}, 801), w = uniform(Shape{4, 2, 3, 3}, 802), b = uniform(Shape{5}, 803);
  REQUIRE_THROWS_WITH(nn::conv2d(x, w, nullptr),
                      Catch::Contains("conv2d") && Catch::Contains("[2, 3, 8, 8]") && Catch::Contains("[4, 2, 3, 3]"));
  auto w3 = uniform(Shape{4, 3, 3, 3}, 804);
  REQUIRE_THROWS_WITH(nn::conv2d(x, w3, &b), Catch::Contains("conv2d: bias") && Catch::Contains("[4]") && Catch::Contains("[5]"));
  REQUIRE_THROWS_WITH(nn::conv2d(uniform(Shape{3, 8, 8}, 805), w3, nullptr), Catch::Contains("conv2d") && Catch::Contains("[3, 8, 8]"));
  REQUIRE_THROWS_WITH(nn::conv2d(uniform(Shape{1, 3, 2, 2}, 806), w3, nullptr), Catch::Contains("larger than the padded input"));
  auto y = nn::conv2d(x, w3, nullptr);
  auto dx = Tensor<>::zeros(x.shape());
  REQUIRE_THROWS_WITH(nn::conv2d_backward(uniform(Shape{2, 4, 5, 5}, 807), x, w3, {}, &dx, nullptr, nullptr),
                      Catch::Contains("conv2d_backward: d_output") && Catch::Contains(y.shape().str()) && Catch::Contains("[2, 4, 5, 5]"));
  REQUIRE_THROWS_WITH(nn::conv_transpose2d(x, w, nullptr),
                      Catch::Contains("conv_transpose2d") && Catch::Contains("[2, 3, 8, 8]") && Catch::Contains("[4, 2, 3, 3]"));
  REQUIRE_THROWS_WITH(nn::conv_transpose2d(x, uniform(Shape{3, 2, 3, 3}, 808), nullptr, nn::Conv2dOptions::square(2, 1, 2)),
                      Catch::Contains("output_padding"));
}

TEST_CASE("conv2d and conv_transpose2d match PyTorch", "[nn][conv][parity]") {
  const auto& f = testing::fixture_file("cnn_ops.safetensors");
  for (std::string op : {"conv2d", "conv_transpose2d"}) {
    INFO(op);
    const auto& x = f.at(op + ".x");
    const auto& w = f.at(op + ".weight");
    const auto& b = f.at(op + ".bias");
    const auto& dy = f.at(op + ".dy");
    const bool t = op == "conv_transpose2d";
    const auto opt = nn::Conv2dOptions::square(2, 1, t ? 1 : 0);
    auto y = t ? nn::conv_transpose2d(x, w, &b, opt) : nn::conv2d(x, w, &b, opt);
    MINT_REQUIRE_CLOSE(testing::compare(y, f.at(op + ".y"), testing::rel_to_max(f.at(op + ".y")), op + ".y"));
    for (auto mode : {Backward::InputOnly, Backward::Full}) {
      Param<> wp{w, {}}, bp{b, {}};
      auto dx = Tensor<>::zeros(x.shape());
      if (t) nn::conv_transpose2d_backward(dy, x, w, opt, &dx, wp.grad_for(mode), bp.grad_for(mode));
      else nn::conv2d_backward(dy, x, w, opt, &dx, wp.grad_for(mode), bp.grad_for(mode));
      MINT_REQUIRE_CLOSE(testing::compare(dx, f.at(op + ".dx"), testing::rel_to_max(f.at(op + ".dx")), op + ".dx"));
      if (mode == Backward::Full) {
        MINT_REQUIRE_CLOSE(testing::compare(wp.grad, f.at(op + ".dweight"), testing::rel_to_max(f.at(op + ".dweight")), op + ".dweight"));
        MINT_REQUIRE_CLOSE(testing::compare(bp.grad, f.at(op + ".dbias"), testing::rel_to_max(f.at(op + ".dbias")), op + ".dbias"));
      }
    }
  }
}
