// mint-invert: invert a ViT into images with DMI, SMI or PRI (any selector, optional jitter/flip), print a
// progress bar and a summary (speed, FLOPs executed vs PRI's Theorem 1 model, peak memory), and write a PNG
// grid (absent patches black), the synthetic dataset (safetensors) and a JSON report of every figure.
//
//   mint-invert [--method dmi|smi|pri] [--selector high|low|random|top] [--v 4] [--prune 50,100,200,300]
//               [--ratio 0.3] [--augment none|jitterflip] [--iterations 400] [--batch 10] [--lr 0.25]
//               [--tv 1e-4] [--l2 0] [--seed 0] [--model PATH] [--recipe PATH.json] [--out DIR]
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include <mint/mint.hpp>

#include "inversion_policies.hpp"

namespace {

using Kv = std::map<std::string, std::string>;

struct Args {
  std::string method = "pri", selector = "high", augment = "none", prune = "50,100,200,300";
  std::string model = MINT_DEFAULT_MODEL, recipe, out = "out/invert";
  int v = 4, iterations = 400, batch = 10;
  float ratio = 0.3f, lr = 0.25f, tv = 1e-4f, l2 = 0.0f;
  std::uint64_t seed = 0;
};

Args parse(int argc, char** argv) {
  Kv kv;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--help" || k == "-h") {
      std::puts("mint-invert [--method dmi|smi|pri] [--selector high|low|random|top] [--v 4] [--prune 50,100,200,300]\n"
                "            [--ratio 0.3] [--augment none|jitterflip] [--iterations 400] [--batch 10] [--lr 0.25]\n"
                "            [--tv 1e-4] [--l2 0] [--seed 0] [--model PATH] [--recipe PATH.json] [--out DIR]");
      std::exit(0);
    }
    mint::check(k.rfind("--", 0) == 0 && i + 1 < argc, "mint-invert: expected --option value, got '", k, "'");
    kv[k.substr(2)] = argv[++i];
  }
  Args a;
  auto take = [&](const char* k, auto& dst) {
    auto it = kv.find(k);
    if (it == kv.end()) return;
    std::istringstream is(it->second);
    if constexpr (std::is_same_v<std::remove_reference_t<decltype(dst)>, std::string>) dst = it->second;
    else mint::check(static_cast<bool>(is >> dst) && is.eof(), "mint-invert: --", k, " expects a number, got '", it->second, "'");
    kv.erase(it);
  };
  take("method", a.method), take("selector", a.selector), take("augment", a.augment), take("prune", a.prune);
  take("model", a.model), take("recipe", a.recipe), take("out", a.out), take("v", a.v), take("iterations", a.iterations);
  take("batch", a.batch), take("ratio", a.ratio), take("lr", a.lr), take("tv", a.tv), take("l2", a.l2), take("seed", a.seed);
  mint::check(kv.empty(), "mint-invert: unknown option --", kv.empty() ? "" : kv.begin()->first);
  mint::check(a.iterations > 0 && a.batch > 0, "mint-invert: --iterations and --batch must be positive");
  return a;
}

using mint::examples::augment_of;  // the policy tables: examples/inversion_policies.hpp
using mint::examples::schedule_of;
using mint::examples::selector_of;

