// The CNN ops on CUDA (conv2d, conv_transpose2d, batch norm and the channel statistics, max / average / adaptive
// pooling), the KL distillation loss and the L2 prior, each against its CPU op (the oracle) on the same inputs,
// forward and backward, and ResNet<Cuda> against ResNet<Cpu>; each comparison prints its max difference.
// Without a GPU each test prints "SKIPPED: no usable CUDA device" and returns.
//
// Tolerances (float32; |gpu - cpu| <= atol + rtol |cpu| per element):
//   kExact  {0, 0}:       max pooling selects values and routes gradients (no arithmetic besides the backward's
//                         adds, which the GPU gathers in the CPU's order onto the same starting value).
//   kPointwise {1e-6, 1e-5}: the same float formula on both sides (functors, window means), FMA contraction and
//                         device division may differ by an ulp.
//   kReduce {1e-5, 1e-4}: per-channel / per-row sums (double on both sides, different order) then float math.
//   kGemm {1e-4, 1e-4}:   convolutions: cuBLAS FP32 vs Eigen GEMM over up to 3*7*7 = 147-term dot products of
//                         values in [-1, 1] (results up to ~10), float rounding in different orders.
//   ResNet: 1e-4 of the reference's largest magnitude + 1e-3 relative (testing::rel_to_max): ~20 conv/BN layers
//                         compound the op differences, and gradients span orders of magnitude.
#include "mint/models/resnet_cuda.cuh"  // first: the CUDA ops must be declared before the ResNet template
// (the line above must stay first; the rest in the usual order)
#include "cuda/cuda_test_util.hpp"

#include <cmath>
#include <cstdio>
#include <string>

#include "mint/backend/cuda/batchnorm.cuh"
#include "mint/backend/cuda/conv.cuh"
#include "mint/backend/cuda/image_priors.cuh"
#include "mint/backend/cuda/losses.cuh"
#include "mint/backend/cuda/pool.cuh"
#include "mint/nn/batchnorm.hpp"
#include "mint/nn/conv.hpp"
#include "mint/nn/image_priors.hpp"
#include "mint/nn/losses.hpp"
#include "mint/nn/pool.hpp"

using namespace mint;
using testing::compare_gpu;
using testing::uniform;

