// mint-invert: invert a ViT into images with DMI, SMI or PRI (any selector, optional jitter/flip), print a
// progress bar and a summary (speed, FLOPs executed vs PRI's Theorem 1 model, peak memory), and write a PNG
// grid (absent patches black), the synthetic dataset (safetensors) and a JSON report of every figure.
//
// Every option and input is checked before the inversion starts (`mint-invert --help` lists them); an option the
// chosen method ignores, or a PRI schedule that cannot give v images in T iterations, is an error. The outputs go
// to --out as one set (io::AtomicFolder: all or nothing). SIGINT / SIGTERM stop the run at the next iteration
// and write what is finished (PRI's detached images), marked "interrupted" in report.json; exit code 130 / 143.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <numeric>
#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include <mint/mint.hpp>

#include "inversion_cli.hpp"

namespace {

struct Args : mint::cli::InversionArgs {
  std::string out = "out/invert", preset = "paper";
};

void add_options(mint::cli::Command& c, Args& a) {
  mint::cli::add_inversion_options(c, a);
  c.text("--out", a.out, "output folder (replaced as a whole by each run)");
  c.choice("--preset", a.preset, "paper: the printed equations; official: SMI's code forms (docs/inversion.md)",
           {"paper", "official"});
}

// Everything the run needs that can be wrong, checked before it starts.
void validate(const mint::cli::Command& c, const Args& a, const mint::ViTConfig& cfg) {
  mint::cli::validate_inversion(c, a, cfg);
  if (a.preset == "official")
    for (const char* o : {"--selector", "--augment", "--l2"})
      mint::check(!c.given(o), o, ": --preset official fixes it (the high-attention selector, SMI's pixel "
                  "jitter/flip, the TV prior only); drop it or use --preset paper");
}

int run(const mint::cli::Command& c, Args& a) {
  mint::cli::apply_policies_file(c, a, mint::preset_form(a.preset));  // before the model: a bad file fails fast
  mint::ModelSource src = mint::cli::open_inversion_model(c, a);
  auto& model = src.vit;
  const auto& cfg = model.config();
  validate(c, a, cfg);
  const mint::Normalization norm = src.normalization.value.for_channels(cfg.in_chans, "normalisation");
  // the output folder can be written, and replaced: checked before the run
  mint::io::AtomicFolder out(a.out, {"images.png", "images", "dataset.safetensors", "report.html", "report.json"});

  mint::InversionOptions opt;
  opt.iterations = a.iterations, opt.lr = a.lr, opt.seed = a.seed;
  opt.pixel_lo = norm.lo(0), opt.pixel_hi = norm.hi(0);
  const mint::PresetForm form = mint::preset_form(a.preset);
  mint::apply_preset(opt, form, norm);  // per-channel clip from the model's normalisation
  opt.stop = mint::cli::stop_flag();
  std::vector<int> labels(static_cast<std::size_t>(a.batch));
  for (int i = 0; i < a.batch; ++i) labels[static_cast<std::size_t>(i)] = i % cfg.classes;

  const auto schedule = mint::cli::schedule_of(a);

  std::printf("mint-invert: %s (%s preset), selector %s, augment %s, %d iterations, batch %d, model %s\n%s\n",
              a.method.c_str(), a.preset.c_str(), a.selector.c_str(), a.augment.c_str(), a.iterations, a.batch,
              a.model.c_str(), src.describe().c_str());
  mint::CostMeter meter(cfg);  // executed FLOPs, peak memory, Theorem 1 (mint/inversion/cost.hpp)
  const auto t0 = std::chrono::steady_clock::now();
  auto progress = [&](const mint::IterationStats& s) {
    meter(s);
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s.iteration % 10 == 0 || s.iteration == a.iterations) {
      const int w = 30, done = w * s.iteration / a.iterations;
      std::fprintf(stderr, "\r[%s%s] %5d/%d  loss %8.4f  active %3lld  %6.1f it/s", std::string(done, '#').c_str(),
                   std::string(w - done, '.').c_str(), s.iteration, a.iterations, s.loss,
                   static_cast<long long>(s.active), s.iteration / el);
    }
  };
  meter.begin(a.batch);
  mint::InversionResult res = form == mint::PresetForm::Official
      ? mint::run_official(model, schedule, labels, opt, a.tv, progress) : std::visit(
      [&](auto sch, auto sel, auto aug) {
        mint::Inverter<mint::ViT<>, mint::ClassObjective, mint::Sum<mint::TV, mint::L2>, decltype(sel), decltype(sch),
                       decltype(aug)>
            inv(model, {}, mint::Sum<mint::TV, mint::L2>{mint::TV{a.tv}, mint::L2{a.l2}}, sel, sch, aug, opt);
        return inv.run(labels, progress);
      },
      schedule, mint::selectors().make(a.selector), mint::cli::augmentation_of(a));
  meter.end();
  std::fprintf(stderr, "\n");
  const double secs = meter.seconds();
  const int done = static_cast<int>(res.history.size());
  if (res.interrupted)
    std::printf("\ninterrupted after %d of %d iterations: writing the %zu finished images\n", done, a.iterations,
                res.images.size());

