// mint/tasks/synthesis.hpp -- synthesis as a resumable job (issue 16, docs/scale.md): many images split into
// batches of trajectories, one shard file per batch, a manifest that records every finished shard.
//
//   plan        trajectory g (0-based, over the whole job) has label g % classes; batch j holds trajectories
//               [j * batch, min((j + 1) * batch, trajectories)), and its random streams (init noise, random
//               selector, augmentation) come from batch_seed(seed, j): a Philox block of (seed, j). So batch j's
//               bytes depend only on (options, j), never on which worker runs it, when, or in which order.
//   shards      DIR/shard-<j>.safetensors (a synthetic-dataset file, mint/inversion/sparse_image.hpp), each
//               written atomically (mint/io/atomic_file.hpp), then its SHA-256 (mint/io/sha256.hpp) recorded
//               in the manifest, itself rewritten atomically after every batch.
//   manifest    DIR/manifest.json (or DIR/manifest-slice-<i>-of-<n>.json for --shard i/n): the options that
//               determine the bytes (model hash included), the plan, the finished shards (hash, images, FLOPs),
//               totals and the cost summary. It holds no times, ranks or paths, so the same options give the
//               same manifest bytes however the work was spread; times go to a separate run report.
//   resume      a manifest for the same options: its shards whose files still hash to the recorded digest are
//               kept, the rest (missing, truncated, corrupted) are redone; a manifest for other options is
//               refused with the first differing option.
//   merge       slices' manifests (same options, each batch once or with equal hashes, every file verified)
//               become one complete DIR/manifest.json, shards copied in when they live in another folder.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mint/core/error.hpp"
#include "mint/core/rng.hpp"
#include "mint/inversion/sparse_image.hpp"
#include "mint/io/atomic_file.hpp"
#include "mint/io/safetensors.hpp"
#include "mint/io/sha256.hpp"

namespace mint::tasks {

// The Philox stream batch seeds are drawn from (distinct from the engine's streams, which are keyed by the batch
// seed itself).
inline constexpr std::uint32_t kBatchSeedStream = 0x5a9d1e16u;

// The seed of batch j: 64 bits of the Philox block (seed, kBatchSeedStream, j). A pure function of (seed, j).
inline std::uint64_t batch_seed(std::uint64_t seed, std::int64_t batch) {
  const PhiloxWords w = philox_block(seed, kBatchSeedStream, static_cast<std::uint64_t>(batch));
  return (static_cast<std::uint64_t>(w.w[1]) << 32) | w.w[0];
}

// Which trajectories make up each batch, and their labels.
struct SynthesisPlan {
  std::int64_t trajectories = 0;  // in the whole job
  std::int64_t batch = 0;         // trajectories per batch (the last batch may hold fewer)
  int classes = 0;                // labels cycle through 0 .. classes-1
  int images_per_trajectory = 1;  // DMI, SMI: 1; PRI: v

  // requires: images >= 1 output images; rounds up to whole trajectories.
  static SynthesisPlan for_images(std::int64_t images, int per_trajectory, std::int64_t batch, int classes) {
    check(images >= 1, "synthesis plan: --images must be >= 1, got ", images);
    check(per_trajectory >= 1, "synthesis plan: images per trajectory must be >= 1, got ", per_trajectory);
    check(batch >= 1, "synthesis plan: --batch must be >= 1, got ", batch);
    check(classes >= 1, "synthesis plan: the model has ", classes, " classes");
    return {(images + per_trajectory - 1) / per_trajectory, batch, classes, per_trajectory};
  }
  // requires: per_class >= 1 images of every class; each class gets ceil(per_class / per_trajectory) trajectories.
  static SynthesisPlan for_per_class(std::int64_t per_class, int per_trajectory, std::int64_t batch, int classes) {
    check(per_class >= 1, "synthesis plan: --per-class must be >= 1, got ", per_class);
    auto p = for_images(per_class, per_trajectory, batch, classes);
    p.trajectories *= classes;
    return p;
  }

