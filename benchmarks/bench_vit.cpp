// bench_vit -- one model-inversion iteration of a ViT: forward + cross-entropy + input-only backward
// (Backward::InputOnly: frozen weights, no weight-gradient work), i.e. what every step of inversion runs.
//
// Cases (weights: mint::test::philox_vit_weights, any deterministic weights do; images uniform [-1, 1]):
//   deit_tiny_full    img 224, patch 16, dim 192, depth 12, heads 3, mlp 768, 1000 classes; batch 8, 196 patches
//   deit_tiny_keep50  the same with 50 kept patches per image (a random distinct keep set per image)
//   small_full        img 28, patch 4, 1 channel, dim 64, depth 4, heads 4, mlp 256, 10 classes; batch 128, 49 patches
//
// Run with OMP_NUM_THREADS=2 (the reference machine's 2 cores); times are wall-clock (UseRealTime).
// Counters: items_per_second (images/s), GFLOP/s (analytic count below / wall time), ms_per_iter, threads.
//
// Analytic FLOP count of what runs, GEMMs only (2*M*N*K each; LayerNorm, GELU, softmax, adds are not counted):
//   B images, Kp kept patches, T = E + Kp tokens (E = 1 CLS token, 2 for distilled), D width, F MLP width,
//   P = C*p*p patch features, L blocks, NC classes.
//   forward   patch embed 2*B*Kp*P*D
//             per block   qkv 2*B*T*D*3D + proj 2*B*T*D*D + fc1 2*B*T*D*F + fc2 2*B*T*F*D
//                         attention  S = Q K^T: 2*B*T*T*D,  O = P V: 2*B*T*T*D   (summed over heads, D = H*dh)
//             head(s)     2*B*E*D*NC (one D x NC head per CLS / distillation row)
//   backward  (input only) the same linear GEMMs again for d_input (dx = dy W: same M, N, K),
//             attention dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q: 4 * 2*B*T*T*D
//   total = 2*(2*B*Kp*P*D + 2*B*E*D*NC) + L*(4*B*T*(4*D*D + 2*D*F) + 12*B*T*T*D)
// The patch-embedding d_input GEMM does run (its result is scattered back to the pixels).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "mint/backend/cpu/parallel.hpp"
#include "gemm_flag.hpp"
#include "mint/core/rng.hpp"
#include "mint/models/vit.hpp"
#include "mint/nn/losses.hpp"
#include "models/vit_weights.hpp"

namespace {

struct Case {
  const char* name;
  mint::ViTConfig cfg;
  std::int64_t batch;
  std::int64_t keep;  // kept patches per image; 0 = all
};

mint::ViTConfig deit_tiny() {
  mint::ViTConfig c;
  c.img_size = 224, c.patch = 16, c.in_chans = 3, c.dim = 192, c.depth = 12, c.heads = 3, c.mlp_hidden = 768;
  c.classes = 1000;
  return c;
}

mint::ViTConfig small_vit() {
  mint::ViTConfig c;
  c.img_size = 28, c.patch = 4, c.in_chans = 1, c.dim = 64, c.depth = 4, c.heads = 4, c.mlp_hidden = 256;
  c.classes = 10;
  return c;
}

// The formula in the header comment.
double iteration_flops(const mint::ViTConfig& c, std::int64_t batch, std::int64_t kept) {
  const double b = static_cast<double>(batch), kp = static_cast<double>(kept), e = c.extra_tokens();
  const double t = e + kp, d = c.dim, f = c.mlp_hidden, p = static_cast<double>(c.in_chans) * c.patch * c.patch;
  const double nc = c.classes, l = c.depth;
  return 2.0 * (2.0 * b * kp * p * d + 2.0 * b * e * d * nc) + l * (4.0 * b * t * (4.0 * d * d + 2.0 * d * f) + 12.0 * b * t * t * d);
}

void bm_iteration(benchmark::State& st, Case cs) {
  using mint::Tensor;
  const auto& cfg = cs.cfg;
  mint::ViTLoadOptions opt;
  opt.heads = cfg.heads;
  opt.eps = cfg.eps;
  auto model = mint::ViT<>::from_tensors(mint::test::philox_vit_weights(cfg, 1234), opt);
  auto images = Tensor<>::empty(mint::Shape{cs.batch, cfg.in_chans, cfg.img_size, cfg.img_size});
  mint::fill_uniform(images, 1235, 0, -1.0f, 1.0f);
  std::vector<int> labels(static_cast<std::size_t>(cs.batch));
  for (std::int64_t i = 0; i < cs.batch; ++i) labels[static_cast<std::size_t>(i)] = static_cast<int>((7 * i + 3) % cfg.classes);

  const std::int64_t n = cfg.num_patches(), kept = cs.keep > 0 ? cs.keep : n;
  mint::nn::TokenIndex keep{cs.batch, kept, std::vector<std::int32_t>(static_cast<std::size_t>(cs.batch * kept))};
  std::mt19937 gen(42);
  std::vector<std::int32_t> perm(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < cs.batch; ++i) {  // a random distinct keep set per image, in random order
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), gen);
    std::copy(perm.begin(), perm.begin() + kept, keep.index.begin() + i * kept);
  }
  const mint::nn::TokenIndex* keep_ptr = cs.keep > 0 ? &keep : nullptr;

  float loss = 0.0f;
  for (auto _ : st) {
    auto logits = model.forward(images, keep_ptr);
    auto dlogits = Tensor<>::zeros(logits.shape());
    loss = mint::nn::cross_entropy(logits, labels, &dlogits);
    auto dimages = model.backward(dlogits, mint::Backward::InputOnly);
    benchmark::DoNotOptimize(dimages.data());
    benchmark::ClobberMemory();
  }
  const double flops = iteration_flops(cfg, cs.batch, kept);
  st.SetItemsProcessed(st.iterations() * cs.batch);
  st.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["GFLOP_per_iter"] = flops * 1e-9;
  // value iterations/1000 as an inverted rate = 1000 * seconds / iterations
  st.counters["ms_per_iter"] = benchmark::Counter(static_cast<double>(st.iterations()) / 1000.0,
                                                  benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  st.counters["threads"] = static_cast<double>(mint::cpu::num_threads());
  st.counters["loss"] = loss;
  st.counters["batch"] = static_cast<double>(cs.batch);
  st.counters["tokens"] = static_cast<double>(kept + cfg.extra_tokens());
}

}  // namespace

int main(int argc, char** argv) {
  if (!mint_bench::take_gemm_flag(argc, argv)) return 2;
  const Case cases[] = {{"deit_tiny_full", deit_tiny(), 8, 0},
                        {"deit_tiny_keep50", deit_tiny(), 8, 50},
                        {"small_full", small_vit(), 128, 0}};
  for (const auto& c : cases)
    benchmark::RegisterBenchmark((std::string("vit_iteration/") + c.name).c_str(), bm_iteration, c)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  benchmark::AddCustomContext("gemm", mint::cpu::describe(mint::cpu::gemm_choice()));
  benchmark::AddCustomContext("omp_max_threads", std::to_string(mint::cpu::num_threads()));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
