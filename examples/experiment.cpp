// mint-experiment: what DMI, SMI (50/76/86 % sparsity) and PRI (v = 2/4/7) images are good for, on the
// embedded Fashion-MNIST teacher (issue 4; PRI Sec. 5, Tables 2, 3, A4, A5, Figures 1b, 5, 6; SMI Sec. 5).
//
// For every seed and method: invert the same number of output images with the same iteration budget T per
// trajectory, then
//   - distil the teacher into a student whose backbone was pre-trained on real images of classes 0-4 only
//     (--backbone, from mint-train-teacher --classes 0,1,2,3,4), and report its accuracy on the five classes
//     it never saw (5-9) and on all ten;
//   - calibrate W4/A8 and W8/A8 fake quantization of the teacher on the synthetic images (SMI Eq. 5);
//   - record the teacher's confidence in each image's target class (histograms per method, per PRI stage);
//   - for PRI v = 4, repeat distillation and calibration with the images of one detachment point only.
// Baselines with the same image count: real training images (all ten classes) and Gaussian noise (the
// inversion's own starting point). Every inverted set and every downstream figure is cached under --cache,
// so a rerun (or a run after a crash) recomputes nothing finished (<cache>/results.json). Writes
// <out>/results.md (the tables) and <out>/summary.json (the figures' data).
//
//   mint-experiment --backbone PATH [--teacher PATH] [--seeds 3] [--images 280] [--iterations 280]
//                   [--inv-batch 70] [--augment jitterflip|none] [--tv 3e-2] [--epochs 30] [--batch 64] [--lr 0.1]
//                   [--tau 4] [--probe 1] [--flip 1] [--test-limit -1] [--quant-test 2000]
//                   [--cache DIR] [--out DIR] [--efficiency-only 0|1] [--data DIR] [--methods LIST|none]
//                   [--preset paper|official] [--kept last|best] [--bn-prior 0] [--bn-cnn PATH]
//                   [--budgets B1,B2,...] [--ladder-methods LIST] [--ladder-seeds N] [--pool-steps N]
//
// --budgets adds the equal-budget ladder (experiment/ladder.hpp; PRI Fig. 1b): per budget of executed FLOPs, each
// method makes as many images as it buys, and the students and quantization are measured on them.
//
// Components: experiment/runner.hpp (options, methods, inversion, students, quantization settings, cache),
// mint/tasks/statistics.hpp (mean, sd, paired differences, histograms), experiment/report.hpp (the tables and
// <out>/summary.json); the figures are drawn from summary.json by scripts/plot_results.py (matplotlib).
//
// --efficiency-only 1 re-runs the inversions of seed 0 without the cache and writes only the efficiency table
// (<out>/efficiency.md): run it on an idle machine for clean timings.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "experiment/report.hpp"
#include "experiment/runner.hpp"

