// examples/experiment/runner.hpp -- the runner of mint-experiment (docs/results.md): its options, the method
// table (DMI, SMI 50/76/86 %, PRI v = 2/4/7), one method's inversion of a whole set (the paper-literal form, or
// the official-code preset of inversion/presets.hpp: run_official), the students and the quantization settings
// measured on a set, and the cache that makes a rerun recompute nothing finished. The statistics live in
// mint/tasks/statistics.hpp, the tables in report.hpp, the figures in scripts/plot_results.py.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <mint/mint.hpp>
#include <mint/inversion/presets.hpp>

#include "../cli.hpp"
#include "../training_common.hpp"

namespace mint::experiment {

namespace fs = std::filesystem;
using json = nlohmann::json;
using mint::SparseImage;
using mint::Tensor;
using mint::ViT;

constexpr int kClasses = 10;

inline std::string fmt(double x, int prec = 2) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", prec, x);
  return buf;
}

struct Args {
  std::string backbone, teacher = MINT_DEFAULT_MODEL, cache = "out/experiment/cache", out = "out/experiment";
  std::string data = "/usr/share/datasets/fashion-mnist", augment = "jitterflip";
  std::string methods = "dmi,smi50,smi76,smi86,pri2,pri4,pri7";
  std::string preset = "paper";  // paper: mint::Inverter with TV + --augment; official: run_official (presets.hpp)
  std::string kept = "last";     // which canvas a stage keeps (InversionOptions::kept_image): last, best
  int seeds = 3, images = 280, iterations = 280, inv_batch = 70, epochs = 30, batch = 64;
  float lr = 0.1f, tau = 4.0f;
  float tv = 3e-2f;  // the inversion's TV weight (SMI Eq. 3's lambda_TV; DeepInversion's image prior)
  float bn_prior = 0.0f;                // the borrowed CNN's BN-statistics prior (smi.py's bn); 0: off
  std::string bn_cnn = MINT_DEFAULT_CNN;  // that CNN (mint-train-cnn's ResNet; the embedded one by default)
  bool probe = true, flip = true, efficiency_only = false;
  std::int64_t test_limit = -1, quant_test = 2000;
  std::vector<double> budgets;  // the equal-budget ladder (ladder.hpp), in DMI images; empty: none
  std::string ladder_methods;   // the methods the ladder runs for (empty: every method of --methods)
  int ladder_seeds = 0;         // the ladder runs for the first this many seeds (0: every seed)
  int pool_steps = 0;           // SMI's test_kt.py loop (tasks::distill_linear_probe_pool): its steps; 0: off
  int qat_epochs = 0;           // LSQ quantization-aware training (tasks/qat.hpp) on every set: epochs; 0: off
  float qat_lr = 1e-4f, qat_range_lr = 1e-3f;  // its Adam lrs: latent weights, learned ranges
  std::string command;
};

