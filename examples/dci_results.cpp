// mint-dci-results: regenerates docs/results_dci.md (DCI, seed 000 Appendix B-D on the Fashion-MNIST CNN).
//
// 1. Synthetic training sets, one per --recipes entry, by DeepInversion of the CNN teacher (no real data):
//    "official" is NVlabs/DeepInversion's loop (tasks::deep_inversion: cosine lr, jitter + flip, BN prior with the
//    first-layer factor, best image kept; --di-iters iterations), "previous" the earlier 40-iteration Inverter
//    recipe; the levers run the official loop at --lever-iters: "short" unchanged, "nojitter", "first1", "last"
//    with one lever changed, "moreiters" at --more-iters, "nojittermore" (nojitter at --more-iters); "train2x" is
//    a training lever: the official set, every stage trained twice as many steps. Each set is cached in
//    --out/syn_<recipe>.safetensors, rewritten atomically after every batch (a rerun extends it; a killed run
//    keeps what finished; a cache made by another recipe is refused).
// 2. For each source (real training images, each recipe), size (--sizes) and seed (--seeds): DCI modules trained
//    progressively, stage by stage (tasks::DCI::train_stage); the levers at --lever-sizes with --lever-seeds, beside
//    real and official at those sizes and seeds (the same training data budget); saved after each stage to
//    --out/dci_<source>_<n>_s<seed>.safetensors (a rerun resumes after the last finished stage).
// 3. For every split depth (stem, layer1..4): PSNR / SSIM / teacher agreement of the first --eval real TEST
//    images recovered from their features, a PNG grid per depth (docs/<name>_depth<k>.png), and the markdown (docs/<name>.md, --name; default
//    results_dci). Module caches carry the training options in their names when they are not the defaults.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <mint/inversion/bn_prior.hpp>
#include <mint/inversion/inverter.hpp>
#include <mint/inversion/sparse_image.hpp>
#include <mint/io/image.hpp>
#include <mint/io/safetensors.hpp>
#include <mint/models/resnet.hpp>
#include <mint/tasks/dci.hpp>
#include <mint/tasks/deep_inversion.hpp>
#include <mint/tasks/evaluate.hpp>

#include "cli.hpp"

using namespace mint;
namespace fs = std::filesystem;