  [[nodiscard]] std::int64_t batches() const { return (trajectories + batch - 1) / batch; }
  [[nodiscard]] std::int64_t images() const { return trajectories * images_per_trajectory; }
  // The labels of batch j's trajectories. requires: 0 <= j < batches().
  [[nodiscard]] std::vector<int> labels(std::int64_t j) const {
    check(j >= 0 && j < batches(), "synthesis plan: batch ", j, " outside [0, ", batches(), ")");
    std::vector<int> out;
    for (std::int64_t g = j * batch; g < std::min(trajectories, (j + 1) * batch); ++g)
      out.push_back(static_cast<int>(g % classes));
    return out;
  }
  // The batches of slice i of n (--shard i/n): j with j % n == i, ascending.
  [[nodiscard]] std::vector<std::int64_t> slice(int i, int n) const {
    check(n >= 1 && i >= 0 && i < n, "synthesis plan: --shard ", i, "/", n, " needs 0 <= i < n");
    std::vector<std::int64_t> out;
    for (std::int64_t j = i; j < batches(); j += n) out.push_back(j);
    return out;
  }
  [[nodiscard]] nlohmann::json to_json() const {
    return {{"trajectories", trajectories}, {"batch", batch},
            {"classes", classes},           {"images_per_trajectory", images_per_trajectory},
            {"batches", batches()},         {"images", images()}};
  }
};

// One finished batch: its shard's record and its cost.
struct ShardEntry {
  ShardRecord record;
  double gemm_flops = 0.0;  // the inversion's GEMM FLOPs (inversion_iteration_flops summed): deterministic
  // This run's wall times (for the run report and the checkpoint cost; never in the manifest): inverting the batch,
  // and writing its shard (serialise, fsync, rename, hash).
  double invert_seconds = 0.0, write_seconds = 0.0;
};

// The manifest of a job or of one slice of it.
struct ShardManifest {
  nlohmann::json options;  // every option that determines the bytes, by its CLI name (model: its SHA-256)
  SynthesisPlan plan;
  double dense_flops_per_image = 0.0;  // DMI's GEMM FLOPs per image for these iterations (the cost baseline)
  int slice_index = 0, slice_count = 1;
  std::map<std::int64_t, ShardEntry> shards;  // by batch index

  // DIR/manifest.json for the whole job, DIR/manifest-slice-<i>-of-<n>.json for a slice.
  [[nodiscard]] std::string file_name() const {
    if (slice_count == 1) return "manifest.json";
    return "manifest-slice-" + std::to_string(slice_index) + "-of-" + std::to_string(slice_count) + ".json";
  }
  [[nodiscard]] std::vector<std::int64_t> todo() const {
    std::vector<std::int64_t> out;
    for (auto j : plan.slice(slice_index, slice_count))
      if (!shards.count(j)) out.push_back(j);
    return out;
  }
  [[nodiscard]] bool complete() const { return todo().empty(); }

