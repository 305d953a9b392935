// ViT<Cuda> against ViT<Cpu> (the oracle) on the same weights and inputs -- forward logits and CLS attention,
// input-only backward, full backward (every parameter gradient) -- and the CUDA ops the model added (attention,
// patchify with a keep set, token embedding, fused bias+GELU, scaling, strided row copies, the NaN check).
// Every comparison prints its max difference. Without a GPU each test prints "SKIPPED: no usable CUDA device".
#include "mint/models/vit_cuda.cuh"  // first: the CUDA ops must be declared before the ViT template

#include "cuda/cuda_test_util.hpp"

#include <array>
#include <cmath>
#include <string>

#include "mint/nn/attention.hpp"
#include "mint/nn/tokens.hpp"
#include "models/vit_weights.hpp"

using namespace mint;
using testing::compare_gpu;
using testing::uniform;

namespace {
Tensor<Cuda> dev(const Tensor<Cpu>& t) { return to_backend<Cuda>(t); }
// Estimates, not yet measured on a GPU (none has been available): float32 ops that sum in a different order
// (cuBLAS vs mint's CPU GEMM, block trees vs serial sums) differ by a few ulp per reduction; through a
// 2-block model and its backward, errors of ~1e-5 relative compound, so the model comparisons allow 1e-3.
constexpr testing::Tolerance kExact{0, 0}, kOp{1e-5, 1e-4}, kModel{1e-4, 1e-3};

ViTConfig small_config(bool distilled) {
  ViTConfig c;
  c.img_size = 16;
  c.patch = 4;
  c.in_chans = 3;
  c.dim = 32;
  c.depth = 2;
  c.heads = 4;
  c.mlp_hidden = 64;
  c.classes = 10;
  c.distilled = distilled;
  return c;
}
}  // namespace

TEST_CASE("GPU: attention (all rows and CLS rows) with the CLS attention, forward and backward, equals the CPU op",
          "[cuda][gpu]") {
  MINT_CUDA_REQUIRE_DEVICE();
  const std::int64_t b = 3, t = 13, d = 24;
  const int heads = 4;
  for (std::int64_t q : {t, std::int64_t{2}}) {
    const std::string qn = " q=" + std::to_string(q);
    auto qkv = uniform(Shape{b, t, 3 * d}, 40, -2.f, 2.f), dout = uniform(Shape{b, q, d}, 41);
    auto dqkv0 = uniform(qkv.shape(), 42);
    nn::AttentionSaved s;
    nn::AttentionSavedT<Cuda> gs;
    Tensor<Cpu> cls;
    Tensor<Cuda> gcls;
    auto y = nn::attention(qkv, heads, &s, &cls, 2, q);
    auto gy = nn::attention(dev(qkv), heads, &gs, &gcls, 2, q);
    MINT_REQUIRE_CLOSE(compare_gpu(gy, y, kOp, "attention" + qn));
    MINT_REQUIRE_CLOSE(compare_gpu(gs.probs, s.probs, kOp, "attention probabilities" + qn));
    MINT_REQUIRE_CLOSE(compare_gpu(gcls, cls, kOp, "CLS attention" + qn));
    auto dqkv = dqkv0.clone();
    auto gdqkv = dev(dqkv0);
    nn::attention_backward(dout, qkv, heads, s, dqkv);
    nn::attention_backward(dev(dout), dev(qkv), heads, gs, gdqkv);
    MINT_REQUIRE_CLOSE(compare_gpu(gdqkv, dqkv, kOp, "attention_backward" + qn));
  }
}

