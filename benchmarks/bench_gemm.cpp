// bench_gemm -- SGEMM through mint::cpu::gemm (the one CPU GEMM) at the shapes the ViTs run, on the candidate
// named by --gemm=NAME (eigen, openblas, blis, onednn, libxsmm: mint/backend/cpu/gemm_backends.hpp; default: the
// build's choice), for calls on the team and inside parallel regions alike.
//
// Run with OMP_NUM_THREADS=2 (the reference machine has 2 cores). Every benchmark reports GFLOP/s =
// 2*M*N*K per GEMM / wall time, and err_vs_bound: the candidate's largest error on that shape and layout against a
// double reference, over the float error bound of a correct GEMM (cpu::gemm_error_vs_bound; <= 1 is correct).
// benchmarks/compare_gemm.sh runs every candidate and prints the table.
//
// Layouts are exactly what the library calls (row-major, see gemm.hpp):
//   linear forward   y = x W^T        NT  gemm(false, true,  M=rows, N=out, K=in), beta = 1 (bias pre-filled)
//   linear backward  dx += dy W       NN  gemm(false, false, M=rows, N=in,  K=out), beta = 1
//   attention        per (image, head), single-threaded GEMMs inside an `omp parallel for` over B*H, reading
//                    Q, K, V in place from the fused qkv buffer (leading dimension 3*D):
//                      qk: S = scale Q K^T  (NT, T x T x dh)      pv: O = P V      (NN, T x dh x T)
//                      tn: dV += P^T dO     (TN, T x dh x T; dK += dS^T Q is the same shape)
//                      (dP = dO V^T is qk-shaped, dQ += dS K is pv-shaped)
//   square           1024^3 NN on the whole team and on one thread: the machine's SGEMM peak.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "mint/backend/cpu/gemm.hpp"
#include "mint/backend/cpu/parallel.hpp"

#include "gemm_flag.hpp"

