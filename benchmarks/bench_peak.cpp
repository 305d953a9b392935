// bench_peak: the machine's FP32 peak, measured: each thread runs independent chains of vector fused
// multiply-adds (AVX-512 where the build targets it, else AVX2 + FMA), enough chains to cover the FMA latency on
// every FMA port, so the rate is the cores' FMA throughput at the clock they actually run. It is the roof
// docs/performance.md states each phase's distance from (cores x clock x FMA width x 2), measured because a
// virtual machine reports only its nominal clock.
//
// Counters: GFLOP/s (2 flops per lane per FMA), and the clock it implies for `fma_ports` FMA units per core
// (GHz = GFLOP/s / (threads x 2 x lanes x fma_ports)); fma_ports defaults to 2 (Intel server cores since
// Skylake-SP's Gold/Platinum SKUs: two 512-bit FMA units).
#include <benchmark/benchmark.h>
#include <immintrin.h>
#include <omp.h>

#include <cstdint>

namespace {

#if defined(__AVX512F__)
using Vec = __m512;
constexpr int kLanes = 16;
inline Vec splat(float v) { return _mm512_set1_ps(v); }
inline Vec fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
inline Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
inline void store(float* t, Vec v) { _mm512_storeu_ps(t, v); }
#elif defined(__AVX2__) && defined(__FMA__)
using Vec = __m256;
constexpr int kLanes = 8;
inline Vec splat(float v) { return _mm256_set1_ps(v); }
inline Vec fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
inline void store(float* t, Vec v) { _mm256_storeu_ps(t, v); }
#else
#error "bench_peak needs AVX-512F or AVX2 + FMA (the build's -march=native)"
#endif

constexpr int kChains = 16;  // >= latency (4 cycles) x ports (2): every FMA unit busy every cycle

// n rounds of kChains independent FMAs; returns a value the compiler cannot drop.
float fma_chains(std::int64_t n, float seed) {
  Vec acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = splat(seed + static_cast<float>(c));
  const Vec a = splat(0.999999f), b = splat(1e-7f);
  for (std::int64_t i = 0; i < n; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = fma(acc[c], a, b);
  Vec s = acc[0];
  for (int c = 1; c < kChains; ++c) s = add(s, acc[c]);
  float lanes[kLanes];
  store(lanes, s);
  float total = 0.0f;
  for (float v : lanes) total += v;
  return total;
}

void BM_fma_peak(benchmark::State& state) {
  const int threads = state.range(0) == 0 ? omp_get_max_threads() : static_cast<int>(state.range(0));
  constexpr std::int64_t kRounds = 1 << 22;
  float sink = 0.0f;
  for (auto _ : state) {
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += fma_chains(kRounds, static_cast<float>(omp_get_thread_num()));
    benchmark::DoNotOptimize(sink);
  }
  const double flops = 2.0 * kLanes * kChains * static_cast<double>(kRounds) * threads;
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = threads;
  state.counters["lanes"] = kLanes;
  state.counters["GHz_if_2_fma_ports"] =
      benchmark::Counter(flops * 1e-9 / (threads * 2.0 * kLanes * 2.0), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_fma_peak)->Arg(1)->Arg(0)->ArgName("threads(0=team)")->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