TEST_CASE("GPU: patchify with a keep set, token embedding, bias+GELU, scale and row copies equal the CPU ops",
          "[cuda][gpu]") {
  MINT_CUDA_REQUIRE_DEVICE();
  const std::int64_t b = 2, p = 4, n = 16, d = 8;
  auto images = uniform(Shape{b, 3, 16, 16}, 50);
  nn::TokenIndex keep{b, 5, {15, 0, 3, 7, 9, 2, 4, 6, 8, 10}};
  for (const nn::TokenIndex* k : std::array<const nn::TokenIndex*, 2>{nullptr, &keep}) {
    const std::string kn = k ? " (keep 5 of 16)" : " (all patches)";
    auto pc = nn::patchify(images, p, k);
    MINT_REQUIRE_CLOSE(compare_gpu(nn::patchify(dev(images), p, k), pc, kExact, "patchify" + kn));
    auto dpatch = uniform(pc.shape(), 51), dimg0 = uniform(images.shape(), 52);
    auto dimg = dimg0.clone();
    auto gdimg = dev(dimg0);
    nn::patchify_backward(dpatch, p, k, dimg);
    nn::patchify_backward(dev(dpatch), p, k, gdimg);
    MINT_REQUIRE_CLOSE(compare_gpu(gdimg, dimg, kExact, "patchify_backward" + kn));
    // embedding with a distillation token
    const std::int64_t kk = pc.dim(1);
    auto tok = uniform(Shape{b, kk, d}, 53), cls = uniform(Shape{1, 1, d}, 54), dist = uniform(Shape{1, 1, d}, 55);
    auto pos = uniform(Shape{1, 2 + n, d}, 56);
    auto gcls = dev(cls), gdist = dev(dist), gpos = dev(pos);
    auto e = nn::embed_tokens(tok, k, nn::TokenEmbedParams{&cls, &dist, &pos});
    MINT_REQUIRE_CLOSE(compare_gpu(nn::embed_tokens(dev(tok), k, nn::TokenEmbedParamsT<Cuda>{&gcls, &gdist, &gpos}), e,
                                   kExact, "embed_tokens" + kn));
    auto dy = uniform(e.shape(), 57);
    auto dtok = Tensor<Cpu>::zeros(tok.shape()), dc = Tensor<Cpu>::zeros(cls.shape()), dd = Tensor<Cpu>::zeros(dist.shape()),
         dp = Tensor<Cpu>::zeros(pos.shape());
    auto gdtok = dev(dtok), gdc = dev(dc), gdd = dev(dd), gdp = dev(dp);
    nn::embed_tokens_backward(dy, k, 2, nn::TokenEmbedGrads{&dtok, &dc, &dd, &dp});
    nn::embed_tokens_backward(dev(dy), k, 2, nn::TokenEmbedGradsT<Cuda>{&gdtok, &gdc, &gdd, &gdp});
    MINT_REQUIRE_CLOSE(compare_gpu(gdtok, dtok, kExact, "embed_tokens_backward d_tokens" + kn));
    MINT_REQUIRE_CLOSE(compare_gpu(gdc, dc, kOp, "embed_tokens_backward d_cls" + kn));
    MINT_REQUIRE_CLOSE(compare_gpu(gdd, dd, kOp, "embed_tokens_backward d_dist" + kn));
    MINT_REQUIRE_CLOSE(compare_gpu(gdp, dp, kOp, "embed_tokens_backward d_pos" + kn));
  }
  // bias + GELU: pre-activation and activation
  auto x = uniform(Shape{2, 7, 24}, 58), w = uniform(Shape{40, 24}, 59), bias = uniform(Shape{40}, 60);
  Tensor<Cpu> pre;
  Tensor<Cuda> gpre;
  auto act = nn::linear_gelu(x, w, bias, pre);
  auto gact = nn::linear_gelu(dev(x), dev(w), dev(bias), gpre);
  MINT_REQUIRE_CLOSE(compare_gpu(gpre, pre, kOp, "linear_gelu pre-activation"));
  MINT_REQUIRE_CLOSE(compare_gpu(gact, act, kOp, "linear_gelu activation"));
  // scale and strided row copies
  auto a = uniform(Shape{3, 5, 4}, 61);
  auto ga = dev(a);
  nn::scale_inplace(a, -0.5f);
  nn::scale_inplace(ga, -0.5f);
  MINT_REQUIRE_CLOSE(compare_gpu(ga, a, kExact, "scale_inplace"));
  auto r = Tensor<Cpu>::zeros(Shape{3, 2, 4});
  auto gr = dev(r);
  copy_rows(r, 4, 8, a, 4, 20, 4, 3);  // row 1 of every image -> row 1
  copy_rows(gr, 4, 8, ga, 4, 20, 4, 3);
  MINT_REQUIRE_CLOSE(compare_gpu(gr, r, kExact, "copy_rows"));
}