  [[nodiscard]] nlohmann::json to_json() const {
    nlohmann::json list = nlohmann::json::array();
    std::int64_t images = 0;
    double flops = 0.0;
    for (const auto& [j, e] : shards) {
      list.push_back({{"batch", j},
                      {"file", e.record.file},
                      {"sha256", e.record.sha256},
                      {"images", e.record.images},
                      {"gemm_flops", e.gemm_flops}});
      images += e.record.images;
      flops += e.gemm_flops;
    }
    const double per_image = images > 0 ? flops / static_cast<double>(images) : 0.0;
    return {{"format", kShardManifestFormat},
            {"version", kShardManifestVersion},
            {"options", options},
            {"plan", plan.to_json()},
            {"batches", plan.batches()},
            {"dense_gemm_flops_per_image", dense_flops_per_image},
            {"slice", {{"index", slice_index}, {"count", slice_count}}},
            {"complete", complete()},
            {"shards", list},
            {"totals", {{"shards", shards.size()}, {"images", images}}},
            {"cost",
             {{"gemm_flops_total", flops},
              {"gemm_flops_per_image", per_image},
              {"cost_per_image_vs_dmi", dense_flops_per_image > 0 ? per_image / dense_flops_per_image : 0.0}}}};
  }
  static ShardManifest from_json(const nlohmann::json& j, const std::string& path) {
    ShardManifest m;
    try {  // every json access inside: a wrongly typed value (e.g. "format": {}) is a mint::Error naming the file
      check(j.is_object() && j.value("format", "") == kShardManifestFormat, "manifest '", path,
            "': \"format\" must be \"", kShardManifestFormat, "\"");
      check(j.at("version").get<int>() == kShardManifestVersion, "manifest '", path, "': version ",
            j.at("version").dump(), ", this program reads version ", kShardManifestVersion);
      m.options = j.at("options");
      const auto& p = j.at("plan");
      m.plan = {p.at("trajectories").get<std::int64_t>(), p.at("batch").get<std::int64_t>(), p.at("classes").get<int>(),
                p.at("images_per_trajectory").get<int>()};
      m.dense_flops_per_image = j.at("dense_gemm_flops_per_image").get<double>();
      m.slice_index = j.at("slice").at("index").get<int>();
      m.slice_count = j.at("slice").at("count").get<int>();
      for (const auto& s : j.at("shards")) {
        ShardEntry e{{s.at("batch").get<std::int64_t>(), s.at("file").get<std::string>(),
                      s.at("sha256").get<std::string>(), s.at("images").get<std::int64_t>()},
                     s.at("gemm_flops").get<double>()};
        check(e.record.file == shard_file_name(e.record.batch), "manifest '", path, "': batch ", e.record.batch,
              " names file '", e.record.file, "', expected '", shard_file_name(e.record.batch), "'");
        m.shards.emplace(e.record.batch, std::move(e));
      }
    } catch (const nlohmann::json::exception& e) {
      throw Error(mint::detail::concat("manifest '", path, "': ", e.what()));
    }
    check(m.plan.trajectories >= 1 && m.plan.batch >= 1 && m.plan.classes >= 1 && m.plan.images_per_trajectory >= 1,
          "manifest '", path, "': invalid plan ", j.at("plan").dump());
    check(m.slice_count >= 1 && m.slice_index >= 0 && m.slice_index < m.slice_count, "manifest '", path,
          "': invalid slice ", m.slice_index, " of ", m.slice_count);
    return m;
  }
  static ShardManifest read(const std::string& path) {
    const auto bytes = io::detail::read_file_bytes(path, "manifest");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(bytes.begin(), bytes.end());
    } catch (const nlohmann::json::exception& e) {
      throw Error(mint::detail::concat("manifest '", path, "': not valid JSON: ", e.what()));
    }
    return from_json(j, path);
  }
  // Writes DIR/file_name() atomically. Keys sorted, no times: the same shards give the same bytes.
  void write(const std::string& dir) const {
    io::write_file_atomically((std::filesystem::path(dir) / file_name()).string(), to_json().dump(1) + "\n");
  }
};

// The first option (or plan field) in which a and b differ, as "name: a vs b"; empty when they agree.
inline std::string differing_option(const nlohmann::json& a, const nlohmann::json& b) {
  for (auto it = a.cbegin(); it != a.cend(); ++it)
    if (!b.contains(it.key()) || b.at(it.key()) != it.value())
      return it.key() + " (" + it.value().dump() + " vs " + (b.contains(it.key()) ? b.at(it.key()).dump() : "absent") +
             ")";
  for (auto it = b.cbegin(); it != b.cend(); ++it)
    if (!a.contains(it.key())) return it.key() + " (absent vs " + it.value().dump() + ")";
  return {};
}

// What resuming found.
struct ResumeReport {
  bool had_manifest = false;
  std::vector<std::string> redone;  // one line per recorded shard that failed its check and will be redone
};