inline void add_options(mint::cli::Command& c, Args& a) {
  c.existing("--backbone", a.backbone, "5-class student backbone (mint-train-teacher --classes 0,1,2,3,4)");
  c.existing("--teacher", a.teacher, "teacher ViT");
  c.number("--seeds", a.seeds, "seeds per method", 1, 1000);
  c.number("--images", a.images, "output images per method", 1, 1'000'000);
  c.number("--iterations", a.iterations, "iterations T per trajectory (>= 7: PRI v = 7)", 7, 10'000'000);
  c.number("--inv-batch", a.inv_batch, "trajectories per inversion batch", 1, 4096);
  c.choice("--augment", a.augment, "inversion augmentation", mint::augmentations().names());
  c.number("--tv", a.tv, "inversion TV weight", 0, 1e6);
  c.number("--epochs", a.epochs, "distillation epochs", 1, 100000);
  c.number("--batch", a.batch, "distillation batch", 1, 65536);
  c.number("--lr", a.lr, "distillation SGD learning rate", 1e-9, 1e3);
  c.number("--tau", a.tau, "distillation temperature", 1e-3, 1e3);
  c.flag01("--probe", a.probe, "train the head only");
  c.flag01("--flip", a.flip, "random horizontal flips in distillation");
  c.number("--test-limit", a.test_limit, "first N test images (-1: all)", -1, 10000);
  c.number("--quant-test", a.quant_test, "test images for the quantization accuracy", 1, 10000);
  c.text("--cache", a.cache, "cache folder of inverted sets and figures");
  c.text("--out", a.out, "folder of results.md and the figures");
  c.flag01("--efficiency-only", a.efficiency_only, "only the efficiency table of seed 0, no cache");
  c.existing("--data", a.data, "Fashion-MNIST idx.gz folder");
  c.text("--methods", a.methods, "comma-separated: dmi, smi50, smi76, smi86, pri2, pri4, pri7, or none (baselines)");
  c.choice("--preset", a.preset, "paper (TV of SMI Eq. 2, --augment) or official (SMI's code: run_official)",
           {"paper", "official"});
  c.choice("--kept", a.kept, "the image a stage keeps: its last canvas or its lowest-loss one", {"last", "best"});
  c.numbers("--budgets", a.budgets,
            "equal-budget ladder (PRI Fig. 1b): executed-FLOP budgets in units of what DMI spends on one image at "
            "this T, comma-separated; each method makes as many images as each budget buys",
            0.5, 1e7);
  c.text("--ladder-methods", a.ladder_methods, "comma-separated subset of --methods the ladder runs for (default all)");
  c.number("--ladder-seeds", a.ladder_seeds, "the ladder runs for the first N seeds (0: all of --seeds)", 0, 1000);
  c.number("--pool-steps", a.pool_steps,
           "also train SMI's official student loop (test_kt.py: a growing pool, one head step per growth, batch 32, "
           "tau 20) for this many steps on every set; 0: off",
           0, 10'000'000);
  c.number("--bn-prior", a.bn_prior, "weight of the borrowed CNN's BN-statistics prior (SMI code's bn; 0: off; "
           "--preset official)", 0, 1e6);
  c.existing("--bn-cnn", a.bn_cnn, "the borrowed CNN of --bn-prior (a mint ResNet .safetensors)");
  c.number("--qat-epochs", a.qat_epochs,
           "also fine-tune the fake-quantized teacher on every set by LSQ quantization-aware training (PRI Table 3a; "
           "the qat_settings() widths) for this many epochs; 0: off", 0, 100000);
  c.number("--qat-lr", a.qat_lr, "LSQ training: Adam lr of the latent weights", 1e-9, 1);
  c.number("--qat-range-lr", a.qat_range_lr, "LSQ training: Adam lr of the learned quantization ranges", 1e-9, 1);
}

// The borrowed CNN of --bn-prior in eval mode and its input normalisation (the file's mint.normalize_mean/std).
struct BorrowedCnn {
  mint::ResNet<> model;
  mint::Normalization norm;
};
inline BorrowedCnn borrowed_cnn(const Args& a) {
  const auto file = mint::io::load_safetensors(a.bn_cnn);
  const auto s = mint::io::metadata_int(file.metadata, "mint.img_size", 1, 1 << 20, "--bn-cnn " + a.bn_cnn);
  BorrowedCnn c{mint::ResNet<>::from_tensors(file.tensors, s ? static_cast<int>(*s) : 28, "--bn-cnn " + a.bn_cnn),
                mint::normalization_from_metadata(file.metadata, "--bn-cnn " + a.bn_cnn)};
  c.model.eval();
  return c;
}

inline void validate(const mint::cli::Command& c, const Args& a) {
  mint::check(!a.backbone.empty() || a.efficiency_only, "--backbone is required (unless --efficiency-only 1)");
  mint::check(a.test_limit != 0, "--test-limit must be -1 (all) or >= 1");
  for (const char* o : {"--backbone", "--epochs", "--batch", "--lr", "--tau", "--probe", "--flip", "--test-limit",
                        "--quant-test", "--cache", "--seeds", "--budgets",
                        "--pool-steps", "--qat-epochs", "--qat-lr", "--qat-range-lr"})
    mint::check(!c.given(o) || !a.efficiency_only, o,
                ": --efficiency-only 1 measures the inversions of seed 0 only and would ignore it");
  mint::check((!c.given("--ladder-methods") && !c.given("--ladder-seeds")) || !a.budgets.empty(),
              "--ladder-methods and --ladder-seeds need --budgets");
  mint::check(a.pool_steps == 0 || a.probe, "--pool-steps: SMI's loop is a linear probe; it needs --probe 1");
  mint::check((!c.given("--qat-lr") && !c.given("--qat-range-lr")) || a.qat_epochs > 0,
              "--qat-lr and --qat-range-lr need --qat-epochs > 0");
  for (const auto& n : mint::examples::split_list(a.ladder_methods)) {
    const auto listed = mint::examples::split_list(a.methods);
    mint::check(std::find(listed.begin(), listed.end(), n) != listed.end(), "--ladder-methods: '", n,
                "' is not in --methods (", a.methods, ")");
  }
  mint::check(!(a.preset == "official" && c.given("--augment")),
              "--augment: --preset official uses the official code's jitter + flip (JitterFlipOfficial); leave it out");
  mint::check(a.bn_prior == 0.0f || a.preset == "official", "--bn-prior ", a.bn_prior,
              ": the borrowed CNN's BN prior is a lever of the official preset; add --preset official");
  mint::check(!c.given("--bn-cnn") || a.bn_prior > 0.0f, "--bn-cnn: used only with --bn-prior W > 0");
  if (a.bn_prior > 0.0f) (void)borrowed_cnn(a);  // a bad file fails here, before any inversion
}

