// bench_inversion -- the inversion engine end to end: mint::Inverter with its real policies (CE + TV, Adam on
// the active pixels, clipping, the schedule's ranking and bookkeeping), not just the model's forward/backward.
//
// Two families, each on two models:
//   teacher    the embedded Fashion-MNIST ViT (models/fmnist_vit.safetensors: 28 px, patch 4, N = 49, dim 64,
//              depth 4, heads 4, MLP 128, 10 classes)
//   deit_tiny  the DeiT-Tiny shape (224 px, patch 16, N = 196, dim 192, depth 12, heads 3, MLP 768, 1000
//              classes) with deterministic Philox weights (tests/models/vit_weights.hpp)
//
// iteration/<model>/<schedule>/active:<K>
//   One iteration with K active patches per image, for the counts each schedule passes through (DMI: N; SMI 76 %:
//   the ProgressivePrune stages; PRI v = 4: the Rebirth stages). Batch: teacher 128, deit_tiny 8. Each benchmark
//   iteration is a 1 + M iteration run whose first iteration prunes N - K patches; the manual time is the mean
//   of the M iterations at K (M = 4), so the number is one iteration at K, event bookkeeping excluded.
//
// run/<model>/<method>
//   A whole run that produces (at least) 128 output images: DMI and SMI invert 128 trajectories, PRI v inverts
//   ceil(128 / v) trajectories of v images each (v = 7: 19 trajectories, 133 images). Iterations: teacher
//   T = 280, deit_tiny T = 28 (divisible by 2, 4 and 7, so every PRI stage has the same length). SMI's
//   four prune points 50/100/200/300 of T = 4000 are scaled to T: t_k = max(k, round(t_k * T / 4000)), so the
//   same share of the run (92.5 % at T = 4000) is spent at the final sparsity as far as T allows; its ratio per
//   stage r gives the sparsity levels of PRI Table A1: r = 0.16, 0.30, 0.39 -> 196 -> 96, 46, 26 patches
//   (51 %, 77 %, 87 %); N = 49 -> 23, 11, 6.
//   Counters: images, trajectories, final_active, theorem1_cost_vs_dmi (Theorem 1's cost of this method / DMI's per
//   output image; SMI: SMI* at the same final sparsity), GFLOP (executed GEMM FLOPs, mint/inversion/
//   cost.hpp, from the actual active counts), peak_MiB (tensor memory above what was live before the run: the
//   image, Adam state, activations, saved tensors, stored sparse images), iterations.
//
// benchmarks/compare_inversion.sh runs this beside benchmarks/invert_pytorch.py and prints the tables.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "mint/backend/cpu/parallel.hpp"
#include "gemm_flag.hpp"
#include "mint/core/allocator.hpp"
#include "mint/inversion/cost.hpp"
#include "mint/inversion/inverter.hpp"
#include "mint/models/vit.hpp"
#include "models/vit_weights.hpp"