int run(const Args& a) {
  auto model = mint::ViT<>::load(a.model);
  const auto& cfg = model.config();
  // pixel normalisation: from the teacher's recipe when there is one (valid range [0, 1] before normalising)
  float mean = 0.2860f, sd = 0.3530f;
  std::string recipe = a.recipe.empty() ? std::filesystem::path(a.model).replace_extension(".json").string() : a.recipe;
  if (std::filesystem::exists(recipe)) {
    auto j = nlohmann::json::parse(std::ifstream(recipe));
    if (j.contains("normalisation")) mean = j["normalisation"].value("mean", mean), sd = j["normalisation"].value("std", sd);
  }
  mint::InversionOptions opt;
  opt.iterations = a.iterations, opt.lr = a.lr, opt.seed = a.seed;
  opt.pixel_lo = (0.0f - mean) / sd, opt.pixel_hi = (1.0f - mean) / sd;
  std::vector<int> labels(static_cast<std::size_t>(a.batch));
  for (int i = 0; i < a.batch; ++i) labels[static_cast<std::size_t>(i)] = i % cfg.classes;

  std::printf("mint-invert: %s, selector %s, augment %s, %d iterations, batch %d, model %s\n", a.method.c_str(),
              a.selector.c_str(), a.augment.c_str(), a.iterations, a.batch, a.model.c_str());
  double flops = 0.0;
  const auto t0 = std::chrono::steady_clock::now();
  auto progress = [&](const mint::IterationStats& s) {
    flops += mint::inversion_iteration_flops(cfg, a.batch, s.active);
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s.iteration % 10 == 0 || s.iteration == a.iterations) {
      const int w = 30, done = w * s.iteration / a.iterations;
      std::fprintf(stderr, "\r[%s%s] %5d/%d  loss %8.4f  active %3lld  %6.1f it/s", std::string(done, '#').c_str(),
                   std::string(w - done, '.').c_str(), s.iteration, a.iterations, s.loss, static_cast<long long>(s.active),
                   s.iteration / el);
    }
  };
  mint::cpu::reset_peak_bytes();
  const std::size_t live0 = mint::cpu::live_bytes();
  mint::InversionResult res = std::visit(
      [&](auto sch, auto sel, auto aug) {
        mint::Inverter<mint::ViT<>, mint::ClassObjective, mint::Sum<mint::TV, mint::L2>, decltype(sel), decltype(sch),
                       decltype(aug)>
            inv(model, {}, mint::Sum<mint::TV, mint::L2>{mint::TV{a.tv}, mint::L2{a.l2}}, sel, sch, aug, opt);
        return inv.run(labels, progress);
      },
      schedule_of(a.method, a.v, a.prune, a.ratio, "mint-invert"), selector_of(a.selector, "mint-invert"),
      augment_of(a.augment, "mint-invert"));
  std::fprintf(stderr, "\n");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double peak_mb = static_cast<double>(mint::cpu::peak_bytes() - live0) / (1 << 20);

  // Theorem 1 (PRI, App. F) vs what ran, both relative to DMI for the same iterations and output count
  const double n_out = static_cast<double>(res.images.size());
  const double dense_per_image = mint::inversion_iteration_flops(cfg, 1, cfg.num_patches()) * a.iterations;
  const double measured_rel = flops / n_out / dense_per_image;
  const mint::Theorem1 th{static_cast<double>(cfg.depth), static_cast<double>(cfg.dim), static_cast<double>(cfg.num_patches())};
  // Theorem 1 has SMI only in its idealised form SMI*, which starts with the final sparsity: v = N / kept.
  const double smi_v = static_cast<double>(cfg.num_patches()) / static_cast<double>(res.history.back().active);
  const double model_rel = a.method == "pri"   ? th.pri(1, a.iterations, a.v) / th.dmi(1, a.iterations)
                           : a.method == "smi" ? th.smi_ideal(1, a.iterations, smi_v) / th.dmi(1, a.iterations)
                                               : 1.0;
  std::printf("\n%-36s %s\n", "method", a.method.c_str());
  std::printf("%-36s %zu (from %d trajectories)\n", "images produced", res.images.size(), a.batch);
  std::printf("%-36s %.2f s, %.2f it/s\n", "inversion time", secs, a.iterations / secs);
  std::printf("%-36s %.3f\n", "final loss", static_cast<double>(res.history.back().loss));
  std::printf("%-36s %.2f GFLOP total, %.3f GFLOP per output image\n", "GEMM FLOPs executed", flops / 1e9, flops / 1e9 / n_out);
  std::printf("%-36s %.3f measured, %.3f Theorem 1%s\n", "cost per output image vs DMI", measured_rel, model_rel,
              a.method == "smi" ? " (idealised SMI*)" : "");
  std::printf("%-36s %.1f MiB\n", "peak tensor memory", peak_mb);

  std::filesystem::create_directories(a.out);
  const std::int64_t m = static_cast<std::int64_t>(res.images.size()), np = cfg.num_patches();
  auto grid = mint::Tensor<>::empty(mint::Shape{m, cfg.in_chans, cfg.img_size, cfg.img_size});
  auto masks = mint::Tensor<>::empty(mint::Shape{m, np});
  const std::int64_t per = grid.numel() / m;
  for (std::int64_t i = 0; i < m; ++i) {
    const auto& s = res.images[static_cast<std::size_t>(i)];
    std::copy(s.pixels.data(), s.pixels.data() + per, grid.data() + i * per);
    std::copy(s.mask.data(), s.mask.data() + np, masks.data() + i * np);
  }
  mint::io::write_png(a.out + "/images.png",
                      mint::io::image_grid(grid, static_cast<int>(std::min<std::int64_t>(m, 10)), 2, &masks, cfg.patch,
                                           {opt.pixel_lo, opt.pixel_hi}));
  mint::save_synthetic_dataset(a.out + "/dataset.safetensors", res.images, {{"method", a.method}, {"model", a.model}});
  nlohmann::json loss_curve = nlohmann::json::array(), active_curve = nlohmann::json::array();
  for (const auto& s : res.history) loss_curve.push_back(s.loss), active_curve.push_back(s.active);
  nlohmann::json rep = {
      {"command", "mint-invert"}, {"method", a.method}, {"selector", a.selector}, {"augment", a.augment}, {"v", a.v},
      {"prune", a.prune}, {"ratio", a.ratio}, {"iterations", a.iterations}, {"batch", a.batch}, {"lr", a.lr},
      {"tv", a.tv}, {"l2", a.l2}, {"seed", a.seed}, {"model", a.model}, {"threads", mint::cpu::num_threads()},
      {"images_produced", m}, {"seconds", secs}, {"iterations_per_s", a.iterations / secs},
      {"gemm_flops_total", flops}, {"cost_vs_dmi_measured", measured_rel},
      {"cost_vs_dmi_theorem1", model_rel},
      {"peak_tensor_mib", peak_mb}, {"loss", loss_curve}, {"active_patches", active_curve}};
  std::ofstream(a.out + "/report.json") << rep.dump(1) << "\n";
  std::printf("\nwrote %s/images.png, %s/dataset.safetensors, %s/report.json\n", a.out.c_str(), a.out.c_str(), a.out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const mint::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
}