// ---------------------------------------------------------------------------------------------- methods
struct Method {
  std::string name;  // dmi, smi50, ..., pri7
  enum Kind { Dmi, Smi, Pri } kind;
  int v = 1;          // PRI: images per trajectory
  float ratio = 0.f;  // SMI: pruned share at each of the four prune points
};

// SMI's sparsity levels as in benchmarks/bench_inversion.cpp and docs/performance.md: four prune points
// 50/100/200/300 of T = 4000 scaled to T, ratio r per point: N = 49 -> 23 (r 0.16), 11 (0.30), 6 (0.39) patches.
inline Method method_of(const std::string& s) {
  static const std::map<std::string, Method> table{
      {"dmi", {"dmi", Method::Dmi}},           {"smi50", {"smi50", Method::Smi, 1, 0.16f}},
      {"smi76", {"smi76", Method::Smi, 1, 0.30f}}, {"smi86", {"smi86", Method::Smi, 1, 0.39f}},
      {"pri2", {"pri2", Method::Pri, 2}},      {"pri4", {"pri4", Method::Pri, 4}},
      {"pri7", {"pri7", Method::Pri, 7}}};
  auto it = table.find(s);
  mint::check(it != table.end(), "--methods: unknown method '", s, "' (dmi, smi50, smi76, smi86, pri2, pri4, pri7)");
  return it->second;
}

// ---------------------------------------------------------------------------------------------- cache
// Every finished set and downstream entry, in <dir>/results.json (rewritten atomically at each put). Several
// mint-experiment processes may share a cache folder (e.g. a study and a quantization rerun): put() holds an
// exclusive flock on <dir>/results.json.lock, re-reads the file and adds its entry to what is there, so no
// process overwrites another's entries; has() re-reads the file before it answers no, so an entry another process
// finished is used, not recomputed (only one both are computing at the same time is computed twice).
class Cache {
 public:
  explicit Cache(std::string dir) : dir_(std::move(dir)) {
    fs::create_directories(dir_);
    reload();
  }
  // Whether `k` is cached, also by another process since this one last read the file (it is re-read when absent).
  [[nodiscard]] bool has(const std::string& k) {
    if (!db_.contains(k)) reload();
    return db_.contains(k);
  }
  [[nodiscard]] const json& get(const std::string& k) const { return db_.at(k); }
  void put(const std::string& k, json v) {
    const std::string lock_path = file() + ".lock";
    const int fd = ::open(lock_path.c_str(), O_CREAT | O_RDWR, 0644);
    mint::check(fd >= 0, "cache: cannot open the lock file '", lock_path, "'");
    struct Unlock {
      int fd;
      ~Unlock() { ::flock(fd, LOCK_UN), ::close(fd); }
    } unlock{fd};
    mint::check(::flock(fd, LOCK_EX) == 0, "cache: cannot lock '", lock_path, "'");
    reload();
    db_[k] = std::move(v);
    mint::io::write_file_atomically(file(), db_.dump(1) + "\n");
  }
  [[nodiscard]] std::string path(const std::string& name) const { return dir_ + "/" + name; }

 private:
  [[nodiscard]] std::string file() const { return dir_ + "/results.json"; }
  void reload() {
    if (!fs::exists(file())) return;
    std::ifstream in(file());
    json j = json::parse(in, nullptr, /*allow_exceptions*/ false);
    mint::check(!j.is_discarded() && j.is_object(), "cache: '", file(), "' is not a JSON object (delete it to start over)");
    for (auto& [key, value] : j.items()) db_[key] = std::move(value);
  }
  std::string dir_;
  json db_ = json::object();
};

// ---------------------------------------------------------------------------------------------- inversion
// What a set's inversion cost: CostMeter::to_json over all its batches (gemm_flops, seconds, peak_tensor_mib,
// images, final_active, cost_vs_dmi and theorem1_cost_vs_dmi: method / DMI) and the run's shape.
struct InversionCost {
  json meter;  // CostMeter::to_json
  std::int64_t iterations_run = 0, trajectories = 0, batches = 0;
  [[nodiscard]] double seconds() const { return meter.at("seconds"); }
  [[nodiscard]] double gflop() const { return meter.at("gemm_flops").get<double>() / 1e9; }
  [[nodiscard]] std::int64_t images() const { return meter.at("images").get<std::int64_t>(); }
  json to_json() const {
    return {{"cost", meter}, {"iterations_run", iterations_run}, {"trajectories", trajectories}, {"batches", batches}};
  }
  static InversionCost from_json(const json& j) {
    InversionCost c;
    c.meter = j.at("cost"), c.iterations_run = j.at("iterations_run"), c.trajectories = j.at("trajectories");
    c.batches = j.at("batches");
    return c;
  }
};