namespace {

using Model = mint::ViT<>;

struct Setup {
  const char* name;
  int iter_batch;   // batch of the iteration/ family
  int iterations;   // T of the run/ family
};

Model& model(const std::string& name) {
  static Model teacher = Model::load(std::string(MINT_MODELS_DIR) + "/fmnist_vit.safetensors");
  static Model deit = [] {
    mint::ViTConfig c;  // DeiT-Tiny
    c.img_size = 224, c.patch = 16, c.in_chans = 3, c.dim = 192, c.depth = 12, c.heads = 3, c.mlp_hidden = 768;
    c.classes = 1000;
    mint::ViTLoadOptions o;
    o.heads = c.heads;
    return Model::from_tensors(mint::test::philox_vit_weights(c, 1234), o);
  }();
  return name == "teacher" ? teacher : deit;
}

mint::InversionOptions options(int iterations) {
  mint::InversionOptions o;
  o.iterations = iterations;
  o.seed = 7;
  o.pixel_lo = -3.0f, o.pixel_hi = 3.0f;  // a valid range, so the clip runs as in a real inversion
  return o;
}

std::vector<int> labels(int batch, int classes) {
  std::vector<int> l(static_cast<std::size_t>(batch));
  for (int i = 0; i < batch; ++i) l[static_cast<std::size_t>(i)] = i % classes;
  return l;
}

// A schedule that leaves K patches active after the first iteration and never changes them again.
struct StartAt {
  int keep;
  mint::ScheduleEvent event(int t, int, int active, int) const {
    if (t == 1 && active > keep) return {mint::ScheduleEvent::Kind::Prune, active - keep};
    return {};
  }
};

void bm_iteration(benchmark::State& st, std::string name, int batch, int keep) {
  auto& m = model(name);
  constexpr int kTimed = 4;
  mint::Inverter<Model, mint::ClassObjective, mint::TV, mint::HighAttention, StartAt> inv(
      m, {}, mint::TV{1e-4f}, {}, StartAt{keep}, {}, options(1 + kTimed));
  const auto l = labels(batch, m.config().classes);
  for (auto _ : st) {
    const auto res = inv.run(l);
    double s = 0.0;
    for (std::size_t i = 1; i < res.history.size(); ++i) s += res.history[i].seconds;
    st.SetIterationTime(s / kTimed);
  }
  const double flops = mint::inversion_iteration_flops(m.config(), batch, keep);
  st.counters["GFLOP_per_iter"] = flops * 1e-9;
  st.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["active"] = keep;
  st.counters["batch"] = batch;
}

// Scaled SMI prune points (see the header comment).
std::vector<int> smi_points(int total) {
  const int paper[] = {50, 100, 200, 300};
  std::vector<int> pts;
  for (int k = 0; k < 4; ++k)
    pts.push_back(std::max(k + 1, static_cast<int>(std::lround(paper[k] * static_cast<double>(total) / 4000.0))));
  return pts;
}

template <class Sch>
void bm_run(benchmark::State& st, std::string name, int iterations, Sch schedule, int per_trajectory) {
  auto& m = model(name);
  const int trajectories = (128 + per_trajectory - 1) / per_trajectory;
  mint::Inverter<Model, mint::ClassObjective, mint::TV, mint::HighAttention, Sch> inv(
      m, {}, mint::TV{1e-4f}, {}, schedule, {}, options(iterations));
  const auto l = labels(trajectories, m.config().classes);
  double images = 0.0;
  mint::CostMeter meter(m.config());  // the last run's cost (mint/inversion/cost.hpp)
  for (auto _ : st) {
    m.release_cache();  // the previous run's saved activations would otherwise count as live at begin()
    meter = mint::CostMeter(m.config());
    meter.begin(trajectories);
    const auto res = inv.run(l, std::ref(meter));
    meter.end();
    st.SetIterationTime(meter.seconds());
    images = static_cast<double>(res.images.size());
  }
  st.counters["images"] = images;
  st.counters["trajectories"] = trajectories;
  st.counters["iterations"] = iterations;
  st.counters["GFLOP"] = meter.flops() * 1e-9;
  st.counters["peak_MiB"] = meter.peak_mib();
  st.counters["final_active"] = static_cast<double>(meter.final_active());
  // PRI Theorem 1's cost per output image over DMI's (SMI: its idealised SMI* at the same final sparsity)
  st.counters["theorem1_cost_vs_dmi"] = meter.theorem1_cost_vs_dmi(per_trajectory, iterations);
}

}  // namespace

int main(int argc, char** argv) {
  if (!mint_bench::take_gemm_flag(argc, argv)) return 2;
  const Setup setups[] = {{"teacher", 128, 280}, {"deit_tiny", 8, 28}};
  for (const auto& s : setups) {
    const int n = model(s.name).num_patches();
    // the active counts each schedule passes through
    std::vector<std::pair<std::string, std::vector<int>>> stages{{"dmi", {n}}, {"smi76", {n}}, {"pri4", {}}};
    for (int k = 0, a = n; k < 4; ++k) stages[1].second.push_back(a = static_cast<int>(std::floor(a * 0.7)));
    for (int k = 0; k < 4; ++k) stages[2].second.push_back(n - k * (n / 4));
    for (const auto& [sched, counts] : stages)
      for (int keep : counts)
        benchmark::RegisterBenchmark(
            ("iteration/" + std::string(s.name) + "/" + sched + "/active:" + std::to_string(keep)).c_str(),
            bm_iteration, std::string(s.name), s.iter_batch, keep)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond);
    const std::string pre = "run/" + std::string(s.name) + "/";
    const int t = s.iterations;
    auto reg = [&](const std::string& method, auto schedule, int per) {
      benchmark::RegisterBenchmark((pre + method).c_str(), bm_run<decltype(schedule)>, std::string(s.name), t,
                                   schedule, per)
          ->UseManualTime()
          ->Iterations(1)
          ->Repetitions(1)  // a whole run is long and its noise small next to the differences measured
          ->Unit(benchmark::kSecond);
    };
    reg("dmi", mint::Dense{}, 1);
    reg("smi50", mint::ProgressivePrune{smi_points(t), 0.16f}, 1);
    reg("smi76", mint::ProgressivePrune{smi_points(t), 0.30f}, 1);
    reg("smi86", mint::ProgressivePrune{smi_points(t), 0.39f}, 1);
    for (int v : {2, 4, 7}) reg("pri" + std::to_string(v), mint::Rebirth{v}, v);
  }
  benchmark::AddCustomContext("omp_max_threads", std::to_string(mint::cpu::num_threads()));
  benchmark::AddCustomContext("gemm", mint::cpu::describe(mint::cpu::gemm_choice()));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
