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
// <out>/results.md (the tables), <out>/accuracy_vs_time.png (all ten classes), <out>/accuracy_vs_time_unseen.png
// (classes 5-9, 5-way) and <out>/confidence.png.
//
//   mint-experiment --backbone PATH [--teacher PATH] [--seeds 3] [--images 280] [--iterations 280]
//                   [--inv-batch 70] [--augment jitterflip|none] [--tv 3e-2] [--epochs 30] [--batch 64] [--lr 0.1]
//                   [--tau 4] [--probe 1] [--flip 1] [--test-limit -1] [--quant-test 2000]
//                   [--cache DIR] [--out DIR] [--efficiency-only 0|1] [--data DIR] [--methods LIST]
//
// --efficiency-only 1 re-runs the inversions of seed 0 without the cache and writes only the efficiency table
// (<out>/efficiency.md): run it on an idle machine for clean timings.
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include <mint/mint.hpp>
#include <mint/models/init.hpp>

#include "cli.hpp"
#include "training_common.hpp"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using mint::SparseImage;
using mint::Tensor;
using mint::ViT;

constexpr int kClasses = 10;
const std::vector<int> kSeen = {0, 1, 2, 3, 4}, kUnseen = {5, 6, 7, 8, 9};

struct Args {
  std::string backbone, teacher = MINT_DEFAULT_MODEL, cache = "out/experiment/cache", out = "out/experiment";
  std::string data = "/usr/share/datasets/fashion-mnist", augment = "jitterflip";
  std::string methods = "dmi,smi50,smi76,smi86,pri2,pri4,pri7";
  int seeds = 3, images = 280, iterations = 280, inv_batch = 70, epochs = 30, batch = 64;
  float lr = 0.1f, tau = 4.0f;
  float tv = 3e-2f;  // the inversion's TV weight (SMI Eq. 3's lambda_TV; DeepInversion's image prior)
  bool probe = true, flip = true, efficiency_only = false;
  std::int64_t test_limit = -1, quant_test = 2000;
  std::string command;
};

void add_options(mint::cli::Command& c, Args& a) {
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
  c.text("--methods", a.methods, "comma-separated: dmi, smi50, smi76, smi86, pri2, pri4, pri7");
}