using ScheduleV = std::variant<mint::Dense, mint::ProgressivePrune, mint::Rebirth>;
using AugmentV = mint::AugmentationChoice;

inline ScheduleV schedule_of(const Method& m, int iterations) {
  if (m.kind == Method::Dmi) return mint::Dense{};
  if (m.kind == Method::Pri) return mint::Rebirth{m.v};
  mint::ProgressivePrune p;
  p.ratio = m.ratio;
  p.iterations.clear();
  const int paper[4] = {50, 100, 200, 300};
  for (int k = 0; k < 4; ++k)
    p.iterations.push_back(std::max(k + 1, static_cast<int>(std::lround(paper[k] * iterations / 4000.0))));
  return p;
}

// Inverts `a.images` output images (DMI/SMI: that many trajectories; PRI v: images / v trajectories, rounded
// up) in batches of at most --inv-batch trajectories; trajectory j has label j mod 10.
inline std::vector<SparseImage> invert(ViT<>& teacher, const Method& m, const Args& a, std::uint64_t seed, float lo, float hi,
                                InversionCost& cost) {
  const auto& cfg = teacher.config();
  const std::int64_t per_traj = m.kind == Method::Pri ? m.v : 1;
  const std::int64_t trajectories = (a.images + per_traj - 1) / per_traj;
  mint::InversionOptions opt;
  const mint::Normalization norm{{mint::tasks::kFashionMnistMean}, {mint::tasks::kFashionMnistStd}};
  if (a.preset == "official") opt = mint::preset_options(mint::PresetForm::Official, norm);  // T, lr set below
  opt.iterations = a.iterations, opt.pixel_lo = lo, opt.pixel_hi = hi;
  opt.kept_image = a.kept == "best" ? mint::KeptImage::Best : mint::KeptImage::Last;
  std::vector<SparseImage> out;
  cost = {};
  cost.trajectories = trajectories;
  mint::CostMeter meter(cfg);  // all batches' cost (mint/inversion/cost.hpp)
  const AugmentV aug = mint::augmentations().make(a.augment);
  std::optional<BorrowedCnn> cnn;  // --bn-prior: OfficialWithBN = TVOfficial + BorrowedBNPrior (presets.hpp)
  std::optional<mint::BorrowedBNPrior> bn;
  if (a.bn_prior > 0.0f) {
    cnn.emplace(borrowed_cnn(a));
    bn = mint::BorrowedBNPrior{&cnn->model, a.bn_prior, 10.0f, norm, cnn->norm};
  }
  for (std::int64_t first = 0; first < trajectories; first += a.inv_batch) {
    const std::int64_t b = std::min<std::int64_t>(a.inv_batch, trajectories - first);
    std::vector<int> labels(static_cast<std::size_t>(b));
    for (std::int64_t i = 0; i < b; ++i) labels[static_cast<std::size_t>(i)] = static_cast<int>((first + i) % kClasses);
    opt.seed = seed * 1000003ull + static_cast<std::uint64_t>(first);
    teacher.release_cache();  // the previous forward's saved tensors would otherwise count as live at begin()
    meter.begin(b);
    const auto sched = schedule_of(m, a.iterations);
    auto res = a.preset == "official"
                   ? mint::run_official(teacher, sched, labels, opt, a.tv, std::ref(meter), bn)
                   : std::visit(
                         [&](auto sch, auto au) {
                           mint::Inverter<ViT<>, mint::ClassObjective, mint::TV, mint::HighAttention, decltype(sch),
                                          decltype(au)>
                               inv(teacher, {}, mint::TV{a.tv}, {}, sch, au, opt);
                           return inv.run(labels, std::ref(meter));
                         },
                         sched, aug);
    meter.end();
    cost.iterations_run += a.iterations;
    ++cost.batches;
    for (auto& s : res.images) out.push_back(std::move(s));
  }
  // keep exactly a.images images (PRI v = 7 at 280: 40 trajectories x 7 = 280; otherwise drop the surplus
  // of the last trajectories, which are the latest-created)
  if (static_cast<std::int64_t>(out.size()) > a.images) out.resize(static_cast<std::size_t>(a.images));
  cost.meter = meter.to_json(static_cast<double>(out.size()), static_cast<int>(per_traj), a.iterations);
  return out;
}


