// Selector micro-benchmark: each PatchSelector ranking N = 196 active patches for a batch of 128 images
// (what a schedule event costs), with last-block attention values from the Philox stream.
#include <benchmark/benchmark.h>

#include <vector>

#include "mint/core/rng.hpp"
#include "mint/inversion/selectors.hpp"

namespace {

template <class Selector>
void BM_rank(benchmark::State& state) {
  const int batch = 128, n = static_cast<int>(state.range(0));
  std::vector<std::int32_t> active(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) active[static_cast<std::size_t>(i)] = (i * 37) % n;  // a scrambled token order
  mint::Tensor<> attn = mint::Tensor<>::empty(mint::Shape{batch, n});
  mint::fill_uniform(attn, 1, 0, 0.0f, 1.0f);
  const Selector sel;
  int iteration = 0;
  for (auto _ : state) {
    ++iteration;
    for (int b = 0; b < batch; ++b) {
      mint::RankInput in{active, {attn.data() + b * n, static_cast<std::size_t>(n)}, 14, b, iteration, 7};
      auto r = sel.rank(in);
      benchmark::DoNotOptimize(r.data());
    }
  }
  state.SetItemsProcessed(state.iterations() * batch);  // images ranked
}

}  // namespace

BENCHMARK(BM_rank<mint::HighAttention>)->Arg(196)->Arg(46);
BENCHMARK(BM_rank<mint::LowAttention>)->Arg(196)->Arg(46);
BENCHMARK(BM_rank<mint::Random>)->Arg(196)->Arg(46);
BENCHMARK(BM_rank<mint::TopRegion>)->Arg(196)->Arg(46);
BENCHMARK_MAIN();
