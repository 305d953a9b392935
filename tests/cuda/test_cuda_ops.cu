// Every CUDA op against its CPU op (the oracle) on the same inputs, forward and backward; each prints its max
// difference. Without a GPU each test prints "SKIPPED: no usable CUDA device" and returns.
#include "cuda/cuda_test_util.hpp"

#include <cmath>
#include <cstdio>

#include "mint/backend/cuda.cuh"
#include "mint/nn/activation.hpp"
#include "mint/nn/elementwise.hpp"
#include "mint/nn/image_priors.hpp"
#include "mint/nn/layernorm.hpp"
#include "mint/nn/linear.hpp"
#include "mint/nn/matmul.hpp"
#include "mint/nn/softmax.hpp"
#include "mint/nn/tokens.hpp"

using namespace mint;
using testing::compare_gpu;
using testing::uniform;

namespace {
Tensor<Cuda> dev(const Tensor<Cpu>& t) { return cuda::to_device(t); }
// float32 ops whose CPU and GPU versions sum in different orders (and CPU erf/exp vectorised vs device code)
constexpr testing::Tolerance kPointwise{1e-6, 1e-5}, kReduce{1e-5, 1e-4}, kGemm{1e-4, 1e-4};
}  // namespace

TEST_CASE("GPU: gelu and relu, forward and backward, equal the CPU ops", "[cuda][gpu]") {
  MINT_CUDA_REQUIRE_DEVICE();
  auto x = uniform(Shape{7, 1001}, 1, -6.f, 6.f), dy = uniform(x.shape(), 2), dx0 = uniform(x.shape(), 3);
  x[0] = 0.0f;
  x[1] = std::nanf("");
  // GELU on finite inputs (compare() counts NaN as a mismatch); ReLU below also checks NaN propagation
  auto xf = x.clone();
  xf[1] = 0.5f;
  auto dxf = dx0.clone();
  auto gdxf = dev(dx0);
  nn::gelu_backward(dy, xf, dxf);
  nn::gelu_backward(dev(dy), dev(xf), gdxf);
  MINT_REQUIRE_CLOSE(compare_gpu(nn::gelu(dev(xf)), nn::gelu(xf), kPointwise, "gelu"));
  MINT_REQUIRE_CLOSE(compare_gpu(gdxf, dxf, kPointwise, "gelu_backward"));
  auto ry = cuda::to_host(nn::relu(dev(x)));
  REQUIRE(std::isnan(ry[1]));  // NaN propagates on the GPU too (fn::Relu)
  ry[1] = 0.0f;
  auto rc = nn::relu(x);
  rc[1] = 0.0f;
  MINT_REQUIRE_CLOSE(testing::compare(ry, rc, {0, 0}, "relu (bit-identical)"));
  auto rdx = dx0.clone();
  auto grdx = dev(dx0);
  nn::relu_backward(dy, x, rdx);
  nn::relu_backward(dev(dy), dev(x), grdx);
  MINT_REQUIRE_CLOSE(compare_gpu(grdx, rdx, {0, 0}, "relu_backward (bit-identical)"));
}

TEST_CASE("GPU: residual add, add_inplace and add_backward equal the CPU ops", "[cuda][gpu]") {
  MINT_CUDA_REQUIRE_DEVICE();
  auto a = uniform(Shape{5, 33, 17}, 4), b = uniform(a.shape(), 5);
  MINT_REQUIRE_CLOSE(compare_gpu(nn::add(dev(a), dev(b)), nn::add(a, b), {0, 0}, "add"));
  auto ga = dev(a), gb = dev(b);
  nn::add_backward(dev(a), &ga, &gb);  // da += dy, db += dy with dy = a
  auto ca = a.clone(), cb = b.clone();
  nn::add_backward(a, &ca, &cb);
  MINT_REQUIRE_CLOSE(compare_gpu(ga, ca, {0, 0}, "add_backward da"));
  MINT_REQUIRE_CLOSE(compare_gpu(gb, cb, {0, 0}, "add_backward db"));
}