// Whether the equal-budget ladder runs for method `name` and `seed`.
inline bool ladder_method(const Args& a, const std::string& name, int seed) {
  if (a.budgets.empty() || (a.ladder_seeds > 0 && seed >= a.ladder_seeds)) return false;
  if (a.ladder_methods.empty()) return true;
  const auto l = mint::examples::split_list(a.ladder_methods);
  return std::find(l.begin(), l.end(), name) != l.end();
}

// The teacher's part of every cache key: nothing for the embedded teacher (keys made before --teacher was part of
// them stay valid), else "_t" + the file's stem + the first 12 hex digits of its SHA-256 (before, a set inverted
// from another teacher was silently read back under the embedded teacher's key).
inline std::string teacher_tag(const Args& a) {
  static const std::string embedded = mint::io::sha256_file(MINT_DEFAULT_MODEL);
  const std::string h = mint::io::sha256_file(a.teacher);
  return h == embedded ? "" : "_t" + fs::path(a.teacher).stem().string() + h.substr(0, 12);
}

// The name part of a set's cache key: its size and inversion settings (the defaults add no suffix, so sets cached
// before an option existed stay valid).
inline std::string set_tag(const Args& a) {
  return "I" + std::to_string(a.images) + "_T" + std::to_string(a.iterations) + "_B" + std::to_string(a.inv_batch) +
         "_" + a.augment + (a.tv == 1e-4f ? "" : "_tv" + fmt(a.tv, 6)) + (a.preset == "paper" ? "" : "_" + a.preset) +
         (a.kept == "last" ? "" : "_kept" + a.kept) +
         (a.bn_prior == 0.0f ? "" : "_bn" + fmt(a.bn_prior, 6) + "_" + fs::path(a.bn_cnn).stem().string()) +
         teacher_tag(a);
}

// Method m's set of a.images images for `seed`: read from the cache, or inverted and cached (the images as a
// synthetic dataset file, the cost in results.json). Returns the images; `cost` gets the set's cost.
inline std::vector<SparseImage> cached_inversion(ViT<>& teacher, Cache& cache, const Method& m, const Args& a,
                                                 int seed, float lo, float hi, InversionCost& cost) {
  const std::string key = m.name + "_" + set_tag(a) + "_s" + std::to_string(seed);
  const std::string file = cache.path(key + ".safetensors");
  if (cache.has("inversion/" + key) && fs::exists(file)) {
    cost = InversionCost::from_json(cache.get("inversion/" + key));
    return mint::load_synthetic_dataset(file);
  }
  std::printf("[seed %d] inverting %s (%d images) ...\n", seed, m.name.c_str(), a.images);
  std::fflush(stdout);
  auto data = invert(teacher, m, a, static_cast<std::uint64_t>(seed), lo, hi, cost);
  mint::io::write_atomically(file, [&](const std::string& p) {
    mint::save_synthetic_dataset(p, data, {{"method", m.name}, {"seed", std::to_string(seed)}});
  });
  cache.put("inversion/" + key, cost.to_json());
  return data;
}

// ---------------------------------------------------------------------------------------------- evaluation
struct StudentAcc {
  double all = 0, unseen = 0, seen = 0;
  double unseen_within = 0;  // on 5-9 with the argmax over classes 5-9 only (5-way; chance 20 %)
  // on the test images of 5-9: % predicted as each class, argmax over all ten / over 5-9 (index 0 = class 5)
  std::vector<double> pred_unseen = std::vector<double>(kClasses, 0.0), pred_within = std::vector<double>(5, 0.0);
};

using mint::tasks::teacher_confidence;  // (in the library: mint-invert reports it too)