namespace mint::experiment {

inline std::string load_avg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

// One line per finished set.
inline void print_downstream(int seed, const std::string& name, const Downstream& d) {
  std::printf("[seed %d] %s: student unseen %.1f%% (5-way %.1f%%) all %.1f%%; W4/A8 %.1f%% W4/A4 %.1f%%\n", seed,
              name.c_str(), d.student.unseen, d.student.unseen_within, d.student.all, d.quant.at("W4/A8"),
              d.quant.at("W4/A4"));
  std::fflush(stdout);
}

inline int run(const Args& a) {
  const auto t_start = std::chrono::steady_clock::now();
  const std::string load_start = load_avg();
  auto teacher = ViT<>::load(a.teacher);
  const float lo = (0.0f - mint::tasks::kFashionMnistMean) / mint::tasks::kFashionMnistStd;
  const float hi = (1.0f - mint::tasks::kFashionMnistMean) / mint::tasks::kFashionMnistStd;
  std::vector<Method> methods;
  if (a.methods != "none")
    for (const auto& n : mint::examples::split_list(a.methods)) methods.push_back(method_of(n));
  mint::check(a.methods == "none" || !methods.empty(), "--methods: the list is empty (none: the baselines only)");
  fs::create_directories(a.out);
  mint::cli::check_writable_file(a.out + "/results.md", "--out");
  const std::string tag = set_tag(a);

  if (a.efficiency_only) {  // fresh timings of seed 0, nothing read from or written to the cache
    std::ostringstream md;
    md << "Command: `" << a.command << "` (" << mint::cpu::num_threads() << " thread(s)); seed 0. Peak: tensor memory "
          "above what was live before each batch (the largest over the batches).\n\n";
    std::vector<std::string> names;
    std::map<std::string, std::vector<InversionCost>> costs;
    for (const auto& m : methods) {
      InversionCost c;
      invert(teacher, m, a, 0, lo, hi, c);
      names.push_back(m.name), costs[m.name].push_back(c);
      std::printf("%s: %.1f s\n", m.name.c_str(), c.seconds());
      std::fflush(stdout);
    }
    efficiency_table(md, names, costs);
    md << "\nload average before / after: " << load_start << " / " << load_avg() << "\n";
    mint::io::write_file_atomically(a.out + "/efficiency.md", md.str());
    std::printf("wrote %s/efficiency.md\n", a.out.c_str());
    return 0;
  }

  Cache cache(a.cache);
  const auto test = mint::tasks::load_fashion_mnist(a.data, false, a.test_limit);
  const auto quant_test = mint::tasks::load_fashion_mnist(a.data, false, a.quant_test);
  const auto train = mint::tasks::load_fashion_mnist(a.data, true);
  Context ctx{a, teacher, test, quant_test, {}};
  if (a.probe) {  // the frozen backbone's features of the test images, computed once
    auto extractor = mint::tasks::with_identity_head(ViT<>::load(a.backbone));
    ctx.test_features = mint::tasks::outputs_of(extractor, mint::tasks::dense_sparse_images(test, teacher.num_patches()));
  }
  const std::string dtag = "v3_E" + std::to_string(a.epochs) + "_b" + std::to_string(a.batch) + "_lr" + fmt(a.lr, 4) +
                           "_tau" + fmt(a.tau, 2) + "_probe" + std::to_string(a.probe) + "_flip" +
                           std::to_string(a.flip) + "_Q" + std::to_string(a.quant_test) + "_test" +
                           std::to_string(a.test_limit) + "_" + fs::path(a.backbone).filename().string() +
                           teacher_tag(a);

  // reference points: teacher FP accuracy, the backbone before distillation
  json ref;
  if (cache.has("reference/" + dtag)) ref = cache.get("reference/" + dtag);
  else {
    const auto t = evaluate(teacher, test);
    auto bb = ViT<>::load(a.backbone);
    const auto b = evaluate(bb, test);
    ref = {{"teacher_all", t.all}, {"teacher_unseen", t.unseen}, {"teacher_fp_quant_test",
                                                                   100.0 * mint::tasks::accuracy(teacher, quant_test).value()},
           {"backbone_all", b.all}, {"backbone_unseen", b.unseen}, {"backbone_seen", b.seen}};
    cache.put("reference/" + dtag, ref);
  }

  Results res(a);
  for (const auto& m : methods) res.names.push_back(m.name);
  auto& costs = res.costs;
  auto& down = res.down;
  auto& conf = res.conf;
  auto& stage_down = res.stage_down;
  auto& stage_conf = res.stage_conf;
  auto& pri4_stage_iteration = res.pri4_stage_iteration;

  for (int seed = 0; seed < a.seeds; ++seed) {
    const auto useed = static_cast<std::uint64_t>(seed);
    for (const auto& m : methods) {
      const std::string key = m.name + "_" + tag + "_s" + std::to_string(seed);
      InversionCost c;
      const auto data = cached_inversion(teacher, cache, m, a, seed, lo, hi, c);
      std::printf("[seed %d] %s: %lld images, %.1f s inversion\n", seed, m.name.c_str(), static_cast<long long>(data.size()),
                  c.seconds());
      costs[m.name].push_back(c);
      const auto cf = mint::tasks::teacher_confidence(teacher, data);
      conf[m.name].insert(conf[m.name].end(), cf.begin(), cf.end());
      if (m.kind == Method::Pri) {
        // stage k = the k-th detachment point (by iteration); the last is T
        std::map<int, std::vector<std::size_t>> by_it;
        for (std::size_t i = 0; i < data.size(); ++i) by_it[data[i].iteration].push_back(i);
        int k = 0;
        for (const auto& [it, idx] : by_it) {
          ++k;
          const std::string sk = m.name + "@" + std::to_string(k);
          for (auto i : idx) stage_conf[sk].push_back(cf[i]);
          if (m.v != 4) continue;
          pri4_stage_iteration[k] = it;
          std::vector<SparseImage> sub;
          for (auto i : idx) sub.push_back(data[i]);
          const std::string dk = "downstream/" + sk + "_" + tag + "_s" + std::to_string(seed) + "_" + dtag;
          stage_down[sk].push_back(cached_downstream(ctx, cache, dk, sub, useed));
        }
      }
      const std::string dk = "downstream/" + key + "_" + dtag;
      down[m.name].push_back(cached_downstream(ctx, cache, dk, data, useed));
      print_downstream(seed, m.name, down[m.name].back());
      std::fflush(stdout);
      if (ladder_method(a, m.name, seed)) res.ladder[m.name].push_back(run_ladder(ctx, cache, m, seed, data, c, lo, hi, dtag));
    }
    // baselines: the same number of real training images (a seeded sample over all ten classes), and Gaussian
    // noise clipped to the valid range (the inversions' starting point)
    for (const std::string base : {"real", "gaussian"}) {
      // the baselines depend on the image count only, not on the inversion's settings
      const std::string dk = "downstream/" + base + "_I" + std::to_string(a.images) + "_s" + std::to_string(seed) + "_" +
                             dtag;
      std::vector<SparseImage> data;
      if (base == "real") {
        const auto perm = mint::tasks::detail::permutation(static_cast<std::size_t>(train.size()), useed, 0xbea1u);
        const auto all = mint::tasks::dense_sparse_images(train, teacher.num_patches());
        for (int i = 0; i < a.images; ++i) data.push_back(all[perm[static_cast<std::size_t>(i)]]);
      } else {
        auto g = mint::tasks::gaussian_images(a.images, teacher.config(), 0x9a55u + useed);
        for (std::int64_t i = 0; i < g.numel(); ++i) g[i] = std::clamp(g[i], lo, hi);
        mint::tasks::LabeledImages li{g, std::vector<int>(static_cast<std::size_t>(a.images), 0)};
        data = mint::tasks::dense_sparse_images(li, teacher.num_patches());
        for (int i = 0; i < a.images; ++i) data[static_cast<std::size_t>(i)].label = i % kClasses;
      }
      down[base].push_back(cached_downstream(ctx, cache, dk, data, useed));
      const auto cf = mint::tasks::teacher_confidence(teacher, data);
      if (base == "gaussian") conf[base].insert(conf[base].end(), cf.begin(), cf.end());
      print_downstream(seed, base, down[base].back());
    }
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  res.ref = ref;
  res.test_images = test.size(), res.quant_test_images = quant_test.size();
  res.wall = wall, res.load_start = load_start, res.load_end = load_avg();
  const std::string md = results_markdown(res);
  mint::io::write_file_atomically(a.out + "/results.md", md);
  mint::io::write_file_atomically(a.out + "/summary.json", summary_json(res).dump(1) + "\n");
  std::printf("\n%s\nwrote %s/results.md and summary.json (figures: scripts/plot_results.py) (%.0f s)\n", md.c_str(),
              a.out.c_str(), wall);
  return 0;
}

}  // namespace mint::experiment

int main(int argc, char** argv) {
  mint::experiment::Args a;
  mint::cli::Command cmd("mint-experiment", "DMI vs SMI vs PRI downstream on the embedded teacher (docs/results.md).");
  mint::experiment::add_options(cmd, a);
  return mint::cli::main(cmd, argc, argv, [&] {
    mint::experiment::validate(cmd, a);
    a.command = cmd.command_line();
    return mint::experiment::run(a);
  });
}
