// mint-dci-results: regenerates docs/results_dci.md (DCI, seed 000 Appendix B-D on the Fashion-MNIST CNN).
//
// 1. A synthetic training set by DeepInversion of the CNN teacher through the Inverter (CE + BNPrior + TV, no
//    real data), cached in --cache and extended batch by batch (a rerun reuses it; a killed run keeps what
//    finished).
// 2. For each source (real training images, synthetic) and size (--sizes): DCI modules trained progressively,
//    stage by stage (tasks::DCI::train_stage), saved after each stage to --out/dci_<source>_<n>.safetensors (a
//    rerun resumes after the last finished stage).
// 3. For every split depth (stem, layer1..4): PSNR / SSIM / teacher agreement of the first --eval real TEST
//    images recovered from their features, a PNG grid per depth (docs/dci_depth<k>.png), and the markdown.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <mint/inversion/bn_prior.hpp>
#include <mint/inversion/inverter.hpp>
#include <mint/inversion/sparse_image.hpp>
#include <mint/io/image.hpp>
#include <mint/models/resnet.hpp>
#include <mint/tasks/dci.hpp>
#include <mint/tasks/evaluate.hpp>

#include "cli.hpp"

using namespace mint;
namespace fs = std::filesystem;

namespace {
struct Args {
  std::string model_path = MINT_DEFAULT_CNN, data_dir = "/usr/share/datasets/fashion-mnist";
  std::vector<std::int64_t> sizes{1000, 10000};
  std::string cache = "dci_out/synthetic.safetensors", out = "dci_out", docs = "docs";
  std::int64_t n_syn = 1000, syn_iters = 40, syn_batch = 50, eval_n = 500, stem_steps = 400;
  tasks::DciOptions dopt{.cycle_weight = 1.0f, .lr = 3e-3f, .batch = 32, .steps_alone = 25, .steps_finetune = 25,
                         .seed = 0};
};

void add_options(cli::Command& c, Args& a) {
  c.existing("--model", a.model_path, "CNN teacher");
  c.existing("--data", a.data_dir, "Fashion-MNIST idx.gz folder");
  c.numbers("--sizes", a.sizes, "training-set sizes, comma-separated", 2, 60000);
  c.number("--synthetic", a.n_syn, "synthetic images to have in the cache (10000 for the full study)", 1, 10'000'000);
  c.number("--syn-iters", a.syn_iters, "DeepInversion iterations per image batch", 1, 1'000'000);
  c.number("--syn-batch", a.syn_batch, "images per DeepInversion batch (50: 5 per class)", 1, 10000);
  c.text("--cache", a.cache, "synthetic-set cache (safetensors; extended batch by batch)");
  c.number("--steps-alone", a.dopt.steps_alone, "Adam steps for module k alone, k >= 1", 0, 100'000'000);
  c.number("--steps-finetune", a.dopt.steps_finetune, "Adam steps fine-tuning modules 0..k, k >= 1", 0, 100'000'000);
  c.number("--stem-steps", a.stem_steps, "Adam steps of stage 0 (the stem module; ~20x cheaper per step)", 0,
           100'000'000);
  c.number("--batch", a.dopt.batch, "DCI training batch (batch norm needs >= 2)", 2, 65536);
  c.number("--lr", a.dopt.lr, "Adam learning rate", 1e-9, 1e3);
  c.number("--cycle", a.dopt.cycle_weight, "weight of the cycle-consistency term", 0, 1e6);
  c.number("--eval", a.eval_n, "test images evaluated", 1, 10000);
  c.text("--out", a.out, "folder of the trained modules");
  c.text("--docs", a.docs, "folder of results_dci.md and the PNG grids");
  c.number("--seed", a.dopt.seed, "seed", 0, std::numeric_limits<std::uint64_t>::max());
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Tensor<Cpu> first_n(const Tensor<Cpu>& x, std::int64_t n) {
  n = std::min(n, x.dim(0));
  const std::int64_t per = x.numel() / x.dim(0);
  auto y = Tensor<Cpu>::empty(Shape{n, x.dim(1), x.dim(2), x.dim(3)});
  std::copy(x.data(), x.data() + n * per, y.data());
  return y;
}

int run(const Args& a, const std::string& command_line) {
  // the options by name (references, not a structured binding: clang cannot capture those in the lambdas below)
  const std::string &model_path = a.model_path, &data_dir = a.data_dir, &cache = a.cache, &out = a.out,
                    &docs = a.docs;
  const std::int64_t &n_syn = a.n_syn, &syn_iters = a.syn_iters, &syn_batch = a.syn_batch, &eval_n = a.eval_n,
                     &stem_steps = a.stem_steps;
  const auto& sizes = a.sizes;
  const tasks::DciOptions& dopt = a.dopt;
  dopt.validate();
  fs::create_directories(out);
  fs::create_directories(docs);
  cli::check_writable_file(out + "/dci.safetensors", "--out");
  cli::check_writable_file(docs + "/results_dci.md", "--docs");
  cli::check_writable_file(cache, "--cache");
  const auto t_all = std::chrono::steady_clock::now();

  auto teacher = ResNet<>::load(model_path);
  teacher.eval();
  const float mean = tasks::kFashionMnistMean, sd = tasks::kFashionMnistStd;

  // ---- 1. synthetic set (DeepInversion through the Inverter), cached and extended batch by batch
  std::vector<SparseImage> syn;
  if (fs::exists(cache)) syn = load_synthetic_dataset(cache);
  const std::size_t syn_cached = syn.size();
  double syn_seconds = 0.0;
  {
    ResNetAdapter adapter(teacher);
    using DeepInversion = Inverter<ResNetAdapter, ClassObjective, Sum<BNPrior, TV>, HighAttention, Dense>;
    while (static_cast<std::int64_t>(syn.size()) < n_syn) {
      const auto t0 = std::chrono::steady_clock::now();
      InversionOptions io;
      io.iterations = static_cast<int>(syn_iters);
      io.lr = 0.1f;  // the settings of tests/models/test_resnet_teacher.cpp
      io.seed = 1000 + syn.size();
      io.pixel_lo = (0.0f - mean) / sd;
      io.pixel_hi = (1.0f - mean) / sd;
      DeepInversion inv(adapter, {}, Sum<BNPrior, TV>(BNPrior{&teacher, 0.05f, 10.0f}, TV{1e-4f}), {}, {}, {}, io);
      std::vector<int> labels;
      for (std::int64_t i = 0; i < syn_batch; ++i) labels.push_back(static_cast<int>((syn.size() + i) % 10));
      auto res = inv.run(labels);
      for (auto& im : res.images) syn.push_back(im);
      io::write_atomically(cache, [&](const std::string& p) {
        save_synthetic_dataset(p, syn, {{"mint.dci.syn_iters", std::to_string(syn_iters)}});
      });
      syn_seconds += seconds_since(t0);
      std::printf("synthetic: %zu / %lld images (%.1f s so far this run)\n", syn.size(), static_cast<long long>(n_syn), syn_seconds);
      std::fflush(stdout);
    }
  }
  const std::int64_t n_syn_have = static_cast<std::int64_t>(syn.size());
  auto syn_images = Tensor<Cpu>::empty(Shape{n_syn_have, 1, 28, 28});
  for (std::int64_t i = 0; i < n_syn_have; ++i)
    std::copy(syn[static_cast<std::size_t>(i)].pixels.data(), syn[static_cast<std::size_t>(i)].pixels.data() + 784, syn_images.data() + i * 784);
  // how well the teacher recognises its own synthetic images
  double syn_acc = 0.0;
  {
    tasks::LabeledImages li{syn_images, {}};
    for (const auto& s : syn) li.labels.push_back(s.label);
    syn_acc = tasks::accuracy(teacher, li).value();
  }

  std::int64_t max_size = 0;
  for (auto n : sizes) max_size = std::max(max_size, n);
  const auto train = tasks::load_fashion_mnist(data_dir, true, max_size);
  const auto test = tasks::load_fashion_mnist(data_dir, false, eval_n);

  struct Row {
    std::string source;
    std::int64_t n_requested, n_used;
    double train_seconds = 0.0;
    std::array<tasks::RecoveryMetrics, tasks::kDciDepths> m;
    std::array<Tensor<Cpu>, tasks::kDciDepths> shown;  // recovered images of the grid
  };
  std::vector<Row> rows;
  std::vector<std::string> skipped;
  const int shown = 8;

  for (const std::string source : {"real", "synthetic"}) {
    for (auto n : sizes) {
      Row r;
      r.source = source;
      r.n_requested = n;
      auto data = source == "real" ? first_n(train.images, n) : first_n(syn_images, n);
      r.n_used = data.dim(0);
      bool dup = false;
      for (const auto& q : rows) dup |= q.source == source && q.n_used == r.n_used;
      if (dup) {
        std::printf("%s %lld: only %lld images available, same as a configuration above; skipped\n", source.c_str(),
                    static_cast<long long>(n), static_cast<long long>(r.n_used));
        skipped.push_back(source + " " + std::to_string(n) + " (only " + std::to_string(r.n_used) + " available)");
        continue;
      }
      const std::string path = out + "/dci_" + source + "_" + std::to_string(r.n_used) + ".safetensors";
      tasks::DCI dci(teacher, dopt.seed);
      if (fs::exists(path)) dci.load(path);
      const auto t0 = std::chrono::steady_clock::now();
      for (int k = dci.trained_depth() + 1; k < tasks::kDciDepths; ++k) {
        const auto ts = std::chrono::steady_clock::now();
        tasks::DciOptions sopt = dopt;
        if (k == 0) sopt.steps_alone = stem_steps;
        auto tail = dci.train_stage(data, k, sopt);
        std::printf("%s %lld: stage %d (%s) L_k alone %.4f, fine-tuned %.4f, %.1f s\n", source.c_str(),
                    static_cast<long long>(r.n_used), k, ResNet<>::stage_name(static_cast<Stage>(k)), tail[0], tail[1],
                    seconds_since(ts));
        std::fflush(stdout);
        // the modules for depth k are those right after stage k: save them per depth, and the running state
        io::write_atomically(path, [&](const std::string& p) { dci.save(p); });
        io::write_atomically(out + "/dci_" + source + "_" + std::to_string(r.n_used) + "_depth" + std::to_string(k) +
                                 ".safetensors",
                             [&](const std::string& p) { fs::copy_file(path, p); });
      }
      r.train_seconds = seconds_since(t0);
      for (int k = 0; k < tasks::kDciDepths; ++k) {
        tasks::DCI dk(teacher, dopt.seed);
        dk.load(out + "/dci_" + source + "_" + std::to_string(r.n_used) + "_depth" + std::to_string(k) + ".safetensors");
        const auto st = static_cast<Stage>(k);
        auto rec = dk.invert(dk.features(test.images, st), st);
        r.m[static_cast<std::size_t>(k)] = tasks::recovery_metrics(teacher, test.images, rec, mean, sd);
        r.shown[static_cast<std::size_t>(k)] = tasks::denormalize01(first_n(rec, shown), mean, sd);
      }
      rows.push_back(std::move(r));
    }
  }

  // ---- grids: row 0 the originals, then one row per (source, size)
  const auto orig = tasks::denormalize01(first_n(test.images, shown), mean, sd);
  for (int k = 0; k < tasks::kDciDepths; ++k) {
    auto all = Tensor<Cpu>::empty(Shape{static_cast<std::int64_t>(rows.size() + 1) * shown, 1, 28, 28});
    std::copy(orig.data(), orig.data() + orig.numel(), all.data());
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto& t = rows[i].shown[static_cast<std::size_t>(k)];
      std::copy(t.data(), t.data() + t.numel(), all.data() + static_cast<std::int64_t>(i + 1) * shown * 784);
    }
    cli::write_png(docs + "/dci_depth" + std::to_string(k) + ".png", io::image_grid(all, shown, 2));
  }

  // ---- markdown
  const double total = seconds_since(t_all);
  std::ostringstream md;
  char buf[512];
  md << "# DCI results: recovering Fashion-MNIST test images from the CNN's features\n\n"
     << "Generated by `mint-dci-results` (examples/dci_results.cpp); do not edit by hand. Method and choices:\n"
     << "docs/dci.md. Command:\n\n    OMP_NUM_THREADS=" << cpu::num_threads() << " " << command_line << "\n\n";
  std::snprintf(buf, sizeof buf,
                "Target: `%s` (%s), eval mode. Evaluated on the first %lld Fashion-MNIST **test** images; PSNR and "
                "SSIM in [0, 1] pixel space (recovered images clipped), agreement = fraction of images where the "
                "CNN's argmax on the recovered image equals its argmax on the original.\n\n",
                model_path.c_str(), teacher.describe().c_str(), static_cast<long long>(test.size()));
  md << buf;
  std::snprintf(buf, sizeof buf,
                "Training: progressive (stage 0: %lld Adam steps; stage k >= 1: module k alone %lld steps, then "
                "modules 0..k %lld steps; batch %lld, lr %g, cycle weight %g), seed %llu. Synthetic set: %lld DeepInversion images "
                "(%lld iterations per batch of %lld, Adam lr 0.1, BNPrior 0.05 x first-layer 10, TV 1e-4; the "
                "teacher classifies %.1f%% of them as their target class), %zu of them read from the cache, "
                "%.0f s spent generating in this run.\n\n",
                static_cast<long long>(stem_steps), static_cast<long long>(dopt.steps_alone),
                static_cast<long long>(dopt.steps_finetune),
                static_cast<long long>(dopt.batch), static_cast<double>(dopt.lr),
                static_cast<double>(dopt.cycle_weight),
                static_cast<unsigned long long>(dopt.seed), static_cast<long long>(n_syn_have),
                static_cast<long long>(syn_iters), static_cast<long long>(syn_batch), 100.0 * syn_acc, syn_cached,
                syn_seconds);
  md << buf;
  md << "| split depth | features | source | train images | PSNR (dB) | SSIM | agreement |\n|---|---|---|---|---|---|---|\n";
  for (int k = 0; k < tasks::kDciDepths; ++k) {
    const auto& c = teacher.config();
    for (const auto& r : rows) {
      const auto& m = r.m[static_cast<std::size_t>(k)];
      const std::string feat = k == 5 ? std::to_string(c.classes) + " logits"
                                      : std::to_string(c.channels(k)) + " x " + std::to_string(c.spatial(k)) + " x " +
                                            std::to_string(c.spatial(k));
      std::snprintf(buf, sizeof buf, "| %s | %s | %s | %lld%s | %.2f | %.3f | %.3f |\n",
                    ResNet<>::stage_name(static_cast<Stage>(k)), feat.c_str(), r.source.c_str(), static_cast<long long>(r.n_used),
                    r.n_used < r.n_requested ? (" (of " + std::to_string(r.n_requested) + " asked)").c_str() : "",
                    m.mean_psnr(), m.mean_ssim(), m.agreement());
      md << buf;
    }
  }
  if (!skipped.empty()) {
    md << "\nNot run (not enough synthetic images in the cache; raise --synthetic):";
    for (const auto& x : skipped) md << " " << x << ";";
    md << "\n";
  }
  md << "\nTraining time per configuration (all 6 stages, this run; 0 = loaded from --out):";
  for (const auto& r : rows) {
    std::snprintf(buf, sizeof buf, " %s %lld: %.0f s;", r.source.c_str(), static_cast<long long>(r.n_used), r.train_seconds);
    md << buf;
  }
  std::snprintf(buf, sizeof buf, " whole run %.0f s on %d thread(s).\n\n", total, cpu::num_threads());
  md << buf;
  // ---- computed comparisons beside the seed's findings
  md << "## Beside the seed's findings (DCI appendix, seed 000)\n\n";
  md << "1. *Quality falls with depth* (Appendix B.1: \"as we progress deeper into the model, the inversion error "
        "will increase\"). Mean PSNR / SSIM per depth here (each configuration):\n\n";
  for (const auto& r : rows) {
    md << "   - " << r.source << " " << r.n_used << ":";
    for (int k = 0; k < tasks::kDciDepths; ++k) {
      std::snprintf(buf, sizeof buf, " %s %.2f / %.3f%s", ResNet<>::stage_name(static_cast<Stage>(k)),
                    r.m[static_cast<std::size_t>(k)].mean_psnr(), r.m[static_cast<std::size_t>(k)].mean_ssim(),
                    k + 1 < tasks::kDciDepths ? "," : "");
      md << buf;
    }
    int falls = 0;
    for (int k = 1; k < tasks::kDciDepths; ++k)
      falls += r.m[static_cast<std::size_t>(k)].mean_psnr() < r.m[static_cast<std::size_t>(k - 1)].mean_psnr();
    std::snprintf(buf, sizeof buf, " (PSNR lower than at the previous depth in %d of %d steps)\n", falls, tasks::kDciDepths - 1);
    md << buf;
  }
  md << "\n2. *Synthetic data close to real* (Appendix D, Fig. 12: LPIPS 0.462 real vs 0.481 synthetic at 1K, 0.430 "
        "vs 0.443 at 10K on ImageNet). PSNR difference real - synthetic at equal size, per depth:\n\n";
  for (const auto& a : rows) {
    if (a.source != "real") continue;
    for (const auto& b : rows) {
      if (b.source != "synthetic" || b.n_used != a.n_used) continue;
      md << "   - " << a.n_used << " images:";
      for (int k = 0; k < tasks::kDciDepths; ++k) {
        std::snprintf(buf, sizeof buf, " %s %+.2f dB (SSIM %+.3f)%s", ResNet<>::stage_name(static_cast<Stage>(k)),
                      a.m[static_cast<std::size_t>(k)].mean_psnr() - b.m[static_cast<std::size_t>(k)].mean_psnr(),
                      a.m[static_cast<std::size_t>(k)].mean_ssim() - b.m[static_cast<std::size_t>(k)].mean_ssim(),
                      k + 1 < tasks::kDciDepths ? "," : "");
        md << buf;
      }
      md << "\n";
    }
  }
  md << "\n3. *More data helps* (Fig. 12: 10K better than 1K, little gain beyond). PSNR of the largest minus the "
        "smallest size per source, per depth:\n\n";
  for (const std::string src : {"real", "synthetic"}) {
    const Row *lo = nullptr, *hi = nullptr;
    for (const auto& r : rows)
      if (r.source == src) {
        if (!lo || r.n_used < lo->n_used) lo = &r;
        if (!hi || r.n_used > hi->n_used) hi = &r;
      }
    if (!lo || lo == hi) {
      md << "   - " << src << ": one size only\n";
      continue;
    }
    md << "   - " << src << " " << hi->n_used << " vs " << lo->n_used << ":";
    for (int k = 0; k < tasks::kDciDepths; ++k) {
      std::snprintf(buf, sizeof buf, " %s %+.2f dB%s", ResNet<>::stage_name(static_cast<Stage>(k)),
                    hi->m[static_cast<std::size_t>(k)].mean_psnr() - lo->m[static_cast<std::size_t>(k)].mean_psnr(),
                    k + 1 < tasks::kDciDepths ? "," : "");
      md << buf;
    }
    md << "\n";
  }
  const auto& tc = teacher.config();
  md << "\n4. *After the final classifier layer little but colour survives* (Appendix C, Fig. 11). The logits row "
        "(" << tc.classes << " numbers per image) against layer4 (" << tc.channels(4) * tc.spatial(4) * tc.spatial(4)
     << " numbers): compare the PSNR/SSIM and the grids; agreement "
        "there says whether the class survives even when the image does not.\n\n";
  md << "Grids (`docs/dci_depth<k>.png`): first row the original test images, then one row per configuration in the "
        "table's order.\n\n";
  for (int k = 0; k < tasks::kDciDepths; ++k)
    md << "- " << ResNet<>::stage_name(static_cast<Stage>(k)) << ": ![depth " << k << "](dci_depth" << k << ".png)\n";
  md << "\n";
  io::write_file_atomically(docs + "/results_dci.md", md.str());
  std::printf("%s", md.str().c_str());
  std::printf("wrote %s/results_dci.md and %s/dci_depth*.png (%.0f s)\n", docs.c_str(), docs.c_str(), total);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  cli::Command cmd("mint-dci-results",
                   "DCI feature inversion of the Fashion-MNIST CNN, real vs synthetic training data; writes "
                   "docs/results_dci.md.");
  add_options(cmd, a);
  return cli::main(cmd, argc, argv, [&] { return run(a, cmd.command_line()); });
}