// Prepares `fresh` (the options, plan and slice of this run, no shards) for a run in `dir`: when dir holds its
// manifest, the recorded shards whose files still hash to their digest are taken over and the others dropped
// (reported); a manifest for other options or another plan is refused naming the first differing option.
// require_manifest: --resume given explicitly, so a missing manifest is an error. The folder is created if needed.
inline ResumeReport prepare_resume(const std::string& dir, ShardManifest& fresh, bool require_manifest) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  check(fs::is_directory(dir, ec), "--out '", dir, "': cannot create the folder: ", ec.message());
  const std::string path = (fs::path(dir) / fresh.file_name()).string();
  ResumeReport rep;
  if (!fs::exists(path, ec)) {
    check(!require_manifest, "--resume: '", path, "' does not exist: nothing to resume (leave out --resume to start)");
    return rep;
  }
  rep.had_manifest = true;
  const ShardManifest old = ShardManifest::read(path);
  std::string diff = differing_option(old.options, fresh.options);
  if (diff.empty()) diff = differing_option(old.plan.to_json(), fresh.plan.to_json());
  check(diff.empty(), "cannot resume in '", dir, "': its manifest was made with other options, first difference --",
        diff, " (manifest vs this run); use the same options, or another --out");
  for (const auto& [j, e] : old.shards) {
    if (j < 0 || j >= fresh.plan.batches() || j % fresh.slice_count != fresh.slice_index) {
      rep.redone.push_back(mint::detail::concat("batch ", j, " is not in this slice: ignored"));
      continue;
    }
    const std::string file = (fs::path(dir) / e.record.file).string();
    if (!fs::is_regular_file(file, ec)) {
      rep.redone.push_back(mint::detail::concat("shard '", file, "' is missing: batch ", j, " will be redone"));
      continue;
    }
    const std::string got = io::sha256_file(file);
    if (got != e.record.sha256) {
      rep.redone.push_back(mint::detail::concat("shard '", file, "' has SHA-256 ", got, ", the manifest ",
                                                e.record.sha256, " (corrupted or truncated): batch ", j,
                                                " will be redone"));
      continue;
    }
    fresh.shards.emplace(j, e);
  }
  return rep;
}

// Writes batch j's images as DIR/shard_file_name(j), atomically, and returns its record (hash of the file written).
// requires: images non-empty. The metadata holds only (batch, its seed): the bytes depend on nothing else.
inline ShardRecord write_shard(const std::string& dir, std::int64_t j, std::uint64_t seed,
                               const std::vector<SparseImage>& images) {
  const std::string file = shard_file_name(j), path = (std::filesystem::path(dir) / file).string();
  const auto tensors = synthetic_dataset_tensors(images, path);
  const std::map<std::string, std::string> meta{
      {"mint.kind", "synthetic_dataset"}, {"mint.batch", std::to_string(j)}, {"mint.batch_seed", std::to_string(seed)}};
  io::write_atomically(path, [&](const std::string& tmp) { io::save_safetensors(tmp, tensors, meta); });
  return {j, file, io::sha256_file(path), static_cast<std::int64_t>(images.size())};
}