TEST_CASE("GPU: layernorm forward and backward equal the CPU op", "[cuda][gpu]") {
  MINT_CUDA_REQUIRE_DEVICE();
  for (std::int64_t d : {7, 192, 768, 1500}) {
    auto x = uniform(Shape{3, 11, d}, 6, -3.f, 5.f), g = uniform(Shape{d}, 7), b = uniform(Shape{d}, 8);
    auto dy = uniform(x.shape(), 9);
    nn::LayerNormSaved s;
    auto y = nn::layernorm(x, g, b, 1e-6f, &s);
    nn::LayerNormSavedCuda gs;
    auto gy = nn::layernorm(dev(x), dev(g), dev(b), 1e-6f, &gs);
    const std::string dn = " d=" + std::to_string(d);
    MINT_REQUIRE_CLOSE(compare_gpu(gy, y, kReduce, "layernorm" + dn));
    MINT_REQUIRE_CLOSE(compare_gpu(gs.mean, s.mean, kReduce, "layernorm mean" + dn));
    MINT_REQUIRE_CLOSE(compare_gpu(gs.rstd, s.rstd, kReduce, "layernorm rstd" + dn));
    auto dx = Tensor<Cpu>::zeros(x.shape()), dg = Tensor<Cpu>::zeros(g.shape()), db = Tensor<Cpu>::zeros(b.shape());
    nn::layernorm_backward(dy, x, g, s, &dx, &dg, &db);
    auto gdx = Tensor<Cuda>::zeros(x.shape()), gdg = Tensor<Cuda>::zeros(g.shape()), gdb = Tensor<Cuda>::zeros(b.shape());
    nn::layernorm_backward(dev(dy), dev(x), dev(g), gs, &gdx, &gdg, &gdb);
    MINT_REQUIRE_CLOSE(compare_gpu(gdx, dx, kReduce, "layernorm_backward dx" + dn));
    MINT_REQUIRE_CLOSE(compare_gpu(gdg, dg, kReduce, "layernorm_backward dgamma" + dn));
    MINT_REQUIRE_CLOSE(compare_gpu(gdb, db, kReduce, "layernorm_backward dbeta" + dn));
  }
}

TEST_CASE("GPU: softmax forward and backward equal the CPU op", "[cuda][gpu]") {
  MINT_CUDA_REQUIRE_DEVICE();
  for (std::int64_t n : {5, 197, 1000}) {
    auto x = uniform(Shape{4, 9, n}, 10, -20.f, 20.f), dy = uniform(x.shape(), 11), dx0 = uniform(x.shape(), 12);
    auto y = nn::softmax(x);
    auto gy = nn::softmax(dev(x));
    const std::string dn = " n=" + std::to_string(n);
    MINT_REQUIRE_CLOSE(compare_gpu(gy, y, kReduce, "softmax" + dn));
    auto dx = dx0.clone();
    auto gdx = dev(dx0);
    nn::softmax_backward(dy, y, dx);
    nn::softmax_backward(dev(dy), dev(y), gdx);
    MINT_REQUIRE_CLOSE(compare_gpu(gdx, dx, kReduce, "softmax_backward" + dn));
  }
}

TEST_CASE("GPU: linear and bmm, forward and backward, equal the CPU ops (cuBLAS FP32)", "[cuda][gpu][gemm]") {
  MINT_CUDA_REQUIRE_DEVICE();
  auto x = uniform(Shape{2, 13, 48}, 13), w = uniform(Shape{40, 48}, 14), b = uniform(Shape{40}, 15);
  auto dy = uniform(Shape{2, 13, 40}, 16);
  MINT_REQUIRE_CLOSE(compare_gpu(nn::linear(dev(x), dev(w), nullptr), nn::linear(x, w, nullptr), kGemm, "linear"));
  auto gb = dev(b);
  MINT_REQUIRE_CLOSE(compare_gpu(nn::linear(dev(x), dev(w), &gb), nn::linear(x, w, &b), kGemm, "linear + bias"));
  auto dx = uniform(x.shape(), 17), dw = uniform(w.shape(), 18), db = uniform(b.shape(), 19);
  auto gdx = dev(dx), gdw = dev(dw), gdb = dev(db);
  nn::linear_backward(dy, x, w, &dx, &dw, &db);
  nn::linear_backward(dev(dy), dev(x), dev(w), &gdx, &gdw, &gdb);
  MINT_REQUIRE_CLOSE(compare_gpu(gdx, dx, kGemm, "linear_backward dx"));
  MINT_REQUIRE_CLOSE(compare_gpu(gdw, dw, kGemm, "linear_backward dw"));
  MINT_REQUIRE_CLOSE(compare_gpu(gdb, db, kGemm, "linear_backward db"));
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      const std::int64_t bt = 6, m = 11, k = 16, n = 9;
      auto a = uniform(ta ? Shape{bt, k, m} : Shape{bt, m, k}, 20 + ta);
      auto bb = uniform(tb ? Shape{bt, n, k} : Shape{bt, k, n}, 22 + tb);
      auto dc = uniform(Shape{bt, m, n}, 24);
      const std::string what = " ta=" + std::to_string(ta) + " tb=" + std::to_string(tb);
      MINT_REQUIRE_CLOSE(compare_gpu(nn::bmm(dev(a), dev(bb), ta, tb), nn::bmm(a, bb, ta, tb), kGemm, "bmm" + what));
      auto da = Tensor<Cpu>::zeros(a.shape()), dbb = Tensor<Cpu>::zeros(bb.shape());
      auto gda = Tensor<Cuda>::zeros(a.shape()), gdbb = Tensor<Cuda>::zeros(bb.shape());
      nn::bmm_backward(dc, a, bb, ta, tb, &da, &dbb);
      nn::bmm_backward(dev(dc), dev(a), dev(bb), ta, tb, &gda, &gdbb);
      MINT_REQUIRE_CLOSE(compare_gpu(gda, da, kGemm, "bmm_backward da" + what));
      MINT_REQUIRE_CLOSE(compare_gpu(gdbb, dbb, kGemm, "bmm_backward db" + what));
    }
}