TEST_CASE("GPU: check_finite on a device tensor names the first bad index", "[cuda][gpu]") {
  MINT_CUDA_REQUIRE_DEVICE();
  auto t = uniform(Shape{4, 1000}, 62);
  check_finite(dev(t), "ok");
  t[2345] = std::nanf("");
  t[3001] = INFINITY;
  REQUIRE_THROWS_WITH(check_finite(dev(t), "images"), Catch::Contains("images: non-finite value") &&
                                                           Catch::Contains("at flat index 2345"));
}

TEST_CASE("GPU: ViT<Cuda> forward, input-only and full backward equal ViT<Cpu> (plain and distilled, with a keep set)",
          "[cuda][gpu][vit]") {
  MINT_CUDA_REQUIRE_DEVICE();
  for (bool distilled : {false, true}) {
    const auto cfg = small_config(distilled);
    auto cpu = ViT<Cpu>::from_tensors(test::philox_vit_weights(cfg, 7), {.heads = cfg.heads});
    auto gpu = cpu.to<Cuda>();
    const std::int64_t b = 3;
    auto images = uniform(Shape{b, 3, 16, 16}, 70, -2.f, 2.f), dlogits = uniform(Shape{b, cfg.classes}, 71);
    nn::TokenIndex keep{b, 6, {15, 0, 3, 7, 9, 11, 2, 4, 6, 8, 10, 12, 1, 5, 13, 14, 0, 3}};
    for (const nn::TokenIndex* k : std::array<const nn::TokenIndex*, 2>{nullptr, &keep}) {
      const std::string tag = std::string(distilled ? " distilled" : " plain") + (k ? ", keep 6 of 16" : ", all patches");
      auto logits = cpu.forward(images, k);
      auto glogits = gpu.forward(dev(images), k);
      MINT_REQUIRE_CLOSE(compare_gpu(glogits, logits, kModel, "ViT logits" + tag));
      MINT_REQUIRE_CLOSE(compare_gpu(gpu.last_cls_attention(), cpu.last_cls_attention(), kModel, "ViT CLS attention" + tag));
      auto dx = cpu.backward(dlogits, Backward::InputOnly);
      auto gdx = gpu.backward(dev(dlogits), Backward::InputOnly);
      MINT_REQUIRE_CLOSE(compare_gpu(gdx, dx, kModel, "ViT d_images (input only)" + tag));
      for (auto& [name, p] : gpu.parameters()) REQUIRE_FALSE(p.grad.defined());  // no weight-gradient work at all
      cpu.zero_grad();
      gpu.zero_grad();
      cpu.forward(images, k);
      gpu.forward(dev(images), k);
      auto dxf = cpu.backward(dlogits, Backward::Full);
      auto gdxf = gpu.backward(dev(dlogits), Backward::Full);
      MINT_REQUIRE_CLOSE(compare_gpu(gdxf, dxf, kModel, "ViT d_images (full)" + tag));
      double worst = 0.0;
      for (auto& [name, p] : cpu.parameters()) {
        auto r = compare_gpu(gpu.parameter(name).grad, p.grad, kModel, "ViT grad " + name + tag);
        worst = std::max(worst, r.max_abs);
        MINT_REQUIRE_CLOSE(r);
      }
      std::printf("ViT<Cuda> vs ViT<Cpu>%s: largest parameter-gradient difference %.3g\n", tag.c_str(), worst);
    }
  }
}

TEST_CASE("GPU: ViT<Cuda> round trip of the weights and a NaN image rejected", "[cuda][gpu][vit]") {
  MINT_CUDA_REQUIRE_DEVICE();
  const auto cfg = small_config(false);
  auto cpu = ViT<Cpu>::from_tensors(test::philox_vit_weights(cfg, 8), {.heads = cfg.heads});
  auto back = cpu.to<Cuda>().to<Cpu>();
  for (auto& [name, p] : cpu.parameters())
    MINT_REQUIRE_CLOSE(testing::compare(back.parameter(name).value, p.value, kExact, "round trip " + name));
  auto gpu = cpu.to<Cuda>();
  auto images = uniform(Shape{1, 3, 16, 16}, 72);
  images[100] = std::nanf("");
  REQUIRE_THROWS_WITH(gpu.forward(dev(images)), Catch::Contains("ViT::forward: images: non-finite value") &&
                                                    Catch::Contains("at flat index 100"));
}