// Merges the manifests found in `inputs` (each a folder holding manifest.json and/or manifest-slice-*.json) into
// one complete out/manifest.json. Every manifest must have the same options and plan (the first difference is
// named); a batch recorded twice must have the same hash; every shard file is verified against its hash and
// copied into `out` (atomically) when it lives elsewhere. Returns the merged manifest. Throws naming the missing
// batches when the slices do not cover the job.
inline ShardManifest merge_manifests(const std::string& out, const std::vector<std::string>& inputs) {
  namespace fs = std::filesystem;
  check(!inputs.empty(), "merge: no folders given");
  std::error_code ec;
  fs::create_directories(out, ec);
  check(fs::is_directory(out, ec), "merge: cannot create the output folder '", out, "'");
  std::optional<ShardManifest> merged;
  std::string first_path;
  for (const auto& dir : inputs) {
    check(fs::is_directory(dir, ec), "merge: '", dir, "' is not a folder");
    std::vector<std::string> files;
    for (const auto& ent : fs::directory_iterator(dir)) {
      const std::string name = ent.path().filename().string();
      if (name == "manifest.json" || (name.rfind("manifest-slice-", 0) == 0 && ent.path().extension() == ".json"))
        files.push_back(ent.path().string());
    }
    std::sort(files.begin(), files.end());
    check(!files.empty(), "merge: '", dir, "' holds no manifest.json or manifest-slice-*.json");
    for (const auto& path : files) {
      ShardManifest m = ShardManifest::read(path);
      if (!merged) {
        merged = m;
        merged->shards.clear();
        merged->slice_index = 0, merged->slice_count = 1;
        first_path = path;
      }
      std::string diff = differing_option(merged->options, m.options);
      if (diff.empty()) diff = differing_option(merged->plan.to_json(), m.plan.to_json());
      check(diff.empty(), "merge: '", path, "' and '", first_path,
            "' were made with other options, first difference --", diff);
      for (const auto& [j, e] : m.shards) {
        check(j >= 0 && j < merged->plan.batches(), "merge: '", path, "' records batch ", j, " outside [0, ",
              merged->plan.batches(), ")");
        const std::string src = (fs::path(dir) / e.record.file).string();
        const std::string got = io::sha256_file(src);
        check(got == e.record.sha256, "merge: shard '", src, "' has SHA-256 ", got, ", its manifest '", path,
              "' records ", e.record.sha256, " (corrupted or truncated): rerun that slice with --resume");
        const auto it = merged->shards.find(j);
        if (it != merged->shards.end()) {
          check(it->second.record.sha256 == e.record.sha256, "merge: batch ", j, " has two different shards (",
                it->second.record.sha256, " and ", e.record.sha256, " in '", path, "')");
          continue;
        }
        const std::string dst = (fs::path(out) / e.record.file).string();
        if (!fs::exists(dst, ec) || !fs::equivalent(src, dst, ec))
          io::write_atomically(dst, [&](const std::string& tmp) {
            fs::copy_file(src, tmp, fs::copy_options::overwrite_existing, ec);
            check(!ec, "merge: cannot copy '", src, "' to '", tmp, "': ", ec.message());
          });
        merged->shards.emplace(j, e);
      }
    }
  }
  const auto missing = merged->todo();
  if (!missing.empty()) {
    std::string list;
    for (std::size_t k = 0; k < std::min<std::size_t>(missing.size(), 8); ++k)
      list += (k ? ", " : "") + std::to_string(missing[k]);
    throw Error(mint::detail::concat("merge: ", missing.size(), " of ", merged->plan.batches(),
                                     " batches are in no manifest (", list, missing.size() > 8 ? ", ..." : "",
                                     "): run the slices that hold them"));
  }
  merged->write(out);
  return *merged;
}

// What inverting one batch gives: its images (each with its teacher confidence) and its GEMM FLOPs.
struct BatchOutput {
  std::vector<SparseImage> images;
  double gemm_flops = 0.0;
};
// Inverts `labels` with InversionOptions::seed = seed; calls poll() between iterations (an MPI coordinator answers
// its workers there; a signal handler's flag may throw from it to abandon the batch).
using InvertBatch =
    std::function<BatchOutput(const std::vector<int>& labels, std::uint64_t seed, const std::function<void()>& poll)>;

// Runs batch j of manifest m's plan (labels from the plan, seed batch_seed(base_seed, j)) and writes its shard into
// dir. ensures: the returned entry's record hashes the file now at dir/shard_file_name(j).
inline ShardEntry run_batch(
    const std::string& dir, const ShardManifest& m, std::uint64_t base_seed, std::int64_t j, const InvertBatch& invert,
    const std::function<void()>& poll = [] {}) {
  using Clock = std::chrono::steady_clock;
  const std::uint64_t seed = batch_seed(base_seed, j);
  const auto t0 = Clock::now();
  BatchOutput out = invert(m.plan.labels(j), seed, poll);
  check(!out.images.empty(), "synthesis: batch ", j, " produced no images");
  const auto t1 = Clock::now();
  ShardEntry e{write_shard(dir, j, seed, out.images), out.gemm_flops};
  e.invert_seconds = std::chrono::duration<double>(t1 - t0).count();
  e.write_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
  return e;
}

}  // namespace mint::tasks