namespace {
struct Args {
  std::string model_path = MINT_DEFAULT_CNN, data_dir = "/usr/share/datasets/fashion-mnist";
  std::vector<std::int64_t> sizes{1000}, lever_sizes{500};
  std::vector<std::uint64_t> seeds{0, 1, 2}, lever_seeds{0};
  std::vector<std::string> recipes{"official", "previous", "nojitter", "first1", "last", "moreiters", "train2x"};
  std::string out = "out/dci", docs = "docs", name = "results_dci", notes;
  std::int64_t n_syn = 1000, n_lever = 500, n_more = 500, syn_iters = 40, di_iters = 200, lever_iters = 200,
               more_iters = 2000, syn_batch = 50, eval_n = 500, stem_steps = 400;
  tasks::DciOptions dopt{.cycle_weight = 1.0f, .lr = 3e-3f, .batch = 32, .steps_alone = 25, .steps_finetune = 25,
                         .seed = 0};
};

const std::vector<std::string> kRecipes{"official", "previous",  "short",        "nojitter", "first1",
                                        "last",     "moreiters", "nojittermore", "train2x"};

// The recipes whose rows are the main comparison (--sizes, --seeds); the others are levers.
bool main_recipe(const std::string& r) { return r == "real" || r == "official" || r == "previous"; }

void add_options(cli::Command& c, Args& a) {
  c.existing("--model", a.model_path, "CNN teacher");
  c.existing("--data", a.data_dir, "Fashion-MNIST idx.gz folder");
  c.numbers("--sizes", a.sizes, "training-set sizes, comma-separated", 2, 60000);
  c.numbers("--seeds", a.seeds, "DCI training seeds, comma-separated (rows are their mean)", 0,
            std::numeric_limits<std::uint64_t>::max());
  c.numbers("--lever-seeds", a.lever_seeds,
            "DCI training seeds of the lever recipes (short, nojitter, first1, last, moreiters, nojittermore, train2x)", 0,
            std::numeric_limits<std::uint64_t>::max());
  c.numbers("--lever-sizes", a.lever_sizes,
            "training-set sizes of the lever recipes (real and official are also trained there, --lever-seeds)", 2,
            60000);
  c.app()
      .add_option("--recipes", a.recipes,
                  "synthetic sets, comma-separated: official (NVlabs/DeepInversion's loop, --di-iters), previous "
                  "(the earlier Inverter recipe, --syn-iters); levers, the official loop at --lever-iters: short "
                  "(unchanged), nojitter (no jitter/flip), first1 (first-layer factor 1), last (last image kept); "
                  "moreiters (the official loop at --more-iters), nojittermore (nojitter at --more-iters); train2x (the official set, twice the training "
                  "steps)")
      ->delimiter(',')
      ->check(CLI::IsMember(kRecipes));
  c.number("--synthetic", a.n_syn, "synthetic images of official and previous", 1, 10'000'000);
  c.number("--lever-synthetic", a.n_lever, "synthetic images of each lever recipe (short, nojitter, first1, last)", 1,
           10'000'000);
  c.number("--more-synthetic", a.n_more, "synthetic images of the moreiters and nojittermore recipes", 1, 10'000'000);
  c.number("--syn-iters", a.syn_iters, "iterations per batch of the 'previous' recipe", 1, 1'000'000);
  c.number("--di-iters", a.di_iters, "iterations per batch of the official-loop recipes (DeepInversion: 2000)", 1,
           1'000'000);
  c.number("--lever-iters", a.lever_iters, "iterations per batch of the lever recipes (short, nojitter, first1, last)",
           1, 1'000'000);
  c.number("--more-iters", a.more_iters, "iterations per batch of the moreiters and nojittermore recipes (DeepInversion: 2000)", 1,
           1'000'000);
  c.number("--syn-batch", a.syn_batch, "images per DeepInversion batch (50: 5 per class)", 2, 10000);
  c.number("--steps-alone", a.dopt.steps_alone, "Adam steps for module k alone, k >= 1", 0, 100'000'000);
  c.number("--steps-finetune", a.dopt.steps_finetune, "Adam steps fine-tuning modules 0..k, k >= 1", 0, 100'000'000);
  c.number("--stem-steps", a.stem_steps, "Adam steps of stage 0 (the stem module; ~20x cheaper per step)", 0,
           100'000'000);
  c.number("--batch", a.dopt.batch, "DCI training batch (batch norm needs >= 2)", 2, 65536);
  c.number("--lr", a.dopt.lr, "Adam learning rate", 1e-9, 1e3);
  c.number("--cycle", a.dopt.cycle_weight, "weight of the cycle-consistency term", 0, 1e6);
  c.number("--eval", a.eval_n, "test images evaluated", 1, 10000);
  c.text("--out", a.out, "folder of the synthetic sets and the trained modules");
  c.text("--docs", a.docs, "folder of the report (<name>.md) and its PNG grids (<name>_depth<k>.png)");
  c.text("--name", a.name, "the report's name: <docs>/<name>.md and <docs>/<name>_depth<k>.png");
  c.text("--notes", a.notes,
         "hand-written diagnosis included in the report when present (default <docs>/dci_diagnosis.md; - for none)");
}

// A path as the markdown prints it: relative to the working directory when inside it (scripts/results_dci.sh runs
// from the repository root, so the default model prints as models/...), else as given.
std::string shown_path(const std::string& p) {
  std::error_code ec;
  const auto rel = fs::relative(p, fs::current_path(), ec);
  if (ec || rel.empty() || *rel.begin() == "..") return p;
  return rel.generic_string();
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

// The module caches' name part for the training options: empty for the defaults, else every training option, so a
// cache trained with other steps, batch, lr or cycle weight is never taken for this configuration's.
std::string training_tag(const Args& a) {
  const Args d{};
  const auto& o = a.dopt;
  if (a.stem_steps == d.stem_steps && o.steps_alone == d.dopt.steps_alone &&
      o.steps_finetune == d.dopt.steps_finetune && o.batch == d.dopt.batch && o.lr == d.dopt.lr &&
      o.cycle_weight == d.dopt.cycle_weight)
    return "";
  char buf[160];
  std::snprintf(buf, sizeof buf, "_t%lld-%lld-%lld-b%lld-lr%g-c%g", static_cast<long long>(a.stem_steps),
                static_cast<long long>(o.steps_alone), static_cast<long long>(o.steps_finetune),
                static_cast<long long>(o.batch), static_cast<double>(o.lr), static_cast<double>(o.cycle_weight));
  return buf;
}

// Iterations per batch and images of a synthetic recipe.
std::int64_t iterations_of(const std::string& recipe, const Args& a) {
  if (recipe == "previous") return a.syn_iters;
  if (recipe == "official") return a.di_iters;
  return recipe == "moreiters" || recipe == "nojittermore" ? a.more_iters : a.lever_iters;
}
std::int64_t images_of(const std::string& recipe, const Args& a) {
  if (main_recipe(recipe)) return a.n_syn;
  return recipe == "moreiters" || recipe == "nojittermore" ? a.n_more : a.n_lever;
}

// The DeepInversion options of an official-loop recipe.
tasks::DeepInversionOptions recipe_options(const std::string& recipe, std::int64_t iters, float lo, float hi) {
  tasks::DeepInversionOptions o;
  o.iterations = static_cast<int>(iters);
  o.warmup = std::min(100, std::max(1, o.iterations / 20));  // deepinversion.py: 100 of 2000
  o.pixel_lo = lo;
  o.pixel_hi = hi;
  if (recipe == "nojitter" || recipe == "nojittermore") {
    o.jitter = 0;
    o.flip = false;
  }
  if (recipe == "first1") o.first_bn_multiplier = 1.0f;
  if (recipe == "last") o.keep_best = false;
  return o;
}

// A recipe in words (also the cache's identity: a cache with another description is refused).
std::string recipe_description(const std::string& recipe, const Args& a, float lo, float hi) {
  std::ostringstream os;
  if (recipe == "previous") {
    os << "Inverter, " << a.syn_iters << " iterations, Adam lr 0.1 constant, BNPrior 0.05 x first-layer 10, TV 1e-4, "
       << "no jitter/flip, last image";
  } else {
    const auto o = recipe_options(recipe, iterations_of(recipe, a), lo, hi);
    os << "DeepInversion loop, " << o.iterations << " iterations, Adam lr " << o.lr << " betas (" << o.beta1 << ", "
       << o.beta2 << ") cosine with " << o.warmup << " warm-up, r_feature " << o.r_feature << " x first-layer "
       << o.first_bn_multiplier << ", tv_l2 " << o.tv_l2 << ", l2 " << o.l2 << ", jitter "
       << (o.jitter > 0 ? std::to_string(o.jitter) + " px" : std::string("off")) << ", flip "
       << (o.flip ? "on" : "off") << ", " << (o.keep_best ? "best image kept" : "last image");
  }
  os << ", batch " << a.syn_batch;
  return os.str();
}

struct SynSet {
  std::string recipe, description;
  Tensor<Cpu> images;
  double accuracy = 0.0;         // the teacher's accuracy on them (their target class)
  double seconds_total = 0.0;    // generation wall time over every run that extended the cache
  double seconds_this_run = 0.0;
  std::size_t cached = 0;        // images read from the cache
};

// Makes (or extends) recipe's cache to n images, one batch at a time, each batch written atomically.
SynSet synthetic_set(ResNet<>& teacher, const std::string& recipe, const Args& a, float lo, float hi) {
  SynSet s;
  s.recipe = recipe;
  s.description = recipe_description(recipe, a, lo, hi);
  const std::string cache = a.out + "/syn_" + recipe + ".safetensors";
  std::vector<SparseImage> syn;
  if (fs::exists(cache)) {
    const auto meta = io::load_safetensors(cache).metadata;
    const auto it = meta.find("mint.dci.recipe");
    check(it != meta.end() && it->second == s.description, "synthetic cache '", cache, "' was made by \"",
          it == meta.end() ? std::string("(no recipe recorded)") : it->second, "\", not \"", s.description,
          "\"; delete it or choose another --out");
    const auto sec = meta.find("mint.dci.seconds");
    if (sec != meta.end()) s.seconds_total = std::stod(sec->second);
    syn = load_synthetic_dataset(cache);
  }
  s.cached = syn.size();
  ResNetAdapter adapter(teacher);
  using DeepInversion = Inverter<ResNetAdapter, ClassObjective, Sum<BNPrior, TV>, HighAttention, Dense>;
  const std::int64_t wanted = images_of(recipe, a);
  while (static_cast<std::int64_t>(syn.size()) < wanted) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<int> labels;
    for (std::int64_t i = 0; i < a.syn_batch; ++i) labels.push_back(static_cast<int>((syn.size() + i) % 10));
    const std::uint64_t seed = 1000 + syn.size();
    if (recipe == "previous") {
      InversionOptions io;
      io.iterations = static_cast<int>(a.syn_iters);
      io.lr = 0.1f;  // the settings of tests/models/test_resnet_teacher.cpp
      io.seed = seed;
      io.pixel_lo = lo;
      io.pixel_hi = hi;
      DeepInversion inv(adapter, {}, Sum<BNPrior, TV>(BNPrior{&teacher, 0.05f, 10.0f}, TV{1e-4f}), {}, {}, {}, io);
      auto res = inv.run(labels);
      for (auto& im : res.images) syn.push_back(im);
    } else {
      auto o = recipe_options(recipe, iterations_of(recipe, a), lo, hi);
      o.seed = seed;
      const auto res = tasks::deep_inversion(teacher, labels, o);
      const std::int64_t per = res.images.numel() / res.images.dim(0);
      for (std::size_t i = 0; i < labels.size(); ++i) {
        SparseImage im;
        im.pixels = Tensor<Cpu>::empty(Shape{res.images.dim(1), res.images.dim(2), res.images.dim(3)});
        std::copy(res.images.data() + static_cast<std::int64_t>(i) * per,
                  res.images.data() + static_cast<std::int64_t>(i + 1) * per, im.pixels.data());
        im.mask = Tensor<Cpu>::empty(Shape{1});
        im.mask.fill(1.0f);
        im.label = labels[i];
        im.iteration = res.kept_iteration;
        syn.push_back(std::move(im));
      }
    }
    const double dt = seconds_since(t0);
    s.seconds_this_run += dt;
    s.seconds_total += dt;
    char sec[64];
    std::snprintf(sec, sizeof sec, "%.3f", s.seconds_total);
    save_synthetic_dataset(cache, syn, {{"mint.dci.recipe", s.description}, {"mint.dci.seconds", sec}});
    std::printf("synthetic %s: %zu / %lld images (%.1f s for this batch, %.0f s in all)\n", recipe.c_str(), syn.size(),
                static_cast<long long>(wanted), dt, s.seconds_total);
    std::fflush(stdout);
  }
  const auto n = std::min<std::int64_t>(wanted, static_cast<std::int64_t>(syn.size()));
  s.images = Tensor<Cpu>::empty(Shape{n, 1, 28, 28});
  tasks::LabeledImages li{s.images, {}};
  for (std::int64_t i = 0; i < n; ++i) {
    const auto& p = syn[static_cast<std::size_t>(i)].pixels;
    std::copy(p.data(), p.data() + 784, s.images.data() + i * 784);
    li.labels.push_back(syn[static_cast<std::size_t>(i)].label);
  }
  s.accuracy = tasks::accuracy(teacher, li).value();
  return s;
}

// The training seconds of a configuration so far (over every run), kept beside its modules.
double read_seconds(const std::string& path) {
  if (!fs::exists(path)) return 0.0;
  std::ifstream f(path);
  double v = 0.0;
  f >> v;
  check(!f.fail(), "'", path, "' does not hold a number of seconds; delete it");
  return v;
}

// Pixel statistics of a set in [0, 1] intensities: the mean, the standard deviation, the fraction of near-black
// pixels (< 0.02: Fashion-MNIST's background), the mean of the outer kFrame-pixel frame (a wrap-around roll moves
// content there) and of the central half (rows and columns H/4 .. 3H/4), beside the real training images'.
// requires: normalised [N, C, H, W] with H, W > 2 kFrame.
constexpr std::int64_t kFrame = 3;
std::string pixel_stats(const Tensor<Cpu>& normalised, float mean, float sd) {
  const auto x = tasks::denormalize01(normalised, mean, sd);
  const std::int64_t h = x.dim(2), w = x.dim(3), planes = x.dim(0) * x.dim(1);
  double s = 0.0, s2 = 0.0, frame = 0.0, centre = 0.0;
  std::int64_t black = 0, n_frame = 0, n_centre = 0;
  for (std::int64_t p = 0; p < planes; ++p)
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int64_t c = 0; c < w; ++c) {
        const float v = x[(p * h + y) * w + c];
        s += v;
        s2 += double(v) * v;
        black += v < 0.02f;
        if (y < kFrame || y >= h - kFrame || c < kFrame || c >= w - kFrame) {
          frame += v;
          ++n_frame;
        }
        if (y >= h / 4 && y < 3 * h / 4 && c >= w / 4 && c < 3 * w / 4) {
          centre += v;
          ++n_centre;
        }
      }
  const double n = static_cast<double>(x.numel()), mu = s / n;
  char buf[160];
  std::snprintf(buf, sizeof buf, "%.3f | %.3f | %.1f%% | %.3f | %.3f", mu, std::sqrt(std::max(0.0, s2 / n - mu * mu)),
                100.0 * static_cast<double>(black) / n, frame / static_cast<double>(std::max<std::int64_t>(1, n_frame)),
                centre / static_cast<double>(std::max<std::int64_t>(1, n_centre)));
  return buf;
}