TEST_CASE("GPU: token gather and its scatter-add backward equal the CPU ops", "[cuda][gpu]") {
  MINT_CUDA_REQUIRE_DEVICE();
  const std::int64_t b = 3, n = 10, f = 24;
  nn::TokenIndex keep{b, 4, {9, 0, 3, 5, 1, 2, 8, 7, 6, 4, 0, 3}};
  auto x = uniform(Shape{b, n, f}, 25), dy = uniform(Shape{b, 4, f}, 26), dx0 = uniform(x.shape(), 27);
  MINT_REQUIRE_CLOSE(compare_gpu(nn::gather_tokens(dev(x), keep), nn::gather_tokens(x, keep), {0, 0}, "gather_tokens"));
  auto dx = dx0.clone();
  auto gdx = dev(dx0);
  nn::gather_tokens_backward(dy, keep, dx);
  nn::gather_tokens_backward(dev(dy), keep, gdx);
  MINT_REQUIRE_CLOSE(compare_gpu(gdx, dx, {0, 0}, "gather_tokens_backward"));
}

TEST_CASE("GPU: total variation (SMI Eq. 2) value and gradient equal the CPU prior", "[cuda][gpu]") {
  MINT_CUDA_REQUIRE_DEVICE();
  auto x = uniform(Shape{3, 3, 17, 21}, 28), g0 = uniform(x.shape(), 29);
  auto g = g0.clone();
  auto gg = dev(g0);
  const float v = nn::total_variation(x, 0.3f, &g);
  const float gv = nn::total_variation(dev(x), 0.3f, &gg);
  std::printf("GPU vs CPU total_variation value: %.9g vs %.9g\n", gv, v);
  CHECK(std::abs(gv - v) <= 1e-5f * std::abs(v));
  MINT_REQUIRE_CLOSE(compare_gpu(gg, g, kReduce, "total_variation gradient"));
}

TEST_CASE("GPU: Adam step through fn::AdamStep equals the CPU loop over the same functor", "[cuda][gpu]") {
  MINT_CUDA_REQUIRE_DEVICE();
  auto p = uniform(Shape{5000}, 30), g = uniform(p.shape(), 31), m = uniform(p.shape(), 32, -0.1f, 0.1f);
  auto v = uniform(p.shape(), 33, 0.0f, 0.01f);
  auto gp = dev(p), gm = dev(m), gv = dev(v);
  for (bool decoupled : {true, false}) {
    const fn::AdamStep f{1e-2f, 0.9f, 0.999f, 1e-8f, 0.19f, 0.002f, 0.05f, decoupled};
    for (std::int64_t i = 0; i < p.numel(); ++i) f(p[i], g[i], m[i], v[i]);
    cuda::adam_step(f, gp, dev(g), gm, gv);
  }
  MINT_REQUIRE_CLOSE(compare_gpu(gp, p, kPointwise, "adam p"));
  MINT_REQUIRE_CLOSE(compare_gpu(gm, m, kPointwise, "adam m"));
  MINT_REQUIRE_CLOSE(compare_gpu(gv, v, kPointwise, "adam v"));
}
