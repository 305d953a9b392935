// mint-synthesize: many synthetic images as a resumable, sharded job (issue 16; docs/scale.md). The work is split
// into batches of trajectories; batch j's labels and random streams depend only on (--seed, j); each finished
// batch is one shard file written atomically and recorded in DIR/manifest.json (mint/tasks/synthesis.hpp).
//
//   mint-synthesize (--images N | --per-class K) [--method dmi|smi|pri] [--selector high|low|random|top] [--v 4]
//                   [--prune 50,100,200,300] [--ratio 0.3] [--augment none|jitterflip] [--iterations 400]
//                   [--batch 10] [--lr 0.25] [--tv 1e-4] [--l2 0] [--seed 0] [--model PATH] [--recipe PATH.json]
//                   [--out DIR] [--resume] [--shard i/n] [--png] [--threads T]
//   mint-synthesize merge --out DIR DIR1 [DIR2 ...]
//   mpirun -n R mint-synthesize ...    (built with MINT_WITH_MPI: rank 0 hands batches out on request)
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <variant>

#include <nlohmann/json.hpp>

#include <mint/mint.hpp>
#include <mint/tasks/synthesis.hpp>

#include "inversion_cli.hpp"
#ifdef MINT_WITH_MPI
#include <mint/tasks/synthesis_mpi.hpp>
#endif

