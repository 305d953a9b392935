// bench_inversion_cuda -- per-iteration time of the inversion engine on CUDA (mint::Inverter<ViT<Cuda>>, its real
// policies: CE + TV on the GPU, input-only backward, masked Adam, clip, the schedule's ranking) for DMI, SMI 76 %
// and PRI v = 4 on the DeiT-Tiny, -Small and -Base shapes at 224 px (Philox weights: time depends on shapes only).
//
// For each model and each active count K a schedule passes through (DMI: 196; SMI 76 %: 196, 137, 95, 66, 46
// (ratio 0.3 after 50/100/200/300 of T = 4000); PRI v = 4: 196, 147, 98, 49), one run of 1 + warmup + M
// iterations whose first iteration prunes to K; the time is the mean wall time of the last M iterations (each
// ends with the loss read back, so it is complete GPU work). Per method it then prints the mean iteration time
// over a T = 4000 run (the stages weighted by their iteration counts) and, for PRI, per output image (v images
// per trajectory). Also: executed GEMM FLOPs (mint/inversion/cost.hpp) and achieved FLOP/s, the fraction of
// --peak-tflops if given, and the device memory peak of the caching allocator.
//
//   bench_inversion_cuda [--batch 128] [--models deit_tiny,deit_small,deit_base] [--iters 5] [--warmup 2]
//                        [--graph] [--peak-tflops 67] [--json out.json]
//
// --graph: InversionOptions::cuda_graph (the iteration captured in a CUDA graph between schedule events; with
// the default warm-up of 2 every timed iteration is a graph replay: iteration 1 prunes, 2 runs uncaptured at K,
// 3 is captured).
//
// Output: one line per case on stdout (and a JSON file with --json). Compile-only so far: it has never run.
#include "mint/inversion/inverter_cuda.cuh"  // first: the CUDA ops before the templates

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "mint/inversion/cost.hpp"
#include "models/vit_weights.hpp"

namespace {

struct Shape3 {
  const char* name;
  int dim, depth, heads;
};
constexpr Shape3 kModels[] = {{"deit_tiny", 192, 12, 3}, {"deit_small", 384, 12, 6}, {"deit_base", 768, 12, 12}};

struct StartAt {  // leaves K patches active after iteration 1, never changes them again
  int keep;
  mint::ScheduleEvent event(int t, int, int active, int) const {
    if (t == 1 && active > keep) return {mint::ScheduleEvent::Kind::Prune, active - keep};
    return {};
  }
};

struct Stage {
  int active, iterations;  // K and how many of T = 4000 iterations run at K
};

}  // namespace