// The fake-quantization settings every set calibrates (SMI Eq. 5, tasks/quantize.hpp): the papers' W4/A8 and
// W8/A8, and the narrower ones searched for a width where calibration matters (issue 20: real calibration beating
// Gaussian noise by >= 5 points). Weight ranges are the weights' own min/max, so only the activation ranges
// depend on the calibration set; "pt" = per-tensor weight ranges instead of per output channel. Activation ranges
// are Eq. 5's min/max unless the name says otherwise: "p99.99" clips 0.01 % of each site's values at each end,
// "mse" is the range minimising the expected quantization error over the set's values (tasks::choose_ranges).
struct QuantSetting {
  const char* name;
  int weight_bits, act_bits;
  mint::tasks::Granularity weights;
  mint::tasks::RangeMethod ranges = mint::tasks::RangeMethod::MinMax;
};
inline const std::vector<QuantSetting>& quant_settings() {
  using G = mint::tasks::Granularity;
  using R = mint::tasks::RangeMethod;
  static const std::vector<QuantSetting> s{
      {"W4/A8", 4, 8, G::PerChannel},         {"W8/A8", 8, 8, G::PerChannel},
      {"W4/A6", 4, 6, G::PerChannel},         {"W4/A4", 4, 4, G::PerChannel},
      {"W3/A8", 3, 8, G::PerChannel},         {"W8/A4", 8, 4, G::PerChannel},
      {"W4/A8 pt", 4, 8, G::PerTensor},       {"W4/A6 pt", 4, 6, G::PerTensor},
      {"W8/A3", 8, 3, G::PerChannel},         {"W4/A3", 4, 3, G::PerChannel},
      {"W8/A2", 8, 2, G::PerChannel},         {"W8/A4 p99.99", 8, 4, G::PerChannel, R::Percentile},
      {"W8/A3 p99.99", 8, 3, G::PerChannel, R::Percentile}, {"W8/A4 mse", 8, 4, G::PerChannel, R::Mse},
      {"W8/A3 mse", 8, 3, G::PerChannel, R::Mse}, {"W4/A4 mse", 4, 4, G::PerChannel, R::Mse},
      {"W8/A2 mse", 8, 2, G::PerChannel, R::Mse}, {"W4/A2 mse", 4, 2, G::PerChannel, R::Mse},
      {"W8/A2 p99.99", 8, 2, G::PerChannel, R::Percentile}, {"W2/A8 mse", 2, 8, G::PerChannel, R::Mse},
      {"W3/A3 mse", 3, 3, G::PerChannel, R::Mse}};  // the last two: where QAT starts (qat_settings)
  return s;
}
inline constexpr double kPercentileTail = 1e-4;  // "p99.99"

// The widths LSQ quantization-aware training (--qat-epochs) runs at, each started from its post-training model
// with MSE activation ranges: W4/A4, where post-training quantization already keeps the teacher within 2 points
// (PRI Table 3a's kind of width), and three where it loses 4-15 points, so the training data has something to
// recover (the pilot in docs/results.md, "Issue 20").
inline const std::vector<QuantSetting>& qat_settings() {
  using G = mint::tasks::Granularity;
  using R = mint::tasks::RangeMethod;
  static const std::vector<QuantSetting> s{{"W4/A4 mse", 4, 4, G::PerChannel, R::Mse},
                                           {"W3/A3 mse", 3, 3, G::PerChannel, R::Mse},
                                           {"W2/A8 mse", 2, 8, G::PerChannel, R::Mse},
                                           {"W4/A2 mse", 4, 2, G::PerChannel, R::Mse}};
  return s;
}
// The cache name of a QAT result: the width and everything of the training that changes it.
inline std::string qat_key(const QuantSetting& q, const Args& a) {
  char lr[64];
  std::snprintf(lr, sizeof lr, " lr %g/%g", static_cast<double>(a.qat_lr), static_cast<double>(a.qat_range_lr));
  return std::string(q.name) + " LSQ e" + std::to_string(a.qat_epochs) + lr + (a.flip ? "" : " noflip");
}

// SMI's official loop on a set (pool_probe): the student after the last step, and the best accuracies over the
// steps (test_kt.py prints the best top-1 over its epochs: selected on the test set, so optimistic).
struct PoolAcc {
  StudentAcc last;
  double best_all = 0, best_within = 0;
  int steps = 0;
  json to_json() const {
    return {{"all", last.all},           {"unseen", last.unseen},   {"seen", last.seen},
            {"unseen_within", last.unseen_within}, {"best_all", best_all}, {"best_within", best_within},
            {"steps", steps}};
  }
  static PoolAcc from_json(const json& j) {
    PoolAcc p;
    p.last.all = j.at("all"), p.last.unseen = j.at("unseen"), p.last.seen = j.at("seen");
    p.last.unseen_within = j.at("unseen_within"), p.best_all = j.at("best_all"), p.best_within = j.at("best_within");
    p.steps = j.at("steps");
    return p;
  }
};