namespace {
Tensor<Cuda> dev(const Tensor<Cpu>& t) { return cuda::to_device(t); }
constexpr testing::Tolerance kExact{0, 0}, kPointwise{1e-6, 1e-5}, kReduce{1e-5, 1e-4}, kGemm{1e-4, 1e-4};

// The CPU op's error message (the CUDA op runs the same shared check, so it must throw the same text).
template <class F>
std::string cpu_error(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

void check_scalar(float gpu, float cpu, double rtol, const std::string& what) {
  std::printf("GPU vs CPU %s: %.9g vs %.9g (difference %.3g)\n", what.c_str(), gpu, cpu, std::abs(gpu - cpu));
  CHECK(std::abs(static_cast<double>(gpu) - cpu) <= rtol * std::abs(static_cast<double>(cpu)) + 1e-7);
}

struct ConvCase {
  std::int64_t n, cin, h, w, cout, k, stride, pad, out_pad;
  bool bias;
};

// Restores the column-buffer limit of the CUDA convolutions when a test that lowered it ends.
struct ColumnLimit {
  std::int64_t saved = nn::cuda_detail::conv_column_floats();
  explicit ColumnLimit(std::int64_t floats) { nn::cuda_detail::conv_column_floats() = floats; }
  ~ColumnLimit() { nn::cuda_detail::conv_column_floats() = saved; }
};
}  // namespace

TEST_CASE("GPU: conv2d forward and backward equal the CPU op", "[cuda][gpu][cnn]") {
  MINT_CUDA_REQUIRE_DEVICE();
  // ResNet-18's shapes in small: the 7x7 stride-2 stem, 3x3 stride 1 and 2, the 1x1 stride-2 shortcut; odd sizes
  const ConvCase cases[] = {{2, 3, 17, 15, 8, 7, 2, 3, 0, false},
                            {3, 8, 9, 9, 6, 3, 1, 1, 0, true},
                            {2, 6, 10, 7, 5, 3, 2, 1, 0, true},
                            {4, 5, 8, 8, 7, 1, 2, 0, 0, false}};
  for (const bool chunked : {false, true}) {
    // chunked: a column buffer of one image's worth, so every image is its own chunk (the large-batch path)
    ColumnLimit limit(chunked ? 1 : nn::cuda_detail::conv_column_floats());
    for (const auto& c : cases) {
      const auto opt = nn::Conv2dOptions::square(c.stride, c.pad);
      auto x = uniform(Shape{c.n, c.cin, c.h, c.w}, 1), w = uniform(Shape{c.cout, c.cin, c.k, c.k}, 2);
      auto b = uniform(Shape{c.cout}, 3);
      const std::string what = " k=" + std::to_string(c.k) + " s=" + std::to_string(c.stride) +
                               (c.bias ? " bias" : "") + (chunked ? " chunked" : "");
      auto gx = dev(x), gw = dev(w), gb = dev(b);
      auto y = nn::conv2d(x, w, c.bias ? &b : nullptr, opt);
      auto gy = nn::conv2d(gx, gw, c.bias ? &gb : nullptr, opt);
      MINT_REQUIRE_CLOSE(compare_gpu(gy, y, kGemm, "conv2d" + what));
      auto dy = uniform(y.shape(), 4);
      auto dx = uniform(x.shape(), 5), dw = uniform(w.shape(), 6), db = uniform(b.shape(), 7);
      auto gdx = dev(dx), gdw = dev(dw), gdb = dev(db);
      nn::conv2d_backward(dy, x, w, opt, &dx, &dw, &db);
      nn::conv2d_backward(dev(dy), gx, gw, opt, &gdx, &gdw, &gdb);
      MINT_REQUIRE_CLOSE(compare_gpu(gdx, dx, kGemm, "conv2d_backward dx" + what));
      MINT_REQUIRE_CLOSE(compare_gpu(gdw, dw, kGemm, "conv2d_backward dw" + what));
      MINT_REQUIRE_CLOSE(compare_gpu(gdb, db, kReduce, "conv2d_backward db" + what));
      // input-only (the inversion's mode): no weight gradients
      auto dx2 = Tensor<Cpu>::zeros(x.shape());
      auto gdx2 = Tensor<Cuda>::zeros(x.shape());
      nn::conv2d_backward(dy, x, w, opt, &dx2, nullptr, nullptr);
      nn::conv2d_backward(dev(dy), gx, gw, opt, &gdx2, nullptr, nullptr);
      MINT_REQUIRE_CLOSE(compare_gpu(gdx2, dx2, kGemm, "conv2d_backward input-only dx" + what));
    }
  }
  // the same checks and messages as the CPU op (shared code)
  auto x = uniform(Shape{2, 3, 8, 8}, 8), w = uniform(Shape{4, 5, 3, 3}, 9);
  const auto msg = cpu_error([&] { nn::conv2d(x, w, nullptr); });
  REQUIRE_THROWS_WITH(nn::conv2d(dev(x), dev(w), nullptr), msg);
  auto w2 = uniform(Shape{4, 3, 3, 3}, 10), bad = uniform(Shape{5}, 11);
  const auto msg2 = cpu_error([&] { nn::conv2d(x, w2, &bad); });
  auto gbad = dev(bad);
  REQUIRE_THROWS_WITH(nn::conv2d(dev(x), dev(w2), &gbad), msg2);
}

TEST_CASE("GPU: conv_transpose2d forward and backward equal the CPU op", "[cuda][gpu][cnn]") {
  MINT_CUDA_REQUIRE_DEVICE();
  const ConvCase cases[] = {{2, 6, 5, 7, 4, 4, 2, 1, 0, true},  // DCGAN-style 4x4 stride-2 upsampling
                            {3, 4, 6, 6, 3, 3, 2, 1, 1, false},
                            {2, 5, 7, 4, 3, 3, 1, 1, 0, true}};
  for (const bool chunked : {false, true}) {
    ColumnLimit limit(chunked ? 1 : nn::cuda_detail::conv_column_floats());
    for (const auto& c : cases) {
      const auto opt = nn::Conv2dOptions::square(c.stride, c.pad, c.out_pad);
      auto x = uniform(Shape{c.n, c.cin, c.h, c.w}, 12), w = uniform(Shape{c.cin, c.cout, c.k, c.k}, 13);
      auto b = uniform(Shape{c.cout}, 14);
      const std::string what = " k=" + std::to_string(c.k) + " s=" + std::to_string(c.stride) +
                               " out_pad=" + std::to_string(c.out_pad) + (c.bias ? " bias" : "") +
                               (chunked ? " chunked" : "");
      auto gx = dev(x), gw = dev(w), gb = dev(b);
      auto y = nn::conv_transpose2d(x, w, c.bias ? &b : nullptr, opt);
      auto gy = nn::conv_transpose2d(gx, gw, c.bias ? &gb : nullptr, opt);
      MINT_REQUIRE_CLOSE(compare_gpu(gy, y, kGemm, "conv_transpose2d" + what));
      auto dy = uniform(y.shape(), 15);
      auto dx = uniform(x.shape(), 16), dw = uniform(w.shape(), 17), db = uniform(b.shape(), 18);
      auto gdx = dev(dx), gdw = dev(dw), gdb = dev(db);
      nn::conv_transpose2d_backward(dy, x, w, opt, &dx, &dw, &db);
      nn::conv_transpose2d_backward(dev(dy), gx, gw, opt, &gdx, &gdw, &gdb);
      MINT_REQUIRE_CLOSE(compare_gpu(gdx, dx, kGemm, "conv_transpose2d_backward dx" + what));
      MINT_REQUIRE_CLOSE(compare_gpu(gdw, dw, kGemm, "conv_transpose2d_backward dw" + what));
      MINT_REQUIRE_CLOSE(compare_gpu(gdb, db, kReduce, "conv_transpose2d_backward db" + what));
    }
  }
  auto x = uniform(Shape{2, 3, 5, 5}, 19), w = uniform(Shape{3, 4, 3, 3}, 20);
  const auto opt = nn::Conv2dOptions::square(2, 1, 2);  // output_padding >= stride
  const auto msg = cpu_error([&] { nn::conv_transpose2d(x, w, nullptr, opt); });
  REQUIRE_THROWS_WITH(nn::conv_transpose2d(dev(x), dev(w), nullptr, opt), msg);
}

TEST_CASE("GPU: batch_norm2d (training and eval) and channel_stats equal the CPU ops", "[cuda][gpu][cnn]") {
  MINT_CUDA_REQUIRE_DEVICE();
  auto x = uniform(Shape{4, 5, 7, 6}, 21, -2.0f, 6.0f), g = uniform(Shape{5}, 22, 0.5f, 1.5f);
  auto beta = uniform(Shape{5}, 23), rm0 = uniform(Shape{5}, 24), rv0 = uniform(Shape{5}, 25, 0.5f, 2.0f);
  auto dy = uniform(x.shape(), 26);
  for (const bool training : {true, false})
    for (const bool affine : {true, false}) {
      const std::string what = std::string(training ? " training" : " eval") + (affine ? " affine" : "");
      nn::BatchNormOptions opt;
      opt.training = training;
      auto rm = rm0.clone(), rv = rv0.clone();
      auto grm = dev(rm0), grv = dev(rv0), gg = dev(g), gbeta = dev(beta), gx = dev(x);
      nn::BatchNormSaved s;
      nn::BatchNormSavedCuda gs;
      auto y = nn::batch_norm2d(x, affine ? &g : nullptr, affine ? &beta : nullptr, &rm, &rv, opt, &s);
      auto gy = nn::batch_norm2d(gx, affine ? &gg : nullptr, affine ? &gbeta : nullptr, &grm, &grv, opt, &gs);
      MINT_REQUIRE_CLOSE(compare_gpu(gy, y, kReduce, "batch_norm2d" + what));
      MINT_REQUIRE_CLOSE(compare_gpu(gs.mean, s.mean, kReduce, "batch_norm2d saved mean" + what));
      MINT_REQUIRE_CLOSE(compare_gpu(gs.rstd, s.rstd, kReduce, "batch_norm2d saved rstd" + what));
      MINT_REQUIRE_CLOSE(compare_gpu(grm, rm, kReduce, "batch_norm2d running_mean" + what));
      MINT_REQUIRE_CLOSE(compare_gpu(grv, rv, kReduce, "batch_norm2d running_var" + what));
      REQUIRE(gs.training == training);
      auto dx = uniform(x.shape(), 27), dg = uniform(g.shape(), 28), db = uniform(beta.shape(), 29);
      auto gdx = dev(dx), gdg = dev(dg), gdb = dev(db);
      nn::batch_norm2d_backward(dy, x, affine ? &g : nullptr, s, &dx, affine ? &dg : nullptr, affine ? &db : nullptr);
      nn::batch_norm2d_backward(dev(dy), gx, affine ? &gg : nullptr, gs, &gdx, affine ? &gdg : nullptr,
                                affine ? &gdb : nullptr);
      MINT_REQUIRE_CLOSE(compare_gpu(gdx, dx, kReduce, "batch_norm2d_backward dx" + what));
      MINT_REQUIRE_CLOSE(compare_gpu(gdg, dg, kReduce, "batch_norm2d_backward dgamma" + what));
      MINT_REQUIRE_CLOSE(compare_gpu(gdb, db, kReduce, "batch_norm2d_backward dbeta" + what));
    }
  // training without running statistics (track_running_stats = False)
  {
    nn::BatchNormSaved s;
    nn::BatchNormSavedCuda gs;
    auto y = nn::batch_norm2d(x, nullptr, nullptr, nullptr, nullptr, {}, &s);
    auto gy = nn::batch_norm2d(dev(x), nullptr, nullptr, nullptr, nullptr, {}, &gs);
    MINT_REQUIRE_CLOSE(compare_gpu(gy, y, kReduce, "batch_norm2d training, no running statistics"));
  }
  // the channel statistics (the BN prior's) and their gradient
  auto st = nn::channel_stats(x);
  auto gst = nn::channel_stats(dev(x));
  MINT_REQUIRE_CLOSE(compare_gpu(gst.mean, st.mean, kReduce, "channel_stats mean"));
  MINT_REQUIRE_CLOSE(compare_gpu(gst.var, st.var, kReduce, "channel_stats var"));
  auto dmean = uniform(Shape{5}, 30), dvar = uniform(Shape{5}, 31), dx0 = uniform(x.shape(), 32);
  for (int which = 0; which < 3; ++which) {  // both, d_mean only, d_var only
    const bool m = which != 2, v = which != 1;
    auto dx = dx0.clone();
    auto gdx = dev(dx0), gdm = dev(dmean), gdv = dev(dvar);
    nn::channel_stats_backward(x, st, m ? &dmean : nullptr, v ? &dvar : nullptr, dx);
    nn::channel_stats_backward(dev(x), gst, m ? &gdm : nullptr, v ? &gdv : nullptr, gdx);
    MINT_REQUIRE_CLOSE(compare_gpu(gdx, dx, kReduce, "channel_stats_backward " + std::to_string(which)));
  }
  // errors: the shared checks
  nn::BatchNormOptions eval;
  eval.training = false;
  const auto msg = cpu_error([&] { nn::batch_norm2d(x, nullptr, nullptr, nullptr, nullptr, eval, nullptr); });
  REQUIRE_THROWS_WITH(nn::batch_norm2d(dev(x), nullptr, nullptr, nullptr, nullptr, eval, nullptr), msg);
  auto one = uniform(Shape{1, 5, 1, 1}, 33);
  const auto msg2 = cpu_error([&] { nn::batch_norm2d(one, nullptr, nullptr, nullptr, nullptr, {}, nullptr); });
  REQUIRE_THROWS_WITH(nn::batch_norm2d(dev(one), nullptr, nullptr, nullptr, nullptr, {}, nullptr), msg2);
}

TEST_CASE("GPU: max, average and adaptive average pooling equal the CPU ops", "[cuda][gpu][cnn]") {
  MINT_CUDA_REQUIRE_DEVICE();
  // values on a grid of 0.25 so windows hold ties: the first maximum in scan order must win on both
  auto x = uniform(Shape{3, 4, 11, 9}, 34, -2.0f, 2.0f);
  for (std::int64_t i = 0; i < x.numel(); ++i) x[i] = std::round(x[i] * 4.0f) / 4.0f;
  const nn::Pool2dOptions opts[] = {nn::Pool2dOptions::square(3, 2, 1),  // ResNet's stem pool
                                    nn::Pool2dOptions::square(2),
                                    nn::Pool2dOptions::square(3, 1, 1),  // overlapping windows
                                    {3, 2, 2, 1, 1, 0}};
  int k = 0;
  for (const auto& opt : opts) {
    const std::string what = " options " + std::to_string(k++);
    nn::MaxPoolSaved s;
    nn::MaxPoolSavedCuda gs;
    auto y = nn::max_pool2d(x, opt, &s);
    auto gy = nn::max_pool2d(dev(x), opt, &gs);
    MINT_REQUIRE_CLOSE(compare_gpu(gy, y, kExact, "max_pool2d" + what));
    auto dy = uniform(y.shape(), 35), dx0 = uniform(x.shape(), 36);
    auto dx = dx0.clone();
    auto gdx = dev(dx0);
    nn::max_pool2d_backward(dy, s, dx);
    nn::max_pool2d_backward(dev(dy), gs, gdx);
    MINT_REQUIRE_CLOSE(compare_gpu(gdx, dx, kExact, "max_pool2d_backward" + what));
    auto ay = nn::avg_pool2d(x, opt);
    MINT_REQUIRE_CLOSE(compare_gpu(nn::avg_pool2d(dev(x), opt), ay, kPointwise, "avg_pool2d" + what));
    auto adx = dx0.clone();
    auto gadx = dev(dx0);
    nn::avg_pool2d_backward(dy, opt, adx);
    nn::avg_pool2d_backward(dev(dy), opt, gadx);
    MINT_REQUIRE_CLOSE(compare_gpu(gadx, adx, kPointwise, "avg_pool2d_backward" + what));
  }
  const std::int64_t sizes[][2] = {{1, 1}, {3, 2}, {4, 5}, {11, 9}};
  for (const auto& [oh, ow] : sizes) {
    const std::string what = " to " + std::to_string(oh) + "x" + std::to_string(ow);
    auto y = nn::adaptive_avg_pool2d(x, oh, ow);
    MINT_REQUIRE_CLOSE(
        compare_gpu(nn::adaptive_avg_pool2d(dev(x), oh, ow), y, kPointwise, "adaptive_avg_pool2d" + what));
    auto dy = uniform(y.shape(), 37), dx0 = uniform(x.shape(), 38);
    auto dx = dx0.clone();
    auto gdx = dev(dx0);
    nn::adaptive_avg_pool2d_backward(dy, dx);
    nn::adaptive_avg_pool2d_backward(dev(dy), gdx);
    MINT_REQUIRE_CLOSE(compare_gpu(gdx, dx, kPointwise, "adaptive_avg_pool2d_backward" + what));
  }
  MINT_REQUIRE_CLOSE(compare_gpu(nn::global_avg_pool2d(dev(x)), nn::global_avg_pool2d(x), kPointwise,
                                 "global_avg_pool2d"));
  const auto bad = nn::Pool2dOptions::square(3, 2, 2);  // padding > kernel / 2
  const auto msg = cpu_error([&] { nn::max_pool2d(x, bad, nullptr); });
  REQUIRE_THROWS_WITH(nn::max_pool2d(dev(x), bad, nullptr), msg);
}

TEST_CASE("GPU: KL distillation loss (tau^2 KL, SMI Eq. 6) value and gradient equal the CPU loss", "[cuda][gpu]") {
  MINT_CUDA_REQUIRE_DEVICE();
  for (const float tau : {1.0f, 4.0f}) {
    for (const std::int64_t c : {10, 1000}) {
      auto s = uniform(Shape{6, c}, 39, -8.0f, 8.0f), t = uniform(Shape{6, c}, 40, -8.0f, 8.0f);
      auto d0 = uniform(s.shape(), 41);
      auto d = d0.clone();
      auto gd = dev(d0);
      const std::string what = " tau=" + std::to_string(tau) + " C=" + std::to_string(c);
      const float v = nn::kl_div_temperature(s, t, tau, &d, 0.7f);
      const float gv = nn::kl_div_temperature(dev(s), dev(t), tau, &gd, 0.7f);
      check_scalar(gv, v, 1e-5, "kl_div_temperature value" + what);
      MINT_REQUIRE_CLOSE(compare_gpu(gd, d, kReduce, "kl_div_temperature gradient" + what));
    }
  }
  auto s = uniform(Shape{2, 5}, 42), t = uniform(Shape{2, 6}, 43);
  const auto msg = cpu_error([&] { nn::kl_div_temperature(s, t, 1.0f); });
  REQUIRE_THROWS_WITH(nn::kl_div_temperature(dev(s), dev(t), 1.0f), msg);
}

TEST_CASE("GPU: L2 image prior value and gradient equal the CPU prior", "[cuda][gpu]") {
  MINT_CUDA_REQUIRE_DEVICE();
  auto x = uniform(Shape{3, 3, 31, 29}, 44), g0 = uniform(x.shape(), 45);
  auto g = g0.clone();
  auto gg = dev(g0);
  const float v = nn::l2_prior(x, 0.3f, &g);
  const float gv = nn::l2_prior(dev(x), 0.3f, &gg);
  check_scalar(gv, v, 1e-6, "l2_prior value");  // double sums on both sides
  MINT_REQUIRE_CLOSE(compare_gpu(gg, g, kPointwise, "l2_prior gradient"));
}

TEST_CASE("GPU: ResNet<Cuda> equals ResNet<Cpu>: logits, d_images, parameter gradients, running statistics",
          "[cuda][gpu][cnn][resnet]") {
  MINT_CUDA_REQUIRE_DEVICE();
  ResNetConfig c;
  c.width = 4, c.img_size = 12, c.classes = 5, c.in_chans = 3;
  ResNet<Cpu> cpu(c);
  // Philox weights (models/init.hpp's torchvision init would pull in the ViT headers, nvcc time): weights
  // uniform in +-1/sqrt(fan-in), BN affine parameters and the fc bias in [0.5, 1.5]
  std::uint32_t stream = 0;
  for (auto& [n, p] : cpu.parameters()) {
    if (p.value.rank() == 1) {
      fill_uniform(p.value, 5, stream++, 0.5f, 1.5f);
    } else {
      const float bound = 1.0f / std::sqrt(static_cast<float>(p.value.numel() / p.value.dim(0)));
      fill_uniform(p.value, 5, stream++, -bound, bound);
    }
  }
  auto gpu = cpu.to<Cuda>();
  auto x = uniform(Shape{3, 3, 12, 12}, 46, -1.5f, 1.5f);
  auto gx = dev(x);
  for (const bool training : {true, false}) {
    const std::string tag = training ? " (training)" : " (eval)";
    cpu.train(training);
    gpu.train(training);
    auto y = cpu.forward(x);
    auto gy = gpu.forward(gx);
    MINT_REQUIRE_CLOSE(compare_gpu(gy, y, testing::rel_to_max(y, 1e-4, 1e-3), "ResNet logits" + tag));
    auto dl = uniform(y.shape(), 47);
    cpu.zero_grad();
    gpu.zero_grad();
    auto dx = cpu.backward(dl, Backward::Full);
    auto gdx = gpu.backward(dev(dl), Backward::Full);
    MINT_REQUIRE_CLOSE(compare_gpu(gdx, dx, testing::rel_to_max(dx, 1e-4, 1e-3), "ResNet d_images (full)" + tag));
    for (auto& [name, p] : cpu.parameters())
      MINT_REQUIRE_CLOSE(compare_gpu(gpu.parameter(name).grad, p.grad, testing::rel_to_max(p.grad, 1e-4, 1e-3),
                                     "ResNet grad " + name + tag));
    for (auto& [name, b] : cpu.buffers())  // running statistics (updated in training mode) and num_batches_tracked
      MINT_REQUIRE_CLOSE(compare_gpu(gpu.buffers().at(name), b, kReduce, "ResNet buffer " + name + tag));
    // input-only backward (the inversion's mode), and the BN-statistics gradients of the BN prior folded in
    cpu.forward(x);
    gpu.forward(gx);
    BNStatGrads g;
    ResNet<Cuda>::StatGrads gg;
    for (std::size_t l = 0; l < cpu.num_bn_layers(); ++l) {
      const auto ch = cpu.bn_input_stats(l).mean.dim(0);
      const bool on = l % 3 != 1;  // some layers without a statistics gradient (undefined = zero)
      g.dmean.push_back(on ? uniform(Shape{ch}, 60 + l) : Tensor<Cpu>());
      g.dvar.push_back(on ? uniform(Shape{ch}, 90 + l) : Tensor<Cpu>());
      gg.dmean.push_back(on ? dev(g.dmean.back()) : Tensor<Cuda>());
      gg.dvar.push_back(on ? dev(g.dvar.back()) : Tensor<Cuda>());
      MINT_REQUIRE_CLOSE(compare_gpu(gpu.bn_input_stats(l).var, cpu.bn_input_stats(l).var, kReduce,
                                     "ResNet BN input variance " + std::to_string(l) + tag));
    }
    auto dxi = cpu.backward(dl, Backward::InputOnly, &g);
    auto gdxi = gpu.backward(dev(dl), Backward::InputOnly, &gg);
    MINT_REQUIRE_CLOSE(compare_gpu(gdxi, dxi, testing::rel_to_max(dxi, 1e-4, 1e-3),
                                   "ResNet d_images (input only, with BN-statistics gradients)" + tag));
    for (auto& [name, p] : cpu.parameters())  // input-only: the Full pass's parameter gradients stay as they were
      MINT_REQUIRE_CLOSE(compare_gpu(gpu.parameter(name).grad, p.grad, testing::rel_to_max(p.grad, 1e-4, 1e-3),
                                     "ResNet grad " + name + " after the input-only backward" + tag));
  }
  // save on the GPU model, load on the CPU: bit for bit the GPU model's weights and buffers (compared with the GPU
  // state itself: the running statistics were computed on each backend and may differ from the CPU's by an ulp)
  testing::TempFile f(".safetensors");
  gpu.save(f.str());
  auto back = ResNet<Cpu>::load(f.str());
  const auto saved = back.state_dict();
  for (const auto& [name, t] : gpu.state_dict())
    MINT_REQUIRE_CLOSE(testing::compare(saved.at(name), to_cpu(t), kExact, "ResNet<Cuda>::save " + name));
}