int main(int argc, char** argv) {
  int batch = 128, iters = 5, warmup = 2;
  double peak_tflops = 0.0;
  bool graph = false;
  std::string models = "deit_tiny,deit_small,deit_base", json;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_inversion_cuda: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--batch") batch = std::stoi(next());
    else if (a == "--iters") iters = std::stoi(next());
    else if (a == "--warmup") warmup = std::stoi(next());
    else if (a == "--peak-tflops") peak_tflops = std::stod(next());
    else if (a == "--models") models = next();
    else if (a == "--graph") graph = true;
    else if (a == "--json") json = next();
    else {
      std::fprintf(stderr, "bench_inversion_cuda: unknown argument '%s' (see the header of bench_inversion_cuda.cu)\n",
                   a.c_str());
      return 2;
    }
  }
  if (!mint::cuda::device_available()) {
    std::fprintf(stderr, "bench_inversion_cuda: no usable CUDA device (%s)\n", mint::cuda::device_status().reason.c_str());
    return 1;
  }
  cudaDeviceProp prop{};
  MINT_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, batch %d, %d timed iterations after %d warm-up, CUDA graph %s\n", prop.name, batch, iters,
              warmup, graph ? "on" : "off");
  std::ostringstream js;
  js << "{\"device\": \"" << prop.name << "\", \"batch\": " << batch << ", \"graph\": " << (graph ? "true" : "false")
     << ", \"results\": [";
  bool first = true;
  const int n = 196, total = 4000;
  // the stages of each method over T = 4000
  std::vector<Stage> smi;
  {
    const int pts[] = {50, 100, 200, 300};
    int a = n, prev = 0;
    for (int k = 0; k < 4; ++k) {
      smi.push_back({a, pts[k] - prev});
      prev = pts[k];
      a = static_cast<int>(std::floor(a * 0.7));
    }
    smi.push_back({a, total - prev});
  }
  std::vector<Stage> pri;
  for (int k = 0; k < 4; ++k) pri.push_back({n - k * (n / 4), total / 4});
  const std::vector<std::pair<std::string, std::vector<Stage>>> methods{{"dmi", {{n, total}}}, {"smi76", smi}, {"pri4", pri}};
  std::vector<int> labels(static_cast<std::size_t>(batch));
  for (int i = 0; i < batch; ++i) labels[static_cast<std::size_t>(i)] = i % 1000;

  for (const auto& s : kModels) {
    if (models.find(s.name) == std::string::npos) continue;
    mint::ViTConfig c;
    c.img_size = 224, c.patch = 16, c.in_chans = 3, c.dim = s.dim, c.depth = s.depth, c.heads = s.heads;
    c.mlp_hidden = 4 * s.dim, c.classes = 1000;
    auto model = mint::ViT<mint::Cpu>::from_tensors(mint::test::philox_vit_weights(c, 1234), {.heads = c.heads})
                     .to<mint::Cuda>();
    mint::InversionOptions o;
    o.iterations = 1 + warmup + iters;
    o.seed = 7;
    o.pixel_lo = -3.0f, o.pixel_hi = 3.0f;
    o.cuda_graph = graph;
    for (const auto& [method, stages] : methods) {
      double weighted = 0.0, weighted_flops = 0.0;
      for (const auto& st : stages) {
        mint::Inverter<mint::ViT<mint::Cuda>, mint::ClassObjective, mint::TV, mint::HighAttention, StartAt> inv(
            model, {}, mint::TV{1e-4f}, {}, StartAt{st.active}, {}, o);
        model.release_cache();
        mint::cuda::synchronize();
        mint::cuda::reset_peak_memory();
        const auto before = mint::cuda::memory_stats();
        const auto res = inv.run(labels);
        const auto after = mint::cuda::memory_stats();
        double sec = 0.0;
        for (int t = 1 + warmup; t < o.iterations; ++t) sec += res.history[static_cast<std::size_t>(t)].seconds;
        sec /= iters;
        const double flops = mint::inversion_iteration_flops(c, batch, st.active);
        weighted += sec * st.iterations / total;
        weighted_flops += flops * st.iterations / total;
        const double tflops = flops / sec * 1e-12;
        std::printf("%-11s %-6s active %3d: %8.2f ms/iter  %7.2f TFLOP/s%s  run memory %.0f MiB (device peak %.0f MiB)\n",
                    s.name, method.c_str(), st.active, sec * 1e3, tflops,
                    peak_tflops > 0 ? (" (" + std::to_string(100.0 * tflops / peak_tflops).substr(0, 5) + " % of peak)").c_str() : "",
                    static_cast<double>(after.peak - before.live) / (1 << 20), static_cast<double>(after.peak) / (1 << 20));
        // peak - live before: the run's own memory (images, Adam state, activations); the allocator peak adds
        // the weights and whatever else was live
        js << (first ? "" : ",") << "\n {\"model\": \"" << s.name << "\", \"method\": \"" << method
           << "\", \"active\": " << st.active << ", \"ms\": " << sec * 1e3 << ", \"tflops\": " << tflops
           << ", \"peak_mib\": " << static_cast<double>(after.peak) / (1 << 20) << "}";
        first = false;
      }
      const double per_image = method == "pri4" ? weighted / 4 : weighted;
      std::printf("%-11s %-6s mean over T = %d: %8.2f ms/iter, %8.2f ms/iter per output image, %7.2f TFLOP/s\n", s.name,
                  method.c_str(), total, weighted * 1e3, per_image * 1e3, weighted_flops / weighted * 1e-12);
      js << ",\n {\"model\": \"" << s.name << "\", \"method\": \"" << method << "\", \"mean_ms\": " << weighted * 1e3
         << ", \"per_image_ms\": " << per_image * 1e3 << "}";
    }
  }
  js << "\n]}\n";
  if (!json.empty()) std::ofstream(json) << js.str();
  return 0;
}