  // what ran vs Theorem 1 (PRI, App. F), both per output image relative to DMI for the same iterations
  const double n_out = static_cast<double>(res.images.size());
  const double flops = meter.flops(), measured_rel = meter.cost_vs_dmi(n_out);
  const double model_rel = meter.theorem1_cost_vs_dmi(a.method == "pri" ? a.v : 1, a.iterations);
  const double peak_mb = meter.peak_mib();
  const double final_loss = done > 0 ? static_cast<double>(res.history.back().loss) : 0.0;
  std::printf("\n%-36s %s\n", "method", a.method.c_str());
  std::printf("%-36s %zu (from %d trajectories)\n", "images produced", res.images.size(), a.batch);
  std::printf("%-36s %.2f s, %.2f it/s\n", "inversion time", secs, done / secs);
  std::printf("%-36s %.3f\n", "final loss", final_loss);
  std::printf("%-36s %.2f GFLOP total, %.3f GFLOP per output image\n", "GEMM FLOPs executed", flops / 1e9,
              n_out > 0 ? flops / 1e9 / n_out : 0.0);
  std::printf("%-36s %.3f measured, %.3f Theorem 1%s\n", "cost per output image vs DMI", measured_rel, model_rel,
              a.method == "smi" ? " (idealised SMI*)" : "");
  std::printf("%-36s %.1f MiB\n", "peak tensor memory", peak_mb);

  const std::int64_t m = static_cast<std::int64_t>(res.images.size());
  nlohmann::json loss_curve = nlohmann::json::array(), active_curve = nlohmann::json::array();
  for (const auto& s : res.history) loss_curve.push_back(s.loss), active_curve.push_back(s.active);
  nlohmann::json rep = {
      {"command", "mint-invert"}, {"command_line", c.command_line()}, {"method", a.method},
      {"selector", a.selector}, {"augment", a.augment}, {"preset", a.preset},
      {"policies", mint::cli::policies_json(a, form)}, {"preset_settings", mint::preset_to_json(form)},
 {"v", a.v}, {"prune", a.prune}, {"ratio", a.ratio},
      {"iterations", a.iterations}, {"iterations_done", done}, {"interrupted", res.interrupted},
      {"batch", a.batch}, {"lr", a.lr}, {"tv", a.tv}, {"l2", a.l2}, {"seed", a.seed}, {"model", a.model},
      {"normalization", {{"mean", norm.mean}, {"std", norm.std}, {"source", src.normalization.from}}},
      {"heads", {{"value", src.heads.value}, {"source", src.heads.from}}},
      {"threads", mint::cpu::num_threads()}, {"images_produced", m}, {"seconds", secs},
      {"iterations_per_s", done / secs}, {"gemm_flops_total", flops}, {"cost_vs_dmi_measured", measured_rel},
      {"cost_vs_dmi_theorem1", model_rel}, {"peak_tensor_mib", peak_mb},
      {"cost", meter.to_json(n_out, a.method == "pri" ? a.v : 1, a.iterations)}, {"loss", loss_curve},
      {"active_patches", active_curve}};
  // The outputs (mint/report/run_report.hpp: readable grid, image folder, dataset, report.html), then report.json,
  // all into the staging folder; commit() makes them --out together.
  nlohmann::json conf = nlohmann::json::array();
  if (m > 0) {
    mint::report::RunDescription desc;
    desc.title = "mint-invert: " + a.method + " (" + a.preset + " preset) on " + a.model;
    desc.command_line = c.command_line(), desc.model_path = a.model, desc.normalization = norm;
    desc.class_names = src.class_names.value;
    for (const char* k : {"method", "preset", "selector", "augment", "v", "prune", "ratio", "iterations", "batch",
                          "lr", "tv", "l2", "seed", "threads"})
      desc.settings[k] = rep[k];
    for (const char* k : {"images_produced", "seconds", "iterations_per_s", "gemm_flops_total",
                          "cost_vs_dmi_measured", "cost_vs_dmi_theorem1", "peak_tensor_mib"})
      desc.cost[k] = rep[k];
    desc.dataset_metadata = {{"method", a.method}, {"model", a.model}, {"seed", std::to_string(a.seed)},
                             {"preset", a.preset}};
    const auto outs = mint::report::write_inversion_outputs(out.path(""), model, res, desc);
    conf = outs.confidence;
    std::printf("%-36s %.4f mean, %.4f min\n", "teacher confidence (target class)",
                std::accumulate(outs.confidence.begin(), outs.confidence.end(), 0.0) / static_cast<double>(m),
                *std::min_element(outs.confidence.begin(), outs.confidence.end()));
  }
  rep["teacher_confidence"] = conf;
  mint::cli::write_json(out.path("report.json"), rep);
  out.commit();
  if (m > 0)
    std::printf("\nwrote %s: images.png (readable grid), images/<class>/<n>.png, dataset.safetensors, report.html, "
                "report.json\n", a.out.c_str());
  else
    std::printf("\nwrote %s/report.json (no image was finished)\n", a.out.c_str());
  return res.interrupted ? mint::cli::interrupted_exit_code() : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  mint::cli::Command cmd("mint-invert", "Inverts a ViT into images with DMI, SMI or PRI (docs/usage.md).");
  add_options(cmd, a);
  cmd.stop_gracefully();  // the engine polls the stop flag (InversionOptions::stop)
  return mint::cli::main(cmd, argc, argv, [&] { return run(cmd, a); });
}
