// mint/inversion/sparse_image.hpp -- the results of an inversion, and the synthetic data set that distillation and
// quantization read back: either one safetensors file, or a sharded folder (mint-synthesize, mint/tasks/
// synthesis.hpp; docs/scale.md): DIR/manifest.json lists one shard file per batch with its SHA-256 and image count,
// each shard a synthetic-dataset file. Readers stream the folder shard by shard and verify every shard's hash
// before parsing it, so a corrupted or truncated shard is an error naming it, never silently used.
#pragma once

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mint/io/atomic_file.hpp"
#include "mint/io/image.hpp"
#include "mint/io/safetensors.hpp"
#include "mint/io/sha256.hpp"

namespace mint {

// One inverted image. `mask` is exactly the set of patches kept (SMI, DMI) or detached (PRI) during the run,
// recorded when it happened, never recomputed from the pixels afterwards.
struct SparseImage {
  Tensor<Cpu> pixels;  // [C, H, W] in the model's normalised input space
  Tensor<Cpu> mask;    // [N] patch mask, row-major patch order: 1 = part of this image, 0 = absent
  int label = 0;       // the target class
  int iteration = 0;   // the iteration after which it was detached (or T for the final image)
  float confidence = -1.0f;  // the teacher's softmax probability of `label` on the kept patches; < 0: not measured
};

// The tensors of a synthetic-dataset file: images [M, C, H, W], masks [M, N], labels [M], iterations [M], and
// confidence [M] when every image has one (>= 0).
inline std::map<std::string, Tensor<Cpu>> synthetic_dataset_tensors(const std::vector<SparseImage>& images,
                                                                   const std::string& path) {
  check(!images.empty(), "save_synthetic_dataset: no images to write to '", path, "'");
  const Shape px = images.front().pixels.shape();
  const std::int64_t m = static_cast<std::int64_t>(images.size()), n = images.front().mask.numel();
  auto pixels = Tensor<Cpu>::empty(Shape{m, px[0], px[1], px[2]});
  auto masks = Tensor<Cpu>::empty(Shape{m, n});
  auto labels = Tensor<Cpu>::empty(Shape{m}), iters = Tensor<Cpu>::empty(Shape{m}), conf = Tensor<Cpu>::empty(Shape{m});
  bool measured = true;
  for (std::int64_t i = 0; i < m; ++i) {
    const auto& s = images[static_cast<std::size_t>(i)];
    check_shape(s.pixels, px, "save_synthetic_dataset: image pixels");
    check_shape(s.mask, Shape{n}, "save_synthetic_dataset: image mask");
    std::copy(s.pixels.data(), s.pixels.data() + px.numel(), pixels.data() + i * px.numel());
    std::copy(s.mask.data(), s.mask.data() + n, masks.data() + i * n);
    labels[i] = static_cast<float>(s.label);
    iters[i] = static_cast<float>(s.iteration);
    conf[i] = s.confidence;
    measured = measured && s.confidence >= 0.0f;
  }
  std::map<std::string, Tensor<Cpu>> out{
      {"images", pixels}, {"masks", masks}, {"labels", labels}, {"iterations", iters}};
  if (measured) out.emplace("confidence", conf);
  return out;
}

// Writes images [M, C, H, W], masks [M, N], labels [M], iterations [M] (confidence [M] when measured, plus
// metadata) as safetensors, atomically.
inline void save_synthetic_dataset(const std::string& path, const std::vector<SparseImage>& images,
                                   std::map<std::string, std::string> metadata = {}) {
  const auto tensors = synthetic_dataset_tensors(images, path);
  metadata["mint.kind"] = "synthetic_dataset";
  io::write_atomically(path, [&](const std::string& tmp) { io::save_safetensors(tmp, tensors, metadata); });
}

// The images of a parsed synthetic-dataset file; a missing key or inconsistent count is an error naming it.
inline std::vector<SparseImage> synthetic_dataset_images(const io::SafetensorsFile& f, const std::string& path) {
  const auto &pixels = f.at("images"), &masks = f.at("masks"), &labels = f.at("labels"), &iters = f.at("iterations");
  check(pixels.rank() == 4 && masks.rank() == 2, "synthetic dataset '", path, "': images ", pixels.shape().str(),
        " and masks ", masks.shape().str(), " must be [M, C, H, W] and [M, N]");
  const std::int64_t m = pixels.dim(0), n = masks.dim(1), per = pixels.numel() / std::max<std::int64_t>(m, 1);
  check(masks.dim(0) == m && labels.numel() == m && iters.numel() == m, "synthetic dataset '", path, "': ", m,
        " images but ", masks.dim(0), " masks, ", labels.numel(), " labels, ", iters.numel(), " iterations");
  const Tensor<Cpu>* conf = f.contains("confidence") ? &f.at("confidence") : nullptr;
  check(!conf || conf->numel() == m, "synthetic dataset '", path, "': ", m, " images but ",
        conf ? conf->numel() : 0, " confidences");
  std::vector<SparseImage> out(static_cast<std::size_t>(m));
  for (std::int64_t i = 0; i < m; ++i) {
    auto& s = out[static_cast<std::size_t>(i)];
    s.pixels = Tensor<Cpu>::empty(Shape{pixels.dim(1), pixels.dim(2), pixels.dim(3)});
    std::copy(pixels.data() + i * per, pixels.data() + (i + 1) * per, s.pixels.data());
    s.mask = Tensor<Cpu>::empty(Shape{n});
    std::copy(masks.data() + i * n, masks.data() + (i + 1) * n, s.mask.data());
    s.label = static_cast<int>(labels[i]);
    s.iteration = static_cast<int>(iters[i]);
    if (conf) s.confidence = (*conf)[i];
  }
  return out;
}

// One shard of a sharded folder, as its manifest records it.
struct ShardRecord {
  std::int64_t batch = 0;  // the batch index j it holds (its file is shard_file_name(j))
  std::string file;        // a plain file name inside the folder
  std::string sha256;      // of the whole file, 64 lowercase hex digits
  std::int64_t images = 0;
};

inline constexpr const char* kShardManifestFormat = "mint.synthetic_shards";
inline constexpr int kShardManifestVersion = 1;

// "shard-000012.safetensors" for batch 12: the name sorts in batch order.
inline std::string shard_file_name(std::int64_t batch) {
  std::string digits = std::to_string(batch);
  if (digits.size() < 6) digits.insert(0, 6 - digits.size(), '0');
  return "shard-" + digits + ".safetensors";
}

// The bytes of shard `r` in folder `dir` when its SHA-256 matches the record; an error naming the file otherwise.
inline std::vector<std::uint8_t> read_verified_shard(const std::string& dir, const ShardRecord& r) {
  const std::string path = (std::filesystem::path(dir) / r.file).string();
  auto bytes = io::detail::read_file_bytes(path, "synthetic shard");
  const std::string got =
      io::sha256_hex(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  check(got == r.sha256, "synthetic shard '", path, "': SHA-256 ", got, " differs from the manifest's ", r.sha256,
        " (", bytes.size(), " bytes): the shard is corrupted or truncated; rerun mint-synthesize with --resume to "
        "redo it");
  return bytes;
}

// Streams a complete sharded folder, one shard in memory at a time, in batch order.
//   SyntheticShardReader reader(dir);
//   for (std::size_t k = 0; k < reader.shards().size(); ++k) use(reader.read(k));
// requires: DIR/manifest.json of format kShardManifestFormat, complete; every file name plain (no '/').
class SyntheticShardReader {
 public:
  explicit SyntheticShardReader(std::string dir) : dir_(std::move(dir)) {
    const std::string path = (std::filesystem::path(dir_) / "manifest.json").string();
    const auto bytes = io::detail::read_file_bytes(path, "synthetic dataset");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(bytes.begin(), bytes.end());
    } catch (const nlohmann::json::exception& e) {
      throw Error(detail::concat("synthetic dataset '", path, "': not valid JSON: ", e.what()));
    }
    try {
      read_manifest(j, path);
    } catch (const nlohmann::json::exception& e) {
      throw Error(detail::concat("synthetic dataset '", path, "': ", e.what()));
    }
    check(!shards_.empty(), "synthetic dataset '", path, "': the manifest lists no shards");
  }

  [[nodiscard]] const std::vector<ShardRecord>& shards() const { return shards_; }
  [[nodiscard]] std::int64_t images() const { return images_; }  // the total over all shards
  [[nodiscard]] const std::string& dir() const { return dir_; }

  // The images of shard k, after checking its SHA-256 and its image count against the manifest.
  [[nodiscard]] std::vector<SparseImage> read(std::size_t k) const {
    check(k < shards_.size(), "SyntheticShardReader: shard ", k, " of ", shards_.size());
    const auto& r = shards_[k];
    const std::string path = (std::filesystem::path(dir_) / r.file).string();
    const auto bytes = read_verified_shard(dir_, r);
    auto images = synthetic_dataset_images(io::parse_safetensors(bytes.data(), bytes.size(), path), path);
    check(static_cast<std::int64_t>(images.size()) == r.images, "synthetic shard '", path, "' holds ", images.size(),
          " images, the manifest says ", r.images);
    return images;
  }

 private:
  // Checks the manifest's format, version and completeness and takes its shard list (json errors propagate).
  void read_manifest(const nlohmann::json& j, const std::string& path) {
    check(j.is_object() && j.value("format", "") == kShardManifestFormat, "synthetic dataset '", path,
          "': \"format\" must be \"", kShardManifestFormat, "\"");
    check(j.value("version", 0) == kShardManifestVersion, "synthetic dataset '", path, "': version ",
          j.value("version", 0), ", this reader reads version ", kShardManifestVersion);
    check(j.value("complete", false), "synthetic dataset '", path, "': the manifest is not complete (",
          j.contains("shards") ? j["shards"].size() : 0, " of ", j.value("batches", 0),
          " batches done): finish it with mint-synthesize --resume, or merge its slices with mint-synthesize merge");
    check(j.contains("shards") && j["shards"].is_array(), "synthetic dataset '", path, "': no \"shards\" array");
    for (const auto& s : j["shards"]) {
      check(s.is_object() && s.contains("batch") && s.contains("file") && s.contains("sha256") && s.contains("images"),
            "synthetic dataset '", path, "': a shard entry lacks batch, file, sha256 or images: ", s.dump());
      ShardRecord r{s["batch"].get<std::int64_t>(), s["file"].get<std::string>(), s["sha256"].get<std::string>(),
                    s["images"].get<std::int64_t>()};
      check(r.file == shard_file_name(r.batch), "synthetic dataset '", path, "': shard of batch ", r.batch,
            " is named '", r.file, "', expected '", shard_file_name(r.batch), "'");
      check(r.images > 0, "synthetic dataset '", path, "': shard '", r.file, "' records ", r.images, " images");
      images_ += r.images;
      shards_.push_back(std::move(r));
    }
  }

  std::string dir_;
  std::vector<ShardRecord> shards_;
  std::int64_t images_ = 0;
};

// Reads a file written by save_synthetic_dataset, or a complete sharded folder (every shard verified by its hash,
// read one at a time, images in batch order); a missing key or inconsistent count is an error naming it.
inline std::vector<SparseImage> load_synthetic_dataset(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec))
    return synthetic_dataset_images(io::load_safetensors(path), path);
  const SyntheticShardReader reader(path);
  std::vector<SparseImage> out;
  for (std::size_t k = 0; k < reader.shards().size(); ++k) {
    auto part = reader.read(k);
    for (auto& s : part) out.push_back(std::move(s));
  }
  return out;
}

}  // namespace mint