struct Downstream {
  StudentAcc student;
  std::optional<PoolAcc> pool;  // --pool-steps
  std::map<std::string, double> quant;  // top-1 % of the fake-quantized teacher, by QuantSetting::name
  std::map<std::string, double> qat;    // top-1 % after LSQ training on the set, by qat_key
  double distill_s = 0;
  json to_json() const {
    json j = {{"student_all", student.all}, {"student_unseen", student.unseen}, {"student_seen", student.seen},
            {"student_unseen_within", student.unseen_within}, {"pred_unseen", student.pred_unseen},
            {"pred_within", student.pred_within}, {"quant", quant}, {"distill_seconds", distill_s}};
    if (pool) j["pool"] = pool->to_json();
    if (!qat.empty()) j["qat"] = qat;
    return j;
  }
  static Downstream from_json(const json& j) {
    Downstream d;
    d.student.all = j.at("student_all"), d.student.unseen = j.at("student_unseen");
    d.student.seen = j.at("student_seen"), d.student.unseen_within = j.at("student_unseen_within");
    d.student.pred_unseen = j.at("pred_unseen").get<std::vector<double>>();
    d.student.pred_within = j.at("pred_within").get<std::vector<double>>();
    d.quant = j.at("quant").get<std::map<std::string, double>>();
    d.distill_s = j.at("distill_seconds");
    if (j.contains("pool")) d.pool = PoolAcc::from_json(j.at("pool"));
    if (j.contains("qat")) d.qat = j.at("qat").get<std::map<std::string, double>>();
    return d;
  }
};

struct Context {
  const Args& a;
  ViT<>& teacher;
  const mint::tasks::LabeledImages& test;
  const mint::tasks::LabeledImages& quant_test;
  Tensor<> test_features;  // --probe 1: the frozen backbone's features of the test images [M, dim]
};

inline StudentAcc accuracy_from_logits(const Tensor<>& z, const std::vector<int>& labels) {
  StudentAcc r;
  std::int64_t c_all = 0, c_un = 0, n_un = 0, c_se = 0, n_se = 0, c_w = 0;
  const std::int64_t n = z.dim(0), c = z.dim(1);
  for (std::int64_t i = 0; i < n; ++i) {
    const float* row = z.data() + i * c;
    const bool ok = static_cast<int>(std::max_element(row, row + c) - row) == labels[static_cast<std::size_t>(i)];
    const int y = labels[static_cast<std::size_t>(i)];
    c_all += ok;
    if (y >= 5) {
      c_un += ok, ++n_un;
      const int w = static_cast<int>(std::max_element(row + 5, row + c) - row);
      c_w += w == y;
      r.pred_unseen[static_cast<std::size_t>(std::max_element(row, row + c) - row)] += 1;
      r.pred_within[static_cast<std::size_t>(w - 5)] += 1;
    } else {
      c_se += ok, ++n_se;
    }
  }
  r.unseen_within = n_un ? 100.0 * static_cast<double>(c_w) / static_cast<double>(n_un) : 0;
  for (auto* v : {&r.pred_unseen, &r.pred_within})
    for (double& x : *v) x = n_un ? 100.0 * x / static_cast<double>(n_un) : 0;
  r.all = 100.0 * static_cast<double>(c_all) / static_cast<double>(n);
  r.unseen = n_un ? 100.0 * static_cast<double>(c_un) / static_cast<double>(n_un) : 0;
  r.seen = n_se ? 100.0 * static_cast<double>(c_se) / static_cast<double>(n_se) : 0;
  return r;
}

// One pass over the test set: argmax over all ten classes; accuracy on all, on 5-9, on 0-4.
inline StudentAcc evaluate(ViT<>& model, const mint::tasks::LabeledImages& test) {
  return accuracy_from_logits(
      mint::tasks::outputs_of(model, mint::tasks::dense_sparse_images(test, model.num_patches())), test.labels);
}

// Linear probing (tasks::distill_linear_probe), then the probed head applied to the cached test features.
inline StudentAcc linear_probe(Context& c, const std::vector<SparseImage>& data, std::uint64_t seed) {
  const auto& a = c.a;
  auto student = mint::tasks::load_student(a.backbone, /*reinit_head*/ true, seed);
  mint::tasks::DistillOptions opt;
  opt.temperature = a.tau, opt.sgd.lr = a.lr, opt.batch = a.batch, opt.flip = a.flip, opt.seed = seed;
  mint::tasks::distill_linear_probe(c.teacher, student, data, a.epochs, opt);
  const auto& w = student.parameters().at("head.weight").value;
  const auto& bias = student.parameters().at("head.bias").value;
  return accuracy_from_logits(mint::nn::linear(c.test_features, w, &bias), c.test.labels);
}

// SMI's official student loop (tasks::distill_linear_probe_pool with test_kt.py's batch 32 and tau 20; SGD as
// every student here) for --pool-steps steps on `data` in its inversion order, the head evaluated on the test
// features after every step.
inline PoolAcc pool_probe(Context& c, const std::vector<SparseImage>& data, std::uint64_t seed) {
  const auto& a = c.a;
  auto student = mint::tasks::load_student(a.backbone, /*reinit_head*/ true, seed);
  mint::tasks::DistillOptions opt;
  opt.temperature = 20.0f, opt.sgd.lr = a.lr, opt.batch = 32, opt.flip = a.flip, opt.seed = seed;
  const auto& w = student.parameters().at("head.weight").value;
  const auto& bias = student.parameters().at("head.bias").value;
  PoolAcc p;
  p.steps = a.pool_steps;
  mint::tasks::distill_linear_probe_pool(c.teacher, student, data, a.pool_steps, opt,
                                         [&](std::int64_t, const mint::tasks::DistillStepStats&) {
                                           p.last = accuracy_from_logits(mint::nn::linear(c.test_features, w, &bias),
                                                                         c.test.labels);
                                           p.best_all = std::max(p.best_all, p.last.all);
                                           p.best_within = std::max(p.best_within, p.last.unseen_within);
                                         });
  return p;
}