namespace {

struct Args : mint::cli::InversionArgs {
  std::string out = "out/synthesize", shard;
  std::int64_t images = 0, per_class = 0;
  int threads = 0;
  bool resume = false, png = false;
  std::vector<std::string> merge_inputs;
};

// Thrown from the engine's per-iteration callback once SIGINT/SIGTERM arrived (cli::stop_flag): the batch in
// flight is abandoned, the finished ones are in the manifest.
struct Interrupted {};

using mint::cli::schedule_of;

// Every option that determines the shards' bytes, by its CLI name (what a resume must match).
nlohmann::json byte_options(const Args& a, const std::string& model_sha, const mint::Normalization& norm) {
  nlohmann::json j = {{"method", a.method},
                      {"selector", a.selector},
                      {"augment", a.augment},
                      {"iterations", a.iterations},
                      {"batch", a.batch},
                      {"lr", a.lr},
                      {"tv", a.tv},
                      {"l2", a.l2},
                      {"seed", a.seed},
                      {"images", a.images},
                      {"per-class", a.per_class},
                      {"model-sha256", model_sha},
                      {"normalisation-mean", norm.mean},
                      {"normalisation-std", norm.std}};
  if (a.method == "pri") j["v"] = a.v;
  if (a.method == "smi") j["prune"] = a.prune, j["ratio"] = a.ratio;
  j["policies"] = mint::cli::policies_json(a);  // the registry's record, parameters included (e.g. jitterflip's)
  return j;
}

// The progress line: one per batch when stderr is not a terminal, an overwritten line when it is.
void progress(const char* what, std::int64_t done, std::int64_t total, double secs) {
  const double rate = secs > 0 ? static_cast<double>(done) / secs : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0.0;
  static const bool tty = ::isatty(STDERR_FILENO) != 0;
  std::fprintf(stderr, "%s%s: %lld/%lld images, %.2f images/s, ETA %.0f s%s", tty ? "\r" : "", what,
               static_cast<long long>(done), static_cast<long long>(total), rate, eta, tty ? "   " : "\n");
  std::fflush(stderr);
}

int merge(const Args& a) {
  const auto m = mint::tasks::merge_manifests(a.out, a.merge_inputs);
  std::printf("merged %zu shards (%lld images) into %s/manifest.json\n", m.shards.size(),
              static_cast<long long>(m.to_json()["totals"]["images"].get<std::int64_t>()), a.out.c_str());
  return 0;
}

int synthesize(const mint::cli::Command& c, Args& a, int rank, int ranks) {
  mint::cli::apply_policies_file(c, a);  // the policies file, if any, before any long work
  if (a.threads > 0) mint::cpu::set_num_threads(a.threads);
  int slice_i = 0, slice_n = 1;
  if (!a.shard.empty()) {
    char slash = 0;
    std::istringstream is(a.shard);
    mint::check(static_cast<bool>(is >> slice_i >> slash >> slice_n) && slash == '/' && is.eof() && slice_n >= 1 &&
                    slice_i >= 0 && slice_i < slice_n,
                "--shard must be i/n with 0 <= i < n, got '", a.shard, "'");
  }
  mint::check(!a.png || ranks == 1, "--png: not available under mpirun (", ranks,
              " ranks); use one process or --shard");
  mint::ModelSource src = mint::cli::open_inversion_model(c, a);
  auto& model = src.vit;
  const auto& cfg = model.config();
  mint::cli::validate_inversion(c, a, cfg);
  const mint::Normalization norm = src.normalization.value.for_channels(cfg.in_chans, "normalisation");
  if (rank == 0) std::printf("%s\n", src.describe().c_str());
  const int per_traj = a.method == "pri" ? a.v : 1;
  mint::tasks::ShardManifest fresh;
  fresh.options = byte_options(a, mint::io::sha256_file(src.weights), norm);
  fresh.plan = a.per_class > 0 ? mint::tasks::SynthesisPlan::for_per_class(a.per_class, per_traj, a.batch, cfg.classes)
                               : mint::tasks::SynthesisPlan::for_images(a.images, per_traj, a.batch, cfg.classes);
  fresh.dense_flops_per_image = mint::CostMeter(cfg).dmi_flops_per_image(a.iterations);
  fresh.slice_index = slice_i, fresh.slice_count = slice_n;

  mint::InversionOptions opt;
  opt.iterations = a.iterations, opt.lr = a.lr;
  opt.pixel_lo = norm.lo(0), opt.pixel_hi = norm.hi(0);
  opt.normalization = norm;  // the per-channel clip
  const mint::tasks::InvertBatch invert = [&](const std::vector<int>& labels, std::uint64_t seed,
                                              const std::function<void()>& poll) {
    mint::InversionOptions o = opt;
    o.seed = seed;
    mint::tasks::BatchOutput out;
    mint::CostMeter meter(cfg);  // the batch's executed FLOPs (deterministic: from the active counts)
    meter.begin(static_cast<std::int64_t>(labels.size()));
    auto each = [&](const mint::IterationStats& s) {
      meter(s);
      out.gemm_flops = meter.flops();
      poll();
      if (mint::cli::stop_flag()->load()) throw Interrupted{};
    };
    out.images = std::visit(
        [&](auto sch, auto sel, auto aug) {
          using Prior = mint::Sum<mint::TV, mint::L2>;
          mint::Inverter<mint::ViT<>, mint::ClassObjective, Prior, decltype(sel), decltype(sch), decltype(aug)> inv(
              model, {}, Prior{mint::TV{a.tv}, mint::L2{a.l2}}, sel, sch, aug, o);
          return inv.run(labels, each).images;
        },
        schedule_of(a), mint::selectors().make(a.selector), mint::cli::augmentation_of(a));
    const auto conf = mint::tasks::teacher_confidence(model, out.images);
    for (std::size_t i = 0; i < conf.size(); ++i) out.images[i].confidence = static_cast<float>(conf[i]);
    return out;
  };
  auto write_png = [&](const mint::tasks::ShardEntry& e) {
    if (!a.png) return;
    const auto imgs = mint::load_synthetic_dataset((std::filesystem::path(a.out) / e.record.file).string());
    auto grid = mint::Tensor<>::empty(
        mint::Shape{static_cast<std::int64_t>(imgs.size()), cfg.in_chans, cfg.img_size, cfg.img_size});
    auto masks = mint::Tensor<>::empty(mint::Shape{static_cast<std::int64_t>(imgs.size()), cfg.num_patches()});
    for (std::size_t i = 0; i < imgs.size(); ++i) {
      std::copy(imgs[i].pixels.data(), imgs[i].pixels.data() + imgs[i].pixels.numel(),
                grid.data() + static_cast<std::int64_t>(i) * imgs[i].pixels.numel());
      std::copy(imgs[i].mask.data(), imgs[i].mask.data() + cfg.num_patches(),
                masks.data() + static_cast<std::int64_t>(i) * cfg.num_patches());
    }
    const auto png = (std::filesystem::path(a.out) / e.record.file).replace_extension(".png").string();
    const auto picture = mint::io::image_grid(grid, static_cast<int>(std::min<std::size_t>(imgs.size(), 10)), 2, &masks,
                                              cfg.patch, norm);
    mint::io::write_atomically(png, [&](const std::string& tmp) { mint::io::write_png(tmp, picture); });
  };

  // rank 0 alone reads and writes the manifest
  std::vector<std::int64_t> todo;
  if (rank == 0) {
    const auto rep = mint::tasks::prepare_resume(a.out, fresh, a.resume);
    for (const auto& line : rep.redone) std::fprintf(stderr, "resume: %s\n", line.c_str());
    todo = fresh.todo();
    std::printf(
        "mint-synthesize: %s, %lld trajectories in %lld batches of %lld (%lld images), slice %d/%d, %d rank%s, "
        "%zu batch%s to run%s, out %s\n",
        a.method.c_str(), static_cast<long long>(fresh.plan.trajectories), static_cast<long long>(fresh.plan.batches()),
        static_cast<long long>(a.batch), static_cast<long long>(fresh.plan.images()), slice_i, slice_n, ranks,
        ranks == 1 ? "" : "s", todo.size(), todo.size() == 1 ? "" : "es", rep.had_manifest ? " (resumed)" : "",
        a.out.c_str());
    std::fflush(stdout);
    fresh.write(a.out);
  }
  std::int64_t todo_images = 0, done_images = 0;
  for (auto j : todo) todo_images += static_cast<std::int64_t>(fresh.plan.labels(j).size()) * per_traj;
  std::vector<std::int64_t> rank_images(static_cast<std::size_t>(ranks), 0);
  const auto t0 = std::chrono::steady_clock::now();
  double manifest_s = 0.0, shard_write_s = 0.0, invert_s = 0.0;
  auto on_done = [&](const mint::tasks::ShardEntry& e, int by) {
    const auto c0 = std::chrono::steady_clock::now();
    fresh.shards[e.record.batch] = e;
    fresh.write(a.out);
    manifest_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
    shard_write_s += e.write_seconds, invert_s += e.invert_seconds;
    done_images += e.record.images;
    rank_images[static_cast<std::size_t>(by)] += e.record.images;
    const std::string what = "batch " + std::to_string(e.record.batch) + " (rank " + std::to_string(by) + ")";
    progress(what.c_str(), done_images, todo_images,
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  };
#ifdef MINT_WITH_MPI
  if (ranks > 1) {
    mint::tasks::run_batches_mpi(MPI_COMM_WORLD, a.out, fresh, a.seed, todo, invert,
                                 [&](const mint::tasks::ShardEntry& e, int by) { on_done(e, by); });
    (void)write_png;
  } else
#endif
  {
    for (auto j : todo) {
      const auto e = mint::tasks::run_batch(a.out, fresh, a.seed, j, invert);
      write_png(e);
      on_done(e, 0);
    }
  }
  if (rank != 0) return 0;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (::isatty(STDERR_FILENO)) std::fprintf(stderr, "\n");
  // the run's report: times and ranks (never in the manifest, whose bytes must not depend on them)
  nlohmann::json per_rank = nlohmann::json::array();
  for (auto n : rank_images) per_rank.push_back(n);
  const nlohmann::json run = {{"command", "mint-synthesize"},
                              {"ranks", ranks},
                              {"threads", mint::cpu::num_threads()},
                              {"slice", a.shard.empty() ? "0/1" : a.shard},
                              {"batches_run", todo.size()},
                              {"images_run", done_images},
                              {"seconds", secs},
                              {"images_per_s", secs > 0 ? static_cast<double>(done_images) / secs : 0.0},
                              {"inversion_seconds", invert_s},
                              {"shard_write_seconds", shard_write_s},
                              {"manifest_write_seconds", manifest_s},
                              // checkpointing (shard write + manifest rewrite) relative to inverting, per batch
                              {"checkpoint_share", invert_s > 0 ? (shard_write_s + manifest_s) / invert_s : 0.0},
                              {"images_per_rank", per_rank},
                              {"complete", fresh.complete()}};
  const std::string run_name = fresh.slice_count == 1 ? "run.json" : "run-" + fresh.file_name().substr(9);
  mint::io::write_file_atomically((std::filesystem::path(a.out) / run_name).string(), run.dump(1) + "\n");
  std::printf("%lld images in %.2f s (%.2f images/s, %d rank%s; checkpoints %.3f%% of inversion time), %s/%s%s\n",
              static_cast<long long>(done_images), secs, secs > 0 ? static_cast<double>(done_images) / secs : 0.0,
              ranks, ranks == 1 ? "" : "s", 100.0 * run.at("checkpoint_share").get<double>(), a.out.c_str(),
              fresh.file_name().c_str(), fresh.complete() ? " complete" : "");
  return 0;
}

void add_options(mint::cli::Command& c, Args& a) {
  auto& app = c.app();
  app.require_subcommand(0, 1);
  auto* count = c.number("--images", a.images, "output images (rounded up to whole trajectories)", 1, 1LL << 40);
  auto* pc = c.number("--per-class", a.per_class, "output images of every class (instead of --images)", 1, 1LL << 40);
  count->excludes(pc);
  mint::cli::add_inversion_options(c, a);
  c.text("--out", a.out, "the sharded dataset folder");
  app.add_flag("--resume", a.resume, "require a manifest in --out to resume (resuming is the default when one exists)");
  c.text("--shard", a.shard, "run slice i of n (batches j with j % n == i), e.g. for a SLURM job array");
  app.add_flag("--png", a.png, "also write a PNG grid per shard");
  c.number("--threads", a.threads, "OpenMP threads per rank (default: OMP_NUM_THREADS)", 0, 4096);
}

}  // namespace

int main(int argc, char** argv) {
  int rank = 0, ranks = 1;
#ifdef MINT_WITH_MPI
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
#endif
  Args a;
  mint::cli::Command cmd("mint-synthesize",
                         "Inverts a ViT into many images as a resumable, sharded job (docs/scale.md).");
  add_options(cmd, a);
  auto* merge_cmd =
      cmd.app().add_subcommand("merge", "check and merge the manifests of slices into --out/manifest.json");
  merge_cmd->add_option("--out", a.out, "the merged folder")->required();
  merge_cmd->add_option("dirs", a.merge_inputs, "folders holding manifest-slice-*.json")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd.stop_gracefully();  // the per-iteration callback polls cli::stop_flag()
  const int rc = mint::cli::main(cmd, argc, argv, [&] {
    if (*merge_cmd) return rank == 0 ? merge(a) : 0;
    mint::check(a.images > 0 || a.per_class > 0, "give --images N or --per-class K (see --help)");
    try {
      return synthesize(cmd, a, rank, ranks);
    } catch (const Interrupted&) {
      std::fprintf(stderr, "\nmint-synthesize: interrupted, the batch in flight was abandoned; finished batches are "
                   "in the manifest: rerun the same command to resume\n");
      return mint::cli::interrupted_exit_code();
    }
  });
#ifdef MINT_WITH_MPI
  if (rc != 0 && ranks > 1) MPI_Abort(MPI_COMM_WORLD, rc);
  MPI_Finalize();
#endif
  return rc;
}