void validate(const mint::cli::Command& c, const Args& a) {
  mint::check(!a.backbone.empty() || a.efficiency_only, "--backbone is required (unless --efficiency-only 1)");
  mint::check(a.test_limit != 0, "--test-limit must be -1 (all) or >= 1");
  for (const char* o : {"--backbone", "--epochs", "--batch", "--lr", "--tau", "--probe", "--flip", "--test-limit",
                        "--quant-test", "--cache", "--seeds"})
    mint::check(!c.given(o) || !a.efficiency_only, o,
                ": --efficiency-only 1 measures the inversions of seed 0 only and would ignore it");
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
Method method_of(const std::string& s) {
  static const std::map<std::string, Method> table{
      {"dmi", {"dmi", Method::Dmi}},           {"smi50", {"smi50", Method::Smi, 1, 0.16f}},
      {"smi76", {"smi76", Method::Smi, 1, 0.30f}}, {"smi86", {"smi86", Method::Smi, 1, 0.39f}},
      {"pri2", {"pri2", Method::Pri, 2}},      {"pri4", {"pri4", Method::Pri, 4}},
      {"pri7", {"pri7", Method::Pri, 7}}};
  auto it = table.find(s);
  mint::check(it != table.end(), "--methods: unknown method '", s, "' (dmi, smi50, smi76, smi86, pri2, pri4, pri7)");
  return it->second;
}

// ---------------------------------------------------------------------------------------------- inversion
struct InversionCost {
  double seconds = 0, gflop = 0, peak_mib = 0, theorem1_vs_dmi = 1;
  std::int64_t iterations_run = 0, trajectories = 0, images = 0, batches = 0;
  int final_active = 0;
  json to_json() const {
    return {{"seconds", seconds}, {"gflop", gflop}, {"peak_mib", peak_mib}, {"theorem1_vs_dmi", theorem1_vs_dmi},
            {"iterations_run", iterations_run}, {"trajectories", trajectories}, {"images", images},
            {"batches", batches}, {"final_active", final_active}};
  }
  static InversionCost from_json(const json& j) {
    InversionCost c;
    c.seconds = j.at("seconds"), c.gflop = j.at("gflop"), c.peak_mib = j.at("peak_mib");
    c.theorem1_vs_dmi = j.at("theorem1_vs_dmi"), c.iterations_run = j.at("iterations_run");
    c.trajectories = j.at("trajectories"), c.images = j.at("images"), c.batches = j.at("batches");
    c.final_active = j.at("final_active");
    return c;
  }
};

using ScheduleV = std::variant<mint::Dense, mint::ProgressivePrune, mint::Rebirth>;
using AugmentV = mint::AugmentationChoice;

ScheduleV schedule_of(const Method& m, int iterations) {
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
std::vector<SparseImage> invert(ViT<>& teacher, const Method& m, const Args& a, std::uint64_t seed, float lo, float hi,
                                InversionCost& cost) {
  const auto& cfg = teacher.config();
  const std::int64_t per_traj = m.kind == Method::Pri ? m.v : 1;
  const std::int64_t trajectories = (a.images + per_traj - 1) / per_traj;
  mint::InversionOptions opt;
  opt.iterations = a.iterations, opt.pixel_lo = lo, opt.pixel_hi = hi;
  std::vector<SparseImage> out;
  cost = {};
  cost.trajectories = trajectories;
  mint::CostMeter meter(cfg);  // all batches' cost (mint/inversion/cost.hpp)
  const AugmentV aug = mint::augmentations().make(a.augment);
  for (std::int64_t first = 0; first < trajectories; first += a.inv_batch) {
    const std::int64_t b = std::min<std::int64_t>(a.inv_batch, trajectories - first);
    std::vector<int> labels(static_cast<std::size_t>(b));
    for (std::int64_t i = 0; i < b; ++i) labels[static_cast<std::size_t>(i)] = static_cast<int>((first + i) % kClasses);
    opt.seed = seed * 1000003ull + static_cast<std::uint64_t>(first);
    teacher.release_cache();  // the previous forward's saved tensors would otherwise count as live at begin()
    meter.begin(b);
    auto res = std::visit(
        [&](auto sch, auto au) {
          mint::Inverter<ViT<>, mint::ClassObjective, mint::TV, mint::HighAttention, decltype(sch), decltype(au)> inv(
              teacher, {}, mint::TV{a.tv}, {}, sch, au, opt);
          return inv.run(labels, std::ref(meter));
        },
        schedule_of(m, a.iterations), aug);
    meter.end();
    cost.iterations_run += a.iterations;
    ++cost.batches;
    for (auto& s : res.images) out.push_back(std::move(s));
  }
  // keep exactly a.images images (PRI v = 7 at 280: 40 trajectories x 7 = 280; otherwise drop the surplus
  // of the last trajectories, which are the latest-created)
  if (static_cast<std::int64_t>(out.size()) > a.images) out.resize(static_cast<std::size_t>(a.images));
  cost.images = static_cast<std::int64_t>(out.size());
  cost.seconds = meter.seconds(), cost.gflop = meter.flops() / 1e9, cost.peak_mib = meter.peak_mib();
  cost.final_active = static_cast<int>(meter.final_active());
  // the tables print speedups, DMI / method: the inverse of the meter's cost ratio
  cost.theorem1_vs_dmi = 1.0 / meter.theorem1_cost_vs_dmi(m.kind == Method::Pri ? m.v : 1, a.iterations);
  return out;
}

// ---------------------------------------------------------------------------------------------- evaluation
struct StudentAcc {
  double all = 0, unseen = 0, seen = 0;
  double unseen_within = 0;  // on 5-9 with the argmax over classes 5-9 only (5-way; chance 20 %)
  // on the test images of 5-9: % predicted as each class, argmax over all ten / over 5-9 (index 0 = class 5)
  std::vector<double> pred_unseen = std::vector<double>(kClasses, 0.0), pred_within = std::vector<double>(5, 0.0);
};

using mint::tasks::teacher_confidence;  // (in the library: mint-invert reports it too)

struct Downstream {
  StudentAcc student;
  double w4a8 = 0, w8a8 = 0, distill_s = 0;
  json to_json() const {
    return {{"student_all", student.all}, {"student_unseen", student.unseen}, {"student_seen", student.seen},
            {"student_unseen_within", student.unseen_within}, {"pred_unseen", student.pred_unseen},
            {"pred_within", student.pred_within}, {"w4a8", w4a8}, {"w8a8", w8a8}, {"distill_seconds", distill_s}};
  }
  static Downstream from_json(const json& j) {
    Downstream d;
    d.student.all = j.at("student_all"), d.student.unseen = j.at("student_unseen");
    d.student.seen = j.at("student_seen"), d.student.unseen_within = j.at("student_unseen_within");
    if (j.contains("pred_unseen")) {  // entries cached before the prediction shares were recorded lack them
      d.student.pred_unseen = j.at("pred_unseen").get<std::vector<double>>();
      d.student.pred_within = j.at("pred_within").get<std::vector<double>>();
    }
    d.w4a8 = j.at("w4a8"), d.w8a8 = j.at("w8a8"), d.distill_s = j.at("distill_seconds");
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

StudentAcc accuracy_from_logits(const Tensor<>& z, const std::vector<int>& labels) {
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
StudentAcc evaluate(ViT<>& model, const mint::tasks::LabeledImages& test) {
  return accuracy_from_logits(
      mint::tasks::outputs_of(model, mint::tasks::dense_sparse_images(test, model.num_patches())), test.labels);
}

// Linear probing (tasks::distill_linear_probe), then the probed head applied to the cached test features.
StudentAcc linear_probe(Context& c, const std::vector<SparseImage>& data, std::uint64_t seed) {
  const auto& a = c.a;
  auto student = mint::tasks::load_student(a.backbone, /*reinit_head*/ true, seed);
  mint::tasks::DistillOptions opt;
  opt.temperature = a.tau, opt.sgd.lr = a.lr, opt.batch = a.batch, opt.flip = a.flip, opt.seed = seed;
  mint::tasks::distill_linear_probe(c.teacher, student, data, a.epochs, opt);
  const auto& w = student.parameters().at("head.weight").value;
  const auto& bias = student.parameters().at("head.bias").value;
  return accuracy_from_logits(mint::nn::linear(c.test_features, w, &bias), c.test.labels);
}

Downstream downstream(Context& c, const std::vector<SparseImage>& data, std::uint64_t seed) {
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
  const auto ranges = mint::tasks::calibrate(c.teacher, std::span<const SparseImage>(data));
  for (int wb : {4, 8}) {
    mint::tasks::QuantizedViT q(c.teacher, {.weight_bits = wb, .act_bits = 8}, ranges);
    (wb == 4 ? d.w4a8 : d.w8a8) = 100.0 * mint::tasks::accuracy(q, c.quant_test).value();
  }
  return d;
}

// ---------------------------------------------------------------------------------------------- cache
class Cache {
 public:
  explicit Cache(std::string dir) : dir_(std::move(dir)) {
    fs::create_directories(dir_);
    if (fs::exists(file())) db_ = json::parse(std::ifstream(file()));
  }
  [[nodiscard]] bool has(const std::string& k) const { return db_.contains(k); }
  [[nodiscard]] const json& get(const std::string& k) const { return db_.at(k); }
  void put(const std::string& k, json v) {
    db_[k] = std::move(v);
    mint::io::write_file_atomically(file(), db_.dump(1) + "\n");
  }
  [[nodiscard]] std::string path(const std::string& name) const { return dir_ + "/" + name; }

 private:
  [[nodiscard]] std::string file() const { return dir_ + "/results.json"; }
  std::string dir_;
  json db_ = json::object();
};

// ---------------------------------------------------------------------------------------------- statistics
struct Stat {
  double mean = 0, sd = 0;
  int n = 0;
};
Stat stat(const std::vector<double>& v) {
  Stat s;
  s.n = static_cast<int>(v.size());
  if (v.empty()) return s;
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  if (v.size() > 1) {
    double q = 0;
    for (double x : v) q += (x - s.mean) * (x - s.mean);
    s.sd = std::sqrt(q / static_cast<double>(v.size() - 1));
  }
  return s;
}
std::string pm(const std::vector<double>& v, int prec = 1) {
  const auto s = stat(v);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f ± %.*f", prec, s.mean, prec, s.sd);
  return buf;
}
std::string fmt(double x, int prec = 2) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", prec, x);
  return buf;
}

// ---------------------------------------------------------------------------------------------- plotting
// A tiny RGB rasteriser for the PNG figures (no dependency beyond the repo's stb writer): filled
// rectangles, lines, markers and a 3x5 pixel font for labels.
struct Canvas {
  int w, h;
  Tensor<> px;  // [3, H, W] in [0, 1]
  Canvas(int w_, int h_) : w(w_), h(h_), px(Tensor<>::full(mint::Shape{3, h_, w_}, 1.0f)) {}
  void dot(int x, int y, const float* rgb) {
    if (x < 0 || y < 0 || x >= w || y >= h) return;
    for (int c = 0; c < 3; ++c) px[(static_cast<std::int64_t>(c) * h + y) * w + x] = rgb[c];
  }
  void rect(int x0, int y0, int x1, int y1, const float* rgb) {
    for (int y = std::min(y0, y1); y <= std::max(y0, y1); ++y)
      for (int x = std::min(x0, x1); x <= std::max(x0, x1); ++x) dot(x, y, rgb);
  }
  void line(int x0, int y0, int x1, int y1, const float* rgb, int thick = 1) {
    const int n = std::max(std::abs(x1 - x0), std::abs(y1 - y0)) + 1;
    for (int i = 0; i <= n; ++i) {
      const int x = x0 + (x1 - x0) * i / n, y = y0 + (y1 - y0) * i / n;
      rect(x - thick / 2, y - thick / 2, x + (thick - 1) / 2, y + (thick - 1) / 2, rgb);
    }
  }
  void text(int x, int y, const std::string& s, const float* rgb, int scale = 2) {
    static const std::map<char, const char*> font{
        {'0', "111101101101111"}, {'1', "010110010010111"}, {'2', "111001111100111"}, {'3', "111001111001111"},
        {'4', "101101111001001"}, {'5', "111100111001111"}, {'6', "111100111101111"}, {'7', "111001010010010"},
        {'8', "111101111101111"}, {'9', "111101111001111"}, {'.', "000000000000010"}, {'%', "101001010100101"},
        {'-', "000000111000000"}, {'+', "000010111010000"}, {'=', "000111000111000"}, {'(', "010100100100010"},
        {')', "010001001001010"}, {'/', "001001010100100"}, {':', "000010000010000"}, {' ', "000000000000000"},
        {'A', "010101111101101"}, {'B', "110101110101110"}, {'C', "011100100100011"}, {'D', "110101101101110"},
        {'E', "111100110100111"}, {'F', "111100110100100"}, {'G', "011100101101011"}, {'H', "101101111101101"},
        {'I', "111010010010111"}, {'K', "101101110101101"}, {'L', "100100100100111"}, {'M', "101111111101101"},
        {'N', "110101101101101"}, {'O', "010101101101010"}, {'P', "110101110100100"}, {'R', "110101110101101"},
        {'S', "011100010001110"}, {'T', "111010010010010"}, {'U', "101101101101111"}, {'V', "101101101101010"},
        {'W', "101101111111101"}, {'X', "101101010101101"}, {'Y', "101101010010010"}, {'Z', "111001010100111"}};
    int cx = x;
    for (char ch : s) {
      auto it = font.find(static_cast<char>(std::toupper(static_cast<unsigned char>(ch))));
      if (it != font.end())
        for (int r = 0; r < 5; ++r)
          for (int col = 0; col < 3; ++col)
            if (it->second[r * 3 + col] == '1') rect(cx + col * scale, y + r * scale, cx + col * scale + scale - 1,
                                                      y + r * scale + scale - 1, rgb);
      cx += 4 * scale;
    }
  }
};

const float kBlack[3] = {0, 0, 0}, kGrey[3] = {0.8f, 0.8f, 0.8f};
const float* colour(const std::string& m) {
  static const std::map<std::string, std::array<float, 3>> c{
      {"dmi", {0.0f, 0.0f, 0.0f}},       {"smi50", {0.55f, 0.75f, 1.0f}}, {"smi76", {0.2f, 0.45f, 0.9f}},
      {"smi86", {0.0f, 0.15f, 0.55f}},   {"pri2", {1.0f, 0.7f, 0.4f}},    {"pri4", {0.95f, 0.45f, 0.0f}},
      {"pri7", {0.6f, 0.25f, 0.0f}},     {"real", {0.1f, 0.6f, 0.1f}},    {"gaussian", {0.85f, 0.1f, 0.1f}}};
  auto it = c.find(m);
  return it == c.end() ? kBlack : it->second.data();
}

// PRI Figure 1(b): student accuracy (mean, bar = ± sd over seeds; y_label names the measure) against the mean
// inversion time; the baselines as horizontal lines.
void plot_accuracy_vs_time(const std::string& path, const std::string& y_label, const std::vector<std::string>& names,
                           const std::map<std::string, std::vector<double>>& acc,
                           const std::map<std::string, std::vector<double>>& secs) {
  Canvas cv(640, 420);
  const int x0 = 70, x1 = 470, y0 = 370, y1 = 30;
  double tmax = 1;
  for (const auto& n : names) tmax = std::max(tmax, stat(secs.at(n)).mean);
  tmax *= 1.1;
  const auto X = [&](double t) { return x0 + static_cast<int>((x1 - x0) * t / tmax); };
  const auto Y = [&](double a) { return y0 - static_cast<int>((y0 - y1) * a / 100.0); };
  for (int a = 0; a <= 100; a += 20) {
    cv.line(x0, Y(a), x1, Y(a), kGrey);
    cv.text(x0 - 36, Y(a) - 5, std::to_string(a), kBlack);
  }
  const double step = tmax > 200 ? 50 : tmax > 80 ? 20 : tmax > 40 ? 10 : 5;
  for (double t = 0; t <= tmax; t += step) {
    cv.line(X(t), y0, X(t), y0 + 4, kBlack);
    cv.text(X(t) - 6, y0 + 10, fmt(t, 0), kBlack);
  }
  cv.line(x0, y0, x1, y0, kBlack, 2), cv.line(x0, y0, x0, y1, kBlack, 2);
  cv.text(x0 + 110, y0 + 30, "INVERSION TIME S", kBlack);
  cv.text(4, y1 - 20, y_label, kBlack);
  int ly = y1;
  for (const char* base : {"real", "gaussian"})
    if (acc.count(base)) {
      const int y = Y(stat(acc.at(base)).mean);
      for (int x = x0; x < x1; x += 8) cv.line(x, y, x + 4, y, colour(base), 2);
      cv.line(x1 + 20, ly + 5, x1 + 40, ly + 5, colour(base), 2);
      cv.text(x1 + 46, ly, base, colour(base));
      ly += 16;
    }
  for (const auto& n : names) {
    const auto a = stat(acc.at(n));
    const int x = X(stat(secs.at(n)).mean), y = Y(a.mean);
    cv.line(x, Y(a.mean - a.sd), x, Y(a.mean + a.sd), colour(n), 2);
    cv.rect(x - 4, y - 4, x + 4, y + 4, colour(n));
    cv.rect(x1 + 26, ly + 1, x1 + 34, ly + 9, colour(n));
    cv.text(x1 + 46, ly, n, colour(n));
    ly += 16;
  }
  mint::cli::write_png(path, cv.px, {0.0f, 1.0f});
}

// PRI Figures 5 and 6: histograms of the teacher's target-class confidence, one panel per set.
void plot_histograms(const std::string& path, const std::vector<std::pair<std::string, std::vector<double>>>& sets,
                     int bins) {
  const int pw = 200, ph = 130, cols = 4, rows = static_cast<int>((sets.size() + cols - 1) / cols);
  Canvas cv(cols * pw + 10, rows * ph + 10);
  for (std::size_t s = 0; s < sets.size(); ++s) {
    const int ox = 10 + static_cast<int>(s % cols) * pw, oy = 10 + static_cast<int>(s / cols) * ph;
    const auto& v = sets[s].second;
    std::vector<double> frac(static_cast<std::size_t>(bins), 0.0);
    for (double c : v) frac[static_cast<std::size_t>(std::min(bins - 1, static_cast<int>(c * bins)))] += 1.0 / static_cast<double>(v.size());
    const int bx0 = ox + 4, bx1 = ox + pw - 20, by0 = oy + ph - 30, by1 = oy + 16;
    cv.text(bx0, oy, sets[s].first, kBlack);
    for (int b = 0; b < bins; ++b) {
      const int xa = bx0 + (bx1 - bx0) * b / bins, xb = bx0 + (bx1 - bx0) * (b + 1) / bins - 1;
      const int y = by0 - static_cast<int>((by0 - by1) * frac[static_cast<std::size_t>(b)]);
      cv.rect(xa, y, xb, by0, colour(sets[s].first.substr(0, sets[s].first.find(' '))));
    }
    cv.line(bx0, by0, bx1, by0, kBlack);
    cv.text(bx0, by0 + 4, "0", kBlack), cv.text(bx1 - 4, by0 + 4, "1", kBlack);
  }
  mint::cli::write_png(path, cv.px, {0.0f, 1.0f});
}

std::string load_avg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

// ---------------------------------------------------------------------------------------------- main
int run(const Args& a) {
  const auto t_start = std::chrono::steady_clock::now();
  const std::string load_start = load_avg();
  auto teacher = ViT<>::load(a.teacher);
  const float lo = (0.0f - mint::tasks::kFashionMnistMean) / mint::tasks::kFashionMnistStd;
  const float hi = (1.0f - mint::tasks::kFashionMnistMean) / mint::tasks::kFashionMnistStd;
  std::vector<Method> methods;
  for (const auto& n : mint::examples::split_list(a.methods)) methods.push_back(method_of(n));
  mint::check(!methods.empty(), "--methods: the list is empty");
  fs::create_directories(a.out);
  mint::cli::check_writable_file(a.out + "/results.md", "--out");
  const std::string tag = "I" + std::to_string(a.images) + "_T" + std::to_string(a.iterations) + "_B" +
                          std::to_string(a.inv_batch) + "_" + a.augment + (a.tv == 1e-4f ? "" : "_tv" + fmt(a.tv, 6));  // 1e-4 (the earlier default): no suffix, its cached sets stay valid

  if (a.efficiency_only) {  // fresh timings of seed 0, nothing read from or written to the cache
    std::ostringstream md;
    md << "Command: `" << a.command << "` (" << mint::cpu::num_threads() << " thread(s)); " << a.images
       << " output images per method, T = " << a.iterations << ", batches of at most " << a.inv_batch
       << " trajectories, augmentation " << a.augment << ", seed 0. Peak: tensor memory above what was live before "
          "each batch (the largest over the batches).\n\n";
    md << "| method | images | trajectories | final active patches | its/s | GFLOP | DMI/method FLOPs per image | "
          "Theorem 1 | peak MiB | inversion s | speedup vs DMI |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    double dmi_s = 0, dmi_gf = 0;
    for (const auto& m : methods) {
      InversionCost c;
      invert(teacher, m, a, 0, lo, hi, c);
      if (m.kind == Method::Dmi) dmi_s = c.seconds / static_cast<double>(c.images), dmi_gf = c.gflop / static_cast<double>(c.images);
      md << "| " << m.name << " | " << c.images << " | " << c.trajectories << " | " << c.final_active << " | "
         << fmt(static_cast<double>(c.iterations_run) / c.seconds, 1) << " | " << fmt(c.gflop, 1) << " | "
         << (dmi_gf > 0 ? fmt(dmi_gf / (c.gflop / static_cast<double>(c.images))) : "-") << " | " << fmt(c.theorem1_vs_dmi)
         << " | " << fmt(c.peak_mib, 1) << " | " << fmt(c.seconds, 1) << " | "
         << (dmi_s > 0 ? fmt(dmi_s / (c.seconds / static_cast<double>(c.images))) : "-") << " |\n";
      std::printf("%s: %.1f s\n", m.name.c_str(), c.seconds);
      std::fflush(stdout);
    }
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
  const std::string dtag = "v2_E" + std::to_string(a.epochs) + "_b" + std::to_string(a.batch) + "_lr" + fmt(a.lr, 4) +
                           "_tau" + fmt(a.tau, 2) + "_probe" + std::to_string(a.probe) + "_flip" +
                           std::to_string(a.flip) + "_Q" + std::to_string(a.quant_test) + "_test" +
                           std::to_string(a.test_limit) + "_" + fs::path(a.backbone).filename().string();

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

  std::vector<std::string> names;
  for (const auto& m : methods) names.push_back(m.name);
  std::map<std::string, std::vector<InversionCost>> costs;
  std::map<std::string, std::vector<Downstream>> down;
  std::map<std::string, std::vector<double>> conf;          // pooled over seeds
  std::map<std::string, std::vector<Downstream>> stage_down;  // pri4 stage k: "pri4@k"
  std::map<std::string, std::vector<double>> stage_conf;
  std::map<int, int> pri4_stage_iteration;

  for (int seed = 0; seed < a.seeds; ++seed) {
    const auto useed = static_cast<std::uint64_t>(seed);
    for (const auto& m : methods) {
      const std::string key = m.name + "_" + tag + "_s" + std::to_string(seed);
      const std::string file = cache.path(key + ".safetensors");
      std::vector<SparseImage> data;
      InversionCost c;
      if (cache.has("inversion/" + key) && fs::exists(file)) {
        data = mint::load_synthetic_dataset(file);
        c = InversionCost::from_json(cache.get("inversion/" + key));
      } else {
        std::printf("[seed %d] inverting %s ...\n", seed, m.name.c_str());
        std::fflush(stdout);
        data = invert(teacher, m, a, useed, lo, hi, c);
        mint::io::write_atomically(file, [&](const std::string& p) {
          mint::save_synthetic_dataset(p, data, {{"method", m.name}, {"seed", std::to_string(seed)}});
        });
        cache.put("inversion/" + key, c.to_json());
      }
      std::printf("[seed %d] %s: %lld images, %.1f s inversion\n", seed, m.name.c_str(), static_cast<long long>(data.size()),
                  c.seconds);
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
          if (!cache.has(dk)) cache.put(dk, downstream(ctx, sub, useed).to_json());
          stage_down[sk].push_back(Downstream::from_json(cache.get(dk)));
        }
      }
      const std::string dk = "downstream/" + key + "_" + dtag;
      if (!cache.has(dk)) cache.put(dk, downstream(ctx, data, useed).to_json());
      down[m.name].push_back(Downstream::from_json(cache.get(dk)));
      std::printf("[seed %d] %s: student unseen %.1f%% (5-way %.1f%%) all %.1f%%, W4A8 %.1f%% W8A8 %.1f%%\n", seed, m.name.c_str(),
                  down[m.name].back().student.unseen, down[m.name].back().student.unseen_within, down[m.name].back().student.all, down[m.name].back().w4a8,
                  down[m.name].back().w8a8);
      std::fflush(stdout);
    }
    // baselines: the same number of real training images (a seeded sample over all ten classes), and Gaussian
    // noise clipped to the valid range (the inversions' starting point)
    for (const std::string base : {"real", "gaussian"}) {
      const std::string dk = "downstream/" + base + "_" + tag + "_s" + std::to_string(seed) + "_" + dtag;
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
      if (!cache.has(dk)) cache.put(dk, downstream(ctx, data, useed).to_json());
      down[base].push_back(Downstream::from_json(cache.get(dk)));
      const auto cf = mint::tasks::teacher_confidence(teacher, data);
      if (base == "gaussian") conf[base].insert(conf[base].end(), cf.begin(), cf.end());
      std::printf("[seed %d] %s: student unseen %.1f%% (5-way %.1f%%) all %.1f%%, W4A8 %.1f%% W8A8 %.1f%%\n", seed, base.c_str(),
                  down[base].back().student.unseen, down[base].back().student.unseen_within, down[base].back().student.all, down[base].back().w4a8,
                  down[base].back().w8a8);
      std::fflush(stdout);
    }
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();

  // ------------------------------------------------------------------ tables
  auto col = [&](const std::vector<Downstream>& v, auto f) {
    std::vector<double> x;
    for (const auto& d : v) x.push_back(f(d));
    return x;
  };
  std::ostringstream md;
  md << "## Sizes of this run\n\n"
     << "- command: `" << a.command << "`\n"
     << "- " << a.seeds << " seeds; " << a.images << " output images per method; T = " << a.iterations
     << " iterations per trajectory; inversion batches of at most " << a.inv_batch << " trajectories; augmentation "
     << a.augment << "; TV weight " << a.tv << "\n"
     << "- distillation: " << a.epochs << " epochs, batch " << a.batch << ", SGD lr " << a.lr
     << " (momentum 0.9, wd 1e-4), tau " << a.tau << ", " << (a.probe ? "linear probing (head only)" : "full fine-tuning")
     << ", flip " << (a.flip ? "on" : "off") << "; student backbone `" << a.backbone << "`\n"
     << "- student accuracy on " << test.size() << " test images; quantized accuracy on the first " << quant_test.size()
     << " test images\n"
     << "- wall time of this invocation: " << fmt(wall, 0) << " s (cached entries are read, not recomputed); "
     << mint::cpu::num_threads() << " thread(s); load average at start / end: " << load_start << " / " << load_avg()
     << "\n\n";
  md << "Reference: teacher FP " << fmt(ref["teacher_all"].get<double>(), 2) << "% on all ten classes ("
     << fmt(ref["teacher_unseen"].get<double>(), 2) << "% on 5-9; " << fmt(ref["teacher_fp_quant_test"].get<double>(), 2)
     << "% on the quantization test images); the student backbone before distillation "
     << fmt(ref["backbone_all"].get<double>(), 2) << "% on all ten, " << fmt(ref["backbone_seen"].get<double>(), 2)
     << "% on 0-4, " << fmt(ref["backbone_unseen"].get<double>(), 2) << "% on 5-9.\n\n";

  md << "## Efficiency (PRI Table 2)\n\nThe inversions of this run: per seed, summed over the inversion batches; "
        "mean ± sd over seeds. Each timing was recorded when its set was inverted and is cached with it (possibly by an "
        "earlier invocation than the one above), on a machine shared with other jobs. "
        "Peak memory: see the separate efficiency run below.\n\n"
     << "| method | images | trajectories | final active patches | its/s | GFLOP | DMI/method FLOPs per image | "
        "Theorem 1 DMI/method | inversion s | speedup vs DMI (time per image) |\n"
     << "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  const double dmi_gf = costs.count("dmi") ? costs["dmi"][0].gflop / static_cast<double>(costs["dmi"][0].images) : 0;
  const double dmi_sec = costs.count("dmi") ? [&] {
    std::vector<double> s;
    for (const auto& c : costs["dmi"]) s.push_back(c.seconds / static_cast<double>(c.images));
    return stat(s).mean;
  }() : 0.0;
  std::map<std::string, std::vector<double>> secs, all10, within;
  for (const auto& n : names) {
    std::vector<double> its, sec;
    for (const auto& c : costs[n]) its.push_back(static_cast<double>(c.iterations_run) / c.seconds), sec.push_back(c.seconds);
    secs[n] = sec;
    const auto& c0 = costs[n][0];
    const double per_img = stat(sec).mean / static_cast<double>(c0.images);
    md << "| " << n << " | " << c0.images << " | " << c0.trajectories << " | " << c0.final_active << " | " << pm(its)
       << " | " << fmt(c0.gflop, 1) << " | " << (dmi_gf > 0 ? fmt(dmi_gf / (c0.gflop / static_cast<double>(c0.images))) : "-")
       << " | " << fmt(c0.theorem1_vs_dmi) << " | " << pm(sec) << " | "
       << (dmi_sec > 0 ? fmt(dmi_sec / per_img) : "-") << " |\n";
  }

  md << "\n## Downstream (PRI Table 3): distillation and data-free quantization\n\n"
        "Student top-1 (%) on the real test set: on the five classes its backbone never saw (5-9) with the argmax "
        "over all ten classes; the same with the argmax over 5-9 only (5-way, chance 20 %); on all ten; on 0-4. "
        "Teacher fake-quantized W4/A8 and W8/A8, calibrated on the set (top-1 %, all ten classes). Mean ± sd "
        "over seeds.\n\n"
     << "| data | student 5-9 (unseen) | student 5-9, 5-way | student all 10 | student 0-4 | W4/A8 | W8/A8 | distillation s |\n"
     << "|---|---:|---:|---:|---:|---:|---:|---:|\n";
  std::vector<std::string> rows = names;
  rows.push_back("real");
  rows.push_back("gaussian");
  for (const auto& n : rows) {
    const auto& v = down[n];
    all10[n] = col(v, [](const Downstream& d) { return d.student.all; });
    within[n] = col(v, [](const Downstream& d) { return d.student.unseen_within; });
    md << "| " << (n == "real" ? "real training images" : n == "gaussian" ? "Gaussian noise" : n) << " | "
       << pm(col(v, [](const Downstream& d) { return d.student.unseen; })) << " | " << pm(within[n]) << " | "
       << pm(all10[n]) << " | "
       << pm(col(v, [](const Downstream& d) { return d.student.seen; })) << " | "
       << pm(col(v, [](const Downstream& d) { return d.w4a8; })) << " | "
       << pm(col(v, [](const Downstream& d) { return d.w8a8; })) << " | "
       << fmt(stat(col(v, [](const Downstream& d) { return d.distill_s; })).mean, 1) << " |\n";
  }
  // the bar of the issue: the best synthetic method against Gaussian noise, per seed, for each measure
  const std::vector<std::pair<std::string, double StudentAcc::*>> measures{
      {"student 5-9 (argmax over 10)", &StudentAcc::unseen},
      {"student 5-9 (5-way)", &StudentAcc::unseen_within},
      {"student all 10", &StudentAcc::all}};
  md << "\nBest synthetic method per measure against Gaussian noise (per-seed differences in points, mean ± sd, "
        "and the smallest):\n\n| measure | ordering of the synthetic methods (means) | best | best − Gaussian | smallest "
        "per-seed difference |\n|---|---|---|---:|---:|\n";
  for (const auto& [label, field] : measures) {
    std::map<std::string, std::vector<double>> v;
    for (const auto& n : rows)
      for (const auto& d : down[n]) v[n].push_back(d.student.*field);
    std::vector<std::string> order = names;
    std::sort(order.begin(), order.end(), [&](auto& x, auto& y) { return stat(v[x]).mean > stat(v[y]).mean; });
    std::vector<double> margin;
    for (int s = 0; s < a.seeds; ++s)
      margin.push_back(v[order[0]][static_cast<std::size_t>(s)] - v["gaussian"][static_cast<std::size_t>(s)]);
    md << "| " << label << " | ";
    for (std::size_t i = 0; i < order.size(); ++i) md << (i ? " > " : "") << order[i] << " " << fmt(stat(v[order[i]]).mean, 1);
    md << " | " << order[0] << " | " << pm(margin) << " | " << fmt(*std::min_element(margin.begin(), margin.end()), 1) << " |\n";
  }
  md << "\nEvery synthetic method against Gaussian noise: per-seed difference in points, mean ± sd (smallest over the "
        "seeds).\n\n| method | student all 10 | student 5-9, 5-way | student 5-9 (argmax over 10) |\n|---|---:|---:|---:|\n";
  // one table row: x − y per seed on the three student measures, mean ± sd (smallest)
  auto diff_row = [&](const std::string& label, const std::string& x, const std::string& y) {
    md << "| " << label;
    for (auto field : {&StudentAcc::all, &StudentAcc::unseen_within, &StudentAcc::unseen}) {
      std::vector<double> diff;
      for (std::size_t s = 0; s < down[x].size(); ++s) diff.push_back(down[x][s].student.*field - down[y][s].student.*field);
      md << " | " << pm(diff) << " (" << fmt(*std::min_element(diff.begin(), diff.end()), 1) << ")";
    }
    md << " |\n";
  };
  for (const auto& n : names) diff_row(n, n, "gaussian");
  // the papers' ordering claims (DMI >~ PRI > SMI at equal sparsity) as paired per-seed differences
  const std::vector<std::pair<std::string, std::string>> pairs{{"dmi", "pri2"},   {"dmi", "pri4"},   {"dmi", "pri7"},
                                                               {"pri2", "smi50"}, {"pri4", "smi76"}, {"pri7", "smi86"}};
  md << "\nPairs for the papers' ordering (DMI ≳ PRI > SMI at equal sparsity: PRI v = 2/4/7 end with 25/13/7 of 49 "
        "patches, SMI 50/76/86 % with 23/11/6): per-seed difference in points, mean ± sd (smallest over the seeds).\n\n"
        "| pair | student all 10 | student 5-9, 5-way | student 5-9 (argmax over 10) |\n|---|---:|---:|---:|\n";
  for (const auto& [x, y] : pairs) {
    if (down.count(x) && down.count(y)) diff_row(x + " − " + y, x, y);
  }
  // what the students predict on the real test images of 5-9: the class predicted most often and its share, per
  // seed (a head that predicts one unseen class for everything scores about 20 % on 5-9 without knowing any)
  auto top_share = [](const std::vector<double>& v, int offset) {
    const auto it = std::max_element(v.begin(), v.end());
    return std::to_string(offset + static_cast<int>(it - v.begin())) + " (" + fmt(*it, 0) + " %)";
  };
  md << "\nPredictions on the 5,000 real test images of classes 5-9: the class each seed's student predicts most "
        "often there, and the share of those images it receives (argmax over all ten; argmax over 5-9). A student that "
        "puts nearly all of them into one unseen class scores about 20 % on 5-9 without telling the classes apart.\n\n"
     << "| data | argmax over 10: most predicted class (share), per seed | 5-way: most predicted class (share), per "
        "seed |\n|---|---|---|\n";
  for (const auto& n : rows) {
    md << "| " << (n == "real" ? "real training images" : n == "gaussian" ? "Gaussian noise" : n) << " | ";
    for (std::size_t s = 0; s < down[n].size(); ++s) md << (s ? ", " : "") << top_share(down[n][s].student.pred_unseen, 0);
    md << " | ";
    for (std::size_t s = 0; s < down[n].size(); ++s) md << (s ? ", " : "") << top_share(down[n][s].student.pred_within, 5);
    md << " |\n";
  }
  md << "\n## Only the images of one detachment point (PRI Tables A4, A5), PRI v = 4\n\n"
     << "Each row uses only the " << a.images / 4 << " images detached at that point (stage 4: the remaining patches "
        "at T); same distillation and calibration as above.\n\n"
     << "| stage | detached after iteration | student 5-9 | student 5-9, 5-way | student all 10 | W4/A8 | W8/A8 | mean teacher confidence |\n"
     << "|---|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& [k, it] : pri4_stage_iteration) {
    const std::string sk = "pri4@" + std::to_string(k);
    const auto& v = stage_down[sk];
    md << "| " << k << " | " << it << " | " << pm(col(v, [](const Downstream& d) { return d.student.unseen; })) << " | "
       << pm(col(v, [](const Downstream& d) { return d.student.unseen_within; })) << " | "
       << pm(col(v, [](const Downstream& d) { return d.student.all; })) << " | "
       << pm(col(v, [](const Downstream& d) { return d.w4a8; })) << " | "
       << pm(col(v, [](const Downstream& d) { return d.w8a8; })) << " | " << fmt(stat(stage_conf[sk]).mean, 3) << " |\n";
  }

  const int bins = 10;
  auto hist_row = [&](const std::string& label, const std::vector<double>& v) {
    std::vector<double> frac(bins, 0.0);
    for (double c : v) frac[static_cast<std::size_t>(std::min(bins - 1, static_cast<int>(c * bins)))] += 1.0;
    md << "| " << label << " | " << v.size() << " | " << fmt(stat(v).mean, 3);
    for (double f : frac) md << " | " << fmt(100.0 * f / static_cast<double>(v.size()), 0);
    md << " |\n";
  };
  md << "\n## Teacher confidence (PRI Figures 5, 6)\n\n"
        "The teacher's softmax probability of each image's target class, on the image's kept patches only; all "
        "seeds pooled. Columns: % of images per confidence bin of width 0.1. Figures: `accuracy_vs_time.png` "
        "and `accuracy_vs_time_unseen.png` (Fig. 1b; all ten classes, and 5-9 5-way) and `confidence.png` (these "
        "histograms).\n\n"
     << "| set | images | mean | [0,.1) | [.1,.2) | [.2,.3) | [.3,.4) | [.4,.5) | [.5,.6) | [.6,.7) | [.7,.8) | [.8,.9) | [.9,1] |\n"
     << "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  std::vector<std::pair<std::string, std::vector<double>>> panels;
  for (const auto& n : names) hist_row(n, conf[n]), panels.push_back({n, conf[n]});
  hist_row("gaussian", conf["gaussian"]);
  panels.push_back({"gaussian", conf["gaussian"]});
  for (const auto& [sk, v] : stage_conf) {
    hist_row(sk + " (stage " + sk.substr(sk.find('@') + 1) + ")", v);
    panels.push_back({sk.substr(0, sk.find('@')) + " " + sk.substr(sk.find('@') + 1), v});
  }

  plot_accuracy_vs_time(a.out + "/accuracy_vs_time.png", "STUDENT ACC. ALL 10 CLASSES %", names, all10, secs);
  plot_accuracy_vs_time(a.out + "/accuracy_vs_time_unseen.png", "STUDENT ACC. CLASSES 5-9 5-WAY %", names, within, secs);
  plot_histograms(a.out + "/confidence.png", panels, bins);
  mint::io::write_file_atomically(a.out + "/results.md", md.str());
  std::printf("\n%s\nwrote %s/results.md, accuracy_vs_time.png, accuracy_vs_time_unseen.png, confidence.png (%.0f s)\n", md.str().c_str(),
              a.out.c_str(), wall);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  mint::cli::Command cmd("mint-experiment", "DMI vs SMI vs PRI downstream on the embedded teacher (docs/results.md).");
  add_options(cmd, a);
  return mint::cli::main(cmd, argc, argv, [&] {
    validate(cmd, a);
    a.command = cmd.command_line();
    return run(a);
  });
}