// Calibrates on `data` and measures every quant_settings() entry missing from d.quant (top-1 %), and with
// --qat-epochs every qat_settings() entry missing from d.qat (LSQ training on `data`, the downstream seed's
// shuffle and flips); returns whether it added any.
inline bool quantize_missing(Context& c, const std::vector<SparseImage>& data, Downstream& d, std::uint64_t seed) {
  const auto& a = c.a;
  std::vector<const QuantSetting*> ptq, qat;
  for (const auto& qs : quant_settings())
    if (!d.quant.count(qs.name)) ptq.push_back(&qs);
  if (a.qat_epochs > 0)
    for (const auto& qs : qat_settings())
      if (!d.qat.count(qat_key(qs, a))) qat.push_back(&qs);
  if (ptq.empty() && qat.empty()) return false;
  const auto hist = mint::tasks::calibrate_histograms(c.teacher, std::span<const SparseImage>(data));
  const auto config = [](const QuantSetting& qs) {
    return mint::tasks::QuantConfig{.weight_bits = qs.weight_bits, .act_bits = qs.act_bits, .weights = qs.weights};
  };
  const auto ranges = [&](const QuantSetting& qs) {
    return mint::tasks::choose_ranges(hist, qs.ranges, qs.act_bits, kPercentileTail);
  };
  for (const auto* qs : ptq) {
    mint::tasks::QuantizedViT q(c.teacher, config(*qs), ranges(*qs));
    d.quant[qs->name] = 100.0 * mint::tasks::accuracy(q, c.quant_test).value();
  }
  for (const auto* qs : qat) {
    mint::tasks::QatViT q(c.teacher, config(*qs), ranges(*qs));
    mint::tasks::QatOptions opt;
    opt.epochs = a.qat_epochs, opt.weights.lr = a.qat_lr, opt.ranges.lr = a.qat_range_lr, opt.flip = a.flip;
    opt.seed = seed;
    mint::tasks::quantization_aware_training(c.teacher, q, std::span<const SparseImage>(data), opt);
    d.qat[qat_key(*qs, a)] = 100.0 * mint::tasks::accuracy(q, c.quant_test).value();
  }
  return true;
}

inline Downstream downstream(Context& c, const std::vector<SparseImage>& data, std::uint64_t seed) {
  Downstream d;
  const auto t0 = std::chrono::steady_clock::now();
  if (c.a.probe) {
    d.student = linear_probe(c, data, seed);
  } else {
    auto student = mint::tasks::load_student(c.a.backbone, /*reinit_head*/ true, seed);
    mint::tasks::DistillOptions opt;
    opt.temperature = c.a.tau, opt.sgd.lr = c.a.lr, opt.batch = c.a.batch, opt.flip = c.a.flip, opt.seed = seed;
    mint::tasks::distill_offline(c.teacher, student, data, c.a.epochs, opt);
    d.student = evaluate(student, c.test);
  }
  d.distill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  quantize_missing(c, data, d, seed);
  if (c.a.pool_steps > 0) d.pool = pool_probe(c, data, seed);
  return d;
}

// The cached downstream entry `dk` of `data`: computed when absent; an entry cached before a quantization setting
// (or a QAT width or training) was added gets only the missing settings (the student is not retrained), and the
// pool loop when --pool-steps asks for it with other steps than the entry has.
inline Downstream cached_downstream(Context& c, Cache& cache, const std::string& dk, const std::vector<SparseImage>& data,
                                    std::uint64_t seed) {
  if (!cache.has(dk)) {
    cache.put(dk, downstream(c, data, seed).to_json());
  } else {
    auto d = Downstream::from_json(cache.get(dk));
    bool added = quantize_missing(c, data, d, seed);
    if (c.a.pool_steps > 0 && (!d.pool || d.pool->steps != c.a.pool_steps)) d.pool = pool_probe(c, data, seed), added = true;
    if (added) cache.put(dk, d.to_json());
  }
  return Downstream::from_json(cache.get(dk));
}



}  // namespace mint::experiment