struct Row {
  std::string source;
  std::int64_t n_requested = 0, n_used = 0;
  std::uint64_t seed = 0;
  double train_seconds = 0.0, train_seconds_total = 0.0;
  std::array<tasks::RecoveryMetrics, tasks::kDciDepths> m;
  std::array<Tensor<Cpu>, tasks::kDciDepths> shown;  // recovered images of the grid
};

// The evaluation of a row's modules (per depth and test image: PSNR, SSIM, agreement; the grid's images), cached
// beside them in `cache` so a rerun that trains nothing new does not evaluate again.
void write_evaluation(const std::string& cache, const Row& r) {
  std::map<std::string, Tensor<Cpu>> t;
  for (int k = 0; k < tasks::kDciDepths; ++k) {
    const auto& m = r.m[static_cast<std::size_t>(k)];
    auto per = Tensor<Cpu>::empty(Shape{3, static_cast<std::int64_t>(m.psnr.size())});
    for (std::size_t i = 0; i < m.psnr.size(); ++i) {
      per[static_cast<std::int64_t>(i)] = static_cast<float>(m.psnr[i]);
      per[static_cast<std::int64_t>(m.psnr.size() + i)] = static_cast<float>(m.ssim[i]);
      per[static_cast<std::int64_t>(2 * m.psnr.size() + i)] = m.agree[i] ? 1.0f : 0.0f;
    }
    t.emplace("metrics" + std::to_string(k), std::move(per));
    t.emplace("shown" + std::to_string(k), r.shown[static_cast<std::size_t>(k)]);
  }
  io::write_atomically(cache, [&](const std::string& p) { io::save_safetensors(p, t); });
}
// ensures: false (r untouched) when `cache` is missing or older than the modules file `modules`; true with r's
// metrics and grid images filled from it; throws naming the file when it does not hold n images per depth.
bool read_evaluation(const std::string& cache, const std::string& modules, std::int64_t n, int shown, Row& r) {
  if (!fs::exists(cache) || fs::last_write_time(cache) < fs::last_write_time(modules)) return false;
  const auto f = io::load_safetensors(cache);
  for (int k = 0; k < tasks::kDciDepths; ++k) {
    const auto& per = f.at("metrics" + std::to_string(k));
    const auto& im = f.at("shown" + std::to_string(k));
    check(per.rank() == 2 && per.dim(0) == 3 && per.dim(1) == n && im.rank() == 4 && im.dim(0) == shown, "'",
          cache, "': depth ", k, " holds metrics ", per.shape().str(), " and images ", im.shape().str(),
          ", not [3, ", n, "] and ", shown, " images; delete it");
    auto& m = r.m[static_cast<std::size_t>(k)];
    m = {};
    for (std::int64_t i = 0; i < n; ++i) {
      m.psnr.push_back(per[i]);
      m.ssim.push_back(per[n + i]);
      m.agree.push_back(per[2 * n + i] > 0.5f);
    }
    r.shown[static_cast<std::size_t>(k)] = im.clone();
  }
  return true;
}