namespace {

using i64 = std::int64_t;

std::vector<float> random_buffer(i64 n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = u(gen);
  return v;
}

// The candidate's results check on this shape and layout (alpha, beta as the benchmark calls it).
void set_check(benchmark::State& st, bool single, bool ta, bool tb, i64 m, i64 n, i64 k, float alpha, float beta) {
  const auto c = mint::cpu::gemm_choice();
  st.counters["err_vs_bound"] =
      mint::cpu::gemm_error_vs_bound(single ? c.single : c.team, ta, tb, m, n, k, alpha, beta);
}

void set_gflops(benchmark::State& st, double flops_per_iter) {
  st.counters["GFLOP/s"] = benchmark::Counter(flops_per_iter * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["threads"] = static_cast<double>(mint::cpu::num_threads());
}

// One GEMM C[M,N] (+)= op(A) op(B) on the whole OpenMP team (the library's linear layers).
void bm_gemm(benchmark::State& st, bool ta, bool tb, i64 m, i64 n, i64 k, float beta, int threads) {
  const int saved = mint::cpu::num_threads();
  if (threads > 0) mint::cpu::set_num_threads(threads);
  auto a = random_buffer(m * k, 1), b = random_buffer(k * n, 2), c = random_buffer(m * n, 3);
  const i64 lda = ta ? m : k, ldb = tb ? k : n;
  for (auto _ : st) {
    mint::cpu::gemm(ta, tb, m, n, k, 1.0f, a.data(), lda, b.data(), ldb, beta, c.data(), n);
    benchmark::ClobberMemory();
  }
  set_gflops(st, 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k));
  set_check(st, false, ta, tb, m, n, k, 1.0f, beta);
  mint::cpu::set_num_threads(saved);
}

enum class AttnGemm { qk, pv, tn };

// B*H single-threaded GEMMs in an omp loop, with the strides of mint::nn::attention(_backward).
void bm_attention(benchmark::State& st, AttnGemm kind, i64 batch, i64 heads, i64 t, i64 dh) {
  const i64 d = heads * dh, bh = batch * heads;
  auto qkv = random_buffer(batch * t * 3 * d, 1), probs = random_buffer(bh * t * t, 2);
  auto out = random_buffer(batch * t * d, 3), dout = random_buffer(batch * t * d, 4);
  auto dqkv = random_buffer(batch * t * 3 * d, 5);
  const float scale = 0.125f;
  for (auto _ : st) {
#pragma omp parallel for schedule(static)
    for (i64 x = 0; x < bh; ++x) {
      const i64 i = x / heads, h = x % heads;
      const float* q = qkv.data() + i * t * 3 * d + h * dh;
      float* p = probs.data() + x * t * t;
      switch (kind) {
        case AttnGemm::qk:
          mint::cpu::gemm(false, true, t, t, dh, scale, q, 3 * d, q + d, 3 * d, 0.0f, p, t);
          break;
        case AttnGemm::pv:
          mint::cpu::gemm(false, false, t, dh, t, 1.0f, p, t, q + 2 * d, 3 * d, 0.0f, out.data() + i * t * d + h * dh, d);
          break;
        case AttnGemm::tn:
          mint::cpu::gemm(true, false, t, dh, t, 1.0f, p, t, dout.data() + i * t * d + h * dh, d, 1.0f,
                          dqkv.data() + i * t * 3 * d + 2 * d + h * dh, 3 * d);
          break;
      }
    }
    benchmark::ClobberMemory();
  }
  set_gflops(st, 2.0 * static_cast<double>(bh) * static_cast<double>(t) * static_cast<double>(t) *
                     static_cast<double>(dh));
  if (kind == AttnGemm::qk) set_check(st, true, false, true, t, t, dh, scale, 0.0f);
  if (kind == AttnGemm::pv) set_check(st, true, false, false, t, dh, t, 1.0f, 0.0f);
  if (kind == AttnGemm::tn) set_check(st, true, true, false, t, dh, t, 1.0f, 1.0f);
}

struct Linear {
  const char* name;
  i64 rows, in, out;
};

// The forward (NT) and input-gradient (NN) GEMM of each linear layer of one model at one token count.
void register_linears(const std::string& model, const std::vector<Linear>& layers) {
  for (const auto& l : layers) {
    const std::string fwd = "gemm/" + model + "/" + l.name + "_fwd_NT/M:" + std::to_string(l.rows) +
                            "/N:" + std::to_string(l.out) + "/K:" + std::to_string(l.in);
    const std::string bwd = "gemm/" + model + "/" + l.name + "_bwd_NN/M:" + std::to_string(l.rows) +
                            "/N:" + std::to_string(l.in) + "/K:" + std::to_string(l.out);
    benchmark::RegisterBenchmark(fwd.c_str(), bm_gemm, false, true, l.rows, l.out, l.in, 1.0f, 0)->UseRealTime();
    benchmark::RegisterBenchmark(bwd.c_str(), bm_gemm, false, false, l.rows, l.in, l.out, 1.0f, 0)->UseRealTime();
  }
}

void register_attention(const std::string& model, i64 batch, i64 heads, i64 t, i64 dh) {
  const std::string shape = "/BH:" + std::to_string(batch * heads) + "/T:" + std::to_string(t) + "/dh:" + std::to_string(dh);
  benchmark::RegisterBenchmark(("attn/" + model + "/qk_NT" + shape).c_str(), bm_attention, AttnGemm::qk, batch, heads, t, dh)
      ->UseRealTime();
  benchmark::RegisterBenchmark(("attn/" + model + "/pv_NN" + shape).c_str(), bm_attention, AttnGemm::pv, batch, heads, t, dh)
      ->UseRealTime();
  benchmark::RegisterBenchmark(("attn/" + model + "/dv_TN" + shape).c_str(), bm_attention, AttnGemm::tn, batch, heads, t, dh)
      ->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  if (!mint_bench::take_gemm_flag(argc, argv)) return 2;
  // DeiT-Tiny shape, batch 8: 197 tokens (all 196 patches) -> 1576 rows; 51 tokens (50 kept) -> 408 rows.
  const std::vector<Linear> deit_full{{"qkv", 1576, 192, 576}, {"proj", 1576, 192, 192}, {"fc1", 1576, 192, 768},
                                      {"fc2", 1576, 768, 192}, {"patch_embed", 1568, 768, 192}};
  const std::vector<Linear> deit_keep{{"qkv", 408, 192, 576}, {"proj", 408, 192, 192}, {"fc1", 408, 192, 768},
                                      {"fc2", 408, 768, 192}, {"patch_embed", 400, 768, 192}};
  // Small model (28x28, patch 4, dim 64, mlp 256), batch 128: 50 tokens -> 6400 rows; 49 patches -> 6272.
  const std::vector<Linear> small{{"qkv", 6400, 64, 192}, {"proj", 6400, 64, 64}, {"fc1", 6400, 64, 256},
                                  {"fc2", 6400, 256, 64}, {"patch_embed", 6272, 16, 64}};
  benchmark::RegisterBenchmark("gemm/square/NN/M:1024/N:1024/K:1024/threads:team", bm_gemm, false, false, 1024, 1024,
                               1024, 0.0f, 0)
      ->UseRealTime();
  benchmark::RegisterBenchmark("gemm/square/NN/M:1024/N:1024/K:1024/threads:1", bm_gemm, false, false, 1024, 1024,
                               1024, 0.0f, 1)
      ->UseRealTime();
  register_linears("deit_full", deit_full);
  register_linears("deit_keep50", deit_keep);
  register_linears("small", small);
  register_attention("deit_full", 8, 3, 197, 64);
  register_attention("deit_keep50", 8, 3, 51, 64);
  register_attention("small", 128, 4, 50, 16);
  // the teacher's late SMI / PRI stages (K = 23, 11 active patches: 24 and 12 tokens), where a candidate's per-call
  // cost shows (docs/performance.md, "Which GEMM": whole iterations)
  register_attention("small_k23", 128, 4, 24, 16);
  register_attention("small_k11", 128, 4, 12, 16);

  const auto choice = mint::cpu::gemm_choice();
  benchmark::AddCustomContext("gemm_team", std::string(mint::cpu::gemm_backend_name(choice.team)));
  benchmark::AddCustomContext("gemm_single", std::string(mint::cpu::gemm_backend_name(choice.single)));
  benchmark::AddCustomContext("omp_max_threads", std::to_string(mint::cpu::num_threads()));
  benchmark::AddCustomContext("eigen_version", std::to_string(EIGEN_WORLD_VERSION) + "." +
                                                   std::to_string(EIGEN_MAJOR_VERSION) + "." +
                                                   std::to_string(EIGEN_MINOR_VERSION));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