// Mean and sample standard deviation over seeds of one (source, size) at depth k.
struct Agg {
  std::string source;
  std::int64_t n = 0;
  std::vector<const Row*> rows;
  [[nodiscard]] double psnr(int k) const { return mean([k](const Row& r) { return r.m[std::size_t(k)].mean_psnr(); }); }
  [[nodiscard]] double ssim(int k) const { return mean([k](const Row& r) { return r.m[std::size_t(k)].mean_ssim(); }); }
  [[nodiscard]] double agree(int k) const {
    return mean([k](const Row& r) { return r.m[std::size_t(k)].agreement(); });
  }
  [[nodiscard]] double psnr_sd(int k) const {
    if (rows.size() < 2) return 0.0;
    const double mu = psnr(k);
    double s = 0.0;
    for (const Row* r : rows) s += std::pow(r->m[std::size_t(k)].mean_psnr() - mu, 2);
    return std::sqrt(s / static_cast<double>(rows.size() - 1));
  }
  template <class F>
  double mean(F f) const {
    double s = 0.0;
    for (const Row* r : rows) s += f(*r);
    return rows.empty() ? 0.0 : s / static_cast<double>(rows.size());
  }
};

int run(const Args& a, const std::string& command_line) {
  const tasks::DciOptions& dopt = a.dopt;
  dopt.validate();
  fs::create_directories(a.out);
  fs::create_directories(a.docs);
  cli::check_writable_file(a.out + "/dci.safetensors", "--out");
  check(!a.name.empty() && a.name.find_first_of("/\\") == std::string::npos && a.name != "." && a.name != "..",
        "--name '", a.name, "': the report's name must be a plain file name (no folder)");
  const std::string report = a.docs + "/" + a.name + ".md";
  cli::check_writable_file(report, "--docs/--name");
  const auto t_all = std::chrono::steady_clock::now();
  // the hand-written diagnosis, read before any long work (a bad file fails here, not after the study)
  const bool notes_given = !a.notes.empty();
  const std::string notes_path = notes_given ? a.notes : a.docs + "/dci_diagnosis.md";
  std::string notes;
  if (notes_path != "-" && (notes_given || fs::exists(notes_path))) {
    std::error_code ec;
    const auto size = fs::file_size(notes_path, ec);
    check(!ec && size <= 64 * 1024, "'", notes_path, "': ", ec ? ec.message() : std::to_string(size) + " bytes",
          "; the diagnosis notes must be a readable file of at most 64 KiB");
    const auto bytes = io::detail::read_file_bytes(notes_path, "diagnosis notes");
    notes.assign(bytes.begin(), bytes.end());
  }

  auto teacher = ResNet<>::load(a.model_path);
  teacher.eval();
  const float mean = tasks::kFashionMnistMean, sd = tasks::kFashionMnistStd;
  const float lo = (0.0f - mean) / sd, hi = (1.0f - mean) / sd;

  // every size: --sizes, then the --lever-sizes not in it (real and official are trained at both)
  std::vector<std::int64_t> all_sizes = a.sizes;
  for (auto n : a.lever_sizes)
    if (std::find(all_sizes.begin(), all_sizes.end(), n) == all_sizes.end()) all_sizes.push_back(n);
  std::int64_t max_size = 0;
  for (auto n : all_sizes) max_size = std::max(max_size, n);
  const auto train = tasks::load_fashion_mnist(a.data_dir, true, max_size);
  const auto test = tasks::load_fashion_mnist(a.data_dir, false, a.eval_n);

  std::vector<Row> rows;
  std::vector<SynSet> sets;
  std::vector<std::string> skipped;
  const int shown = 8;

  std::vector<std::string> sources{"real"};
  for (const auto& r : a.recipes) sources.push_back(r);
  for (const std::string& source : sources) {
    Tensor<Cpu> pool = train.images;
    if (source == "train2x") {  // the official set (made here if --recipes does not list official)
      const auto it = std::find_if(sets.begin(), sets.end(), [](const SynSet& x) { return x.recipe == "official"; });
      pool = it != sets.end() ? it->images : synthetic_set(teacher, "official", a, lo, hi).images;
    } else if (source != "real") {
      sets.push_back(synthetic_set(teacher, source, a, lo, hi));
      pool = sets.back().images;
    }
    const bool lever = !main_recipe(source);
    const int steps_factor = source == "train2x" ? 2 : 1;
    for (auto n : lever ? a.lever_sizes : all_sizes) {
      auto data = first_n(pool, n);
      const std::int64_t used = data.dim(0);
      bool dup = false;
      for (const auto& q : rows) dup |= q.source == source && q.n_used == used && q.n_requested != n;
      if (dup) {
        skipped.push_back(source + " " + std::to_string(n) + " (only " + std::to_string(used) + " available)");
        continue;
      }
      const bool main_size = std::find(a.sizes.begin(), a.sizes.end(), n) != a.sizes.end();
      for (auto seed : lever || !main_size ? a.lever_seeds : a.seeds) {
        Row r;
        r.source = source;
        r.n_requested = n;
        r.n_used = used;
        r.seed = seed;
        tasks::DciOptions sopt0 = dopt;
        sopt0.seed = seed;
        const std::string stem = a.out + "/dci_" + source + "_" + std::to_string(used) + "_s" + std::to_string(seed) +
                                 training_tag(a);
        const std::string path = stem + ".safetensors", secs = stem + ".seconds";
        tasks::DCI dci(teacher, seed);
        if (fs::exists(path)) dci.load(path);
        r.train_seconds_total = read_seconds(secs);
        const auto t0 = std::chrono::steady_clock::now();
        for (int k = dci.trained_depth() + 1; k < tasks::kDciDepths; ++k) {
          const auto ts = std::chrono::steady_clock::now();
          tasks::DciOptions sopt = sopt0;
          if (k == 0) sopt.steps_alone = a.stem_steps;
          sopt.steps_alone *= steps_factor;
          sopt.steps_finetune *= steps_factor;
          auto tail = dci.train_stage(data, k, sopt);
          const double dt = seconds_since(ts);
          r.train_seconds_total += dt;
          std::printf("%s %lld seed %llu: stage %d (%s) L_k alone %.4f, fine-tuned %.4f, %.1f s\n", source.c_str(),
                      static_cast<long long>(used), static_cast<unsigned long long>(seed), k,
                      ResNet<>::stage_name(static_cast<Stage>(k)), tail[0], tail[1], dt);
          std::fflush(stdout);
          // the modules for depth k are those right after stage k: save them per depth, and the running state
          io::write_atomically(path, [&](const std::string& p) { dci.save(p); });
          io::write_atomically(stem + "_depth" + std::to_string(k) + ".safetensors",
                               [&](const std::string& p) { fs::copy_file(path, p); });
          io::write_file_atomically(secs, std::to_string(r.train_seconds_total) + "\n");
        }
        r.train_seconds = seconds_since(t0);
        const std::string eval_cache = stem + "_eval" + std::to_string(test.size()) + ".safetensors";
        if (!read_evaluation(eval_cache, path, test.size(), shown, r)) {
          for (int k = 0; k < tasks::kDciDepths; ++k) {
            tasks::DCI dk(teacher, seed);
            dk.load(stem + "_depth" + std::to_string(k) + ".safetensors");
            const auto st = static_cast<Stage>(k);
            auto rec = dk.invert(dk.features(test.images, st), st);
            r.m[static_cast<std::size_t>(k)] = tasks::recovery_metrics(teacher, test.images, rec, mean, sd);
            r.shown[static_cast<std::size_t>(k)] = tasks::denormalize01(first_n(rec, shown), mean, sd);
          }
          write_evaluation(eval_cache, r);
        }
        rows.push_back(std::move(r));
      }
    }
  }

  // ---- aggregates over seeds, in the rows' order
  std::vector<Agg> aggs;
  for (const auto& r : rows) {
    Agg* g = nullptr;
    for (auto& x : aggs)
      if (x.source == r.source && x.n == r.n_used) g = &x;
    if (!g) {
      aggs.push_back(Agg{r.source, r.n_used, {}});
      g = &aggs.back();
    }
    g->rows.push_back(&r);
  }
  // real at the same size, else real at the size asked for (a synthetic set smaller than --sizes: the table says
  // both sizes)
  auto real_of = [&](std::int64_t n) -> const Agg* {
    for (const auto& g : aggs)
      if (g.source == "real" && g.n == n) return &g;
    for (const auto& g : aggs)
      if (g.source == "real")
        for (const Row* r : g.rows)
          for (const auto& q : rows)
            if (q.source != "real" && q.n_used == n && q.n_requested == r->n_requested) return &g;
    return nullptr;
  };

  // ---- grids: row 0 the originals, then one row per (source, size), the first seed's modules
  const auto orig = tasks::denormalize01(first_n(test.images, shown), mean, sd);
  for (int k = 0; k < tasks::kDciDepths; ++k) {
    auto all = Tensor<Cpu>::empty(Shape{static_cast<std::int64_t>(aggs.size() + 1) * shown, 1, 28, 28});
    std::copy(orig.data(), orig.data() + orig.numel(), all.data());
    for (std::size_t i = 0; i < aggs.size(); ++i) {
      const auto& t = aggs[i].rows.front()->shown[static_cast<std::size_t>(k)];
      std::copy(t.data(), t.data() + t.numel(), all.data() + static_cast<std::int64_t>(i + 1) * shown * 784);
    }
    cli::write_png(a.docs + "/" + a.name + "_depth" + std::to_string(k) + ".png", io::image_grid(all, shown, 2));
  }

  // ---- markdown
  const double total = seconds_since(t_all);
  std::ostringstream md;
  char buf[1024];
  md << "# DCI results: recovering Fashion-MNIST test images from the CNN's features\n\n"
     << "Generated by `mint-dci-results` (examples/dci_results.cpp); do not edit by hand. Method and choices:\n"
     << "docs/dci.md. Command:\n\n    OMP_NUM_THREADS=" << cpu::num_threads() << " " << command_line << "\n\n";
  std::snprintf(buf, sizeof buf,
                "Target: `%s` (%s), eval mode. Evaluated on the first %lld Fashion-MNIST **test** images; PSNR and "
                "SSIM in [0, 1] pixel space (recovered images clipped), agreement = fraction of images where the "
                "CNN's argmax on the recovered image equals its argmax on the original.\n\n",
                shown_path(a.model_path).c_str(), teacher.describe().c_str(), static_cast<long long>(test.size()));
  md << buf;
  std::snprintf(buf, sizeof buf,
                "Training: progressive (stage 0: %lld Adam steps; stage k >= 1: module k alone %lld steps, then "
                "modules 0..k %lld steps; batch %lld, lr %g, cycle weight %g), the same for every source; seeds",
                static_cast<long long>(a.stem_steps), static_cast<long long>(dopt.steps_alone),
                static_cast<long long>(dopt.steps_finetune), static_cast<long long>(dopt.batch),
                static_cast<double>(dopt.lr), static_cast<double>(dopt.cycle_weight));
  md << buf;
  for (auto s : a.seeds) md << " " << s;
  md << " at sizes";
  for (auto n : a.sizes) md << " " << n;
  md << "; the lever recipes seeds";
  for (auto s : a.lever_seeds) md << " " << s;
  md << " at sizes";
  for (auto n : a.lever_sizes) md << " " << n;
  md << ", where real and official are trained with the lever seeds too (each row is the mean over its seeds; sd = "
        "standard deviation over seeds; real - source compares with real's mean at the same size). train2x is a "
        "training lever: the official set with every stage's steps doubled (stage 0: "
     << 2 * a.stem_steps << ", stage k >= 1: " << 2 * dopt.steps_alone << " + " << 2 * dopt.steps_finetune
     << ").\n\n";
  md << "Synthetic sets (no real data; the teacher's labels are the targets, 5 images per class per batch):\n\n"
     << "| source | recipe | images | teacher accuracy on them | mean intensity | intensity sd | near-black pixels "
        "(< 0.02) | mean of the outer " << kFrame << "-pixel frame | mean of the central half | generation wall time "
        "(all runs) | this run |\n"
     << "|---|---|---|---|---|---|---|---|---|---|---|\n";
  std::snprintf(buf, sizeof buf, "| real | Fashion-MNIST training images | %lld | | %s | | |\n",
                static_cast<long long>(std::min<std::int64_t>(max_size, train.images.dim(0))),
                pixel_stats(first_n(train.images, max_size), mean, sd).c_str());
  md << buf;
  for (const auto& s : sets) {
    std::snprintf(buf, sizeof buf, "| %s | %s | %lld | %.1f%% | %s | %.0f s | %.0f s (%zu read from the cache) |\n",
                  s.recipe.c_str(), s.description.c_str(), static_cast<long long>(s.images.dim(0)), 100.0 * s.accuracy,
                  pixel_stats(s.images, mean, sd).c_str(), s.seconds_total, s.seconds_this_run, s.cached);
    md << buf;
  }
  md << "\n| split depth | features | source | train images | PSNR (dB) mean | sd | per seed | SSIM | agreement | "
        "real - source (dB) |\n|---|---|---|---|---|---|---|---|---|---|\n";
  const auto& c = teacher.config();
  for (int k = 0; k < tasks::kDciDepths; ++k) {
    for (const auto& g : aggs) {
      const std::string feat = k == 5 ? std::to_string(c.classes) + " logits"
                                      : std::to_string(c.channels(k)) + " x " + std::to_string(c.spatial(k)) + " x " +
                                            std::to_string(c.spatial(k));
      std::string per;
      for (const Row* r : g.rows) {
        std::snprintf(buf, sizeof buf, "%s%.2f", per.empty() ? "" : ", ", r->m[std::size_t(k)].mean_psnr());
        per += buf;
      }
      const Agg* re = real_of(g.n);
      const std::string gap = g.source == "real" || !re ? std::string("") : [&] {
        std::snprintf(buf, sizeof buf, "%+.2f", re->psnr(k) - g.psnr(k));
        return std::string(buf);
      }();
      std::snprintf(buf, sizeof buf, "| %s | %s | %s | %lld | %.2f | %.2f | %s | %.3f | %.3f | %s |\n",
                    ResNet<>::stage_name(static_cast<Stage>(k)), feat.c_str(), g.source.c_str(),
                    static_cast<long long>(g.n), g.psnr(k), g.psnr_sd(k), per.c_str(), g.ssim(k), g.agree(k),
                    gap.c_str());
      md << buf;
    }
  }
  if (!skipped.empty()) {
    md << "\nNot run (not enough synthetic images; raise --synthetic):";
    for (const auto& x : skipped) md << " " << x << ";";
    md << "\n";
  }
  md << "\n## The bar: synthetic within 1.5 dB of real at layer1 and layer2 (mean over seeds)\n\n";
  for (const auto& g : aggs) {
    const Agg* re = real_of(g.n);
    if (g.source == "real" || !re) continue;
    const double g1 = re->psnr(1) - g.psnr(1), g2 = re->psnr(2) - g.psnr(2);
    std::snprintf(buf, sizeof buf, "- %s %lld (%zu seed%s%s): layer1 %+.2f dB, layer2 %+.2f dB: %s\n",
                  g.source.c_str(), static_cast<long long>(g.n), g.rows.size(), g.rows.size() == 1 ? "" : "s",
                  g.rows.size() < 3 ? "; the bar asks for 3" : "", g1, g2,
                  g1 <= 1.5 && g2 <= 1.5 ? "**met**" : "**missed**");
    md << buf;
  }
  // ---- levers: each lever row against official at the same size and seeds
  auto agg_of = [&](const std::string& src, std::int64_t n) -> const Agg* {
    for (const auto& g : aggs)
      if (g.source == src && g.n == n) return &g;
    return nullptr;
  };
  bool lever_header = false;
  for (const auto& g : aggs) {
    const Agg* off = agg_of("official", g.n);
    if (main_recipe(g.source) || !off) continue;
    if (!lever_header) {
      md << "\n## Levers: PSNR of the lever minus official at the same size and seeds (dB; > 0: the lever helps)\n\n"
         << "| lever | train images | seeds |";
      for (int k = 0; k < tasks::kDciDepths; ++k) md << " " << ResNet<>::stage_name(static_cast<Stage>(k)) << " |";
      md << " real - lever at layer2 |\n|---|---|---|";
      for (int k = 0; k <= tasks::kDciDepths; ++k) md << "---|";
      md << "\n";
      lever_header = true;
    }
    std::string seeds;
    for (const Row* r : g.rows) seeds += (seeds.empty() ? "" : ", ") + std::to_string(r->seed);
    md << "| " << g.source << " | " << g.n << " | " << seeds << " |";
    for (int k = 0; k < tasks::kDciDepths; ++k) {
      std::snprintf(buf, sizeof buf, " %+.2f |", g.psnr(k) - off->psnr(k));
      md << buf;
    }
    const Agg* re = real_of(g.n);
    if (re) std::snprintf(buf, sizeof buf, " %+.2f |\n", re->psnr(2) - g.psnr(2));
    md << (re ? std::string(buf) : std::string(" |\n"));
  }
  if (!notes.empty())
    md << "\n## Diagnosis (written by hand in " << shown_path(notes_path) << ", included here; its figures are "
       << "the tables above)\n\n" << notes << "\n";
  md << "\nTraining wall time per configuration (all 6 stages, summed over every run that trained it; this run's in "
        "brackets):";
  for (const auto& r : rows) {
    std::snprintf(buf, sizeof buf, " %s %lld s%llu: %.0f s (%.0f s);", r.source.c_str(),
                  static_cast<long long>(r.n_used), static_cast<unsigned long long>(r.seed), r.train_seconds_total,
                  r.train_seconds);
    md << buf;
  }
  std::snprintf(buf, sizeof buf, " this whole run %.0f s on %d thread(s).\n\n", total, cpu::num_threads());
  md << buf;
  // ---- computed comparisons beside the seed's findings
  md << "## Beside the seed's findings (DCI appendix, seed 000)\n\n";
  md << "1. *Quality falls with depth* (Appendix B.1: \"as we progress deeper into the model, the inversion error "
        "will increase\"). Mean PSNR / SSIM per depth here (each configuration, mean over seeds):\n\n";
  for (const auto& g : aggs) {
    md << "   - " << g.source << " " << g.n << ":";
    for (int k = 0; k < tasks::kDciDepths; ++k) {
      std::snprintf(buf, sizeof buf, " %s %.2f / %.3f%s", ResNet<>::stage_name(static_cast<Stage>(k)), g.psnr(k),
                    g.ssim(k), k + 1 < tasks::kDciDepths ? "," : "");
      md << buf;
    }
    int falls = 0;
    for (int k = 1; k < tasks::kDciDepths; ++k) falls += g.psnr(k) < g.psnr(k - 1);
    std::snprintf(buf, sizeof buf, " (PSNR lower than at the previous depth in %d of %d steps)\n", falls,
                  tasks::kDciDepths - 1);
    md << buf;
  }
  md << "\n2. *Synthetic data close to real* (Appendix D, Fig. 12: LPIPS 0.462 real vs 0.481 synthetic at 1K, 0.430 "
        "vs 0.443 at 10K on ImageNet). PSNR difference real - synthetic at equal size, per depth:\n\n";
  for (const auto& g : aggs) {
    const Agg* re = real_of(g.n);
    if (g.source == "real" || !re) continue;
    md << "   - " << g.source << " " << g.n << ":";
    for (int k = 0; k < tasks::kDciDepths; ++k) {
      std::snprintf(buf, sizeof buf, " %s %+.2f dB (SSIM %+.3f)%s", ResNet<>::stage_name(static_cast<Stage>(k)),
                    re->psnr(k) - g.psnr(k), re->ssim(k) - g.ssim(k), k + 1 < tasks::kDciDepths ? "," : "");
      md << buf;
    }
    md << "\n";
  }
  md << "\n3. *More data helps* (Fig. 12: 10K better than 1K, little gain beyond). PSNR of the largest minus the "
        "smallest size per source, per depth:\n\n";
  for (const std::string& src : sources) {
    const Agg *small = nullptr, *large = nullptr;
    for (const auto& g : aggs)
      if (g.source == src) {
        if (!small || g.n < small->n) small = &g;
        if (!large || g.n > large->n) large = &g;
      }
    if (!small || small == large) {
      md << "   - " << src << ": one size only\n";
      continue;
    }
    md << "   - " << src << " " << large->n << " vs " << small->n << ":";
    for (int k = 0; k < tasks::kDciDepths; ++k) {
      std::snprintf(buf, sizeof buf, " %s %+.2f dB%s", ResNet<>::stage_name(static_cast<Stage>(k)),
                    large->psnr(k) - small->psnr(k), k + 1 < tasks::kDciDepths ? "," : "");
      md << buf;
    }
    md << "\n";
  }
  md << "\n4. *After the final classifier layer little but colour survives* (Appendix C, Fig. 11). The logits row "
        "(" << c.classes << " numbers per image) against layer4 (" << c.channels(4) * c.spatial(4) * c.spatial(4)
     << " numbers): compare the PSNR/SSIM and the grids; agreement "
        "there says whether the class survives even when the image does not.\n\n";
  md << "Grids (`" << a.name << "_depth<k>.png`): first row the original test images, then one row per configuration in the "
        "table's order (the first seed's modules).\n\n";
  for (int k = 0; k < tasks::kDciDepths; ++k)
    md << "- " << ResNet<>::stage_name(static_cast<Stage>(k)) << ": ![depth " << k << "](" << a.name << "_depth" << k << ".png)\n";
  md << "\n";
  io::write_file_atomically(report, md.str());
  std::printf("%s", md.str().c_str());
  std::printf("wrote %s and %s/%s_depth*.png (%.0f s)\n", report.c_str(), a.docs.c_str(), a.name.c_str(), total);
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
