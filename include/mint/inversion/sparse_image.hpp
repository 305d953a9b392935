// mint/inversion/sparse_image.hpp -- the results of an inversion, and the synthetic data set that distillation and
// quantization read back: either one safetensors file, or a sharded folder (mint-synthesize, mint/tasks/
// synthesis.hpp; docs/scale.md): DIR/manifest.json lists one shard file per batch with its SHA-256 and image count,
// each shard a synthetic-dataset file. Readers stream the folder shard by shard and verify every shard's hash
// before parsing it, so a corrupted or truncated shard is an error naming it, never silently used.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mint/core/normalization.hpp"
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

// Metadata entries recording the images' normalisation under the model file's keys (mint.normalize_mean,
// mint.normalize_std; one value per channel, comma-separated), for save_synthetic_dataset's metadata, so that a
// reader maps the pixels back to unit intensities with normalization_from_metadata.
inline std::map<std::string, std::string> normalization_metadata(const Normalization& n) {
  n.validate("normalization_metadata");
  auto join = [](const std::vector<float>& v) {
    std::ostringstream os;
    os.precision(9);
    for (std::size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << v[i];
    return os.str();
  };
  return {{"mint.normalize_mean", join(n.mean)}, {"mint.normalize_std", join(n.std)}};
}

// The normalisation those entries record; a missing key or a bad number is an error naming `where` and the key.
inline Normalization normalization_from_metadata(const std::map<std::string, std::string>& meta,
                                                 const std::string& where) {
  auto read = [&](const std::string& key) {
    const auto it = meta.find(key);
    check(it != meta.end(), where, ": no metadata key '", key, "'");
    return parse_float_list(it->second, where + ": metadata '" + key + "'");
  };
  Normalization n{read("mint.normalize_mean"), read("mint.normalize_std")};
  n.validate(where + ": metadata normalisation");
  return n;
}

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
    check(s.label >= 0 && s.iteration >= 0, "save_synthetic_dataset: image ", i, " of '", path, "' has label ", s.label,
          " and iteration ", s.iteration, "; both must be >= 0");
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
// requires: label, iteration >= 0 (what the reader accepts).
inline void save_synthetic_dataset(const std::string& path, const std::vector<SparseImage>& images,
                                   std::map<std::string, std::string> metadata = {}) {
  const auto tensors = synthetic_dataset_tensors(images, path);
  metadata["mint.kind"] = "synthetic_dataset";
  io::write_atomically(path, [&](const std::string& tmp) { io::save_safetensors(tmp, tensors, metadata); });
}

namespace detail {

// A label or iteration stored as float: it must be a whole number in [0, INT_MAX] (a NaN, 5e36 or -1 cast to
// int would be undefined behaviour or a silent wrong value). Throws naming the file, the field and the image.
inline int synthetic_dataset_int(float v, const std::string& path, const char* field, std::int64_t i) {
  check(std::isfinite(v) && v >= 0.0f && v <= 2147483520.0f && v == std::floor(v), "synthetic dataset '", path,
        "': ", field, " of image ", i, " is ", v, ", not a whole number in [0, 2^31)");
  return static_cast<int>(v);
}

}  // namespace detail

// The images of a parsed synthetic-dataset file. Every count and value is checked before anything is built:
// images [M, C, H, W] with M, C, H, W >= 1 and finite pixels, masks [M, N] of 0/1 values, labels [M] and
// iterations [M] of whole numbers >= 0, confidence [M] when present. Anything else throws mint::Error naming the
// file and what is wrong.
inline std::vector<SparseImage> synthetic_dataset_images(const io::SafetensorsFile& f, const std::string& path) {
  const auto &pixels = f.at("images"), &masks = f.at("masks"), &labels = f.at("labels"), &iters = f.at("iterations");
  check(pixels.rank() == 4 && masks.rank() == 2, "synthetic dataset '", path, "': images ", pixels.shape().str(),
        " and masks ", masks.shape().str(), " must be [M, C, H, W] and [M, N]");
  const std::int64_t m = pixels.dim(0), n = masks.dim(1);
  check(m >= 1 && pixels.dim(1) >= 1 && pixels.dim(2) >= 1 && pixels.dim(3) >= 1 && n >= 1, "synthetic dataset '",
        path, "': images ", pixels.shape().str(), " and masks ", masks.shape().str(),
        " must hold at least one image of at least one pixel and one patch");
  const std::int64_t per = pixels.numel() / m;
  check(masks.dim(0) == m && labels.rank() == 1 && labels.numel() == m && iters.rank() == 1 && iters.numel() == m,
        "synthetic dataset '", path, "': ", m, " images but ", masks.dim(0), " masks, ", labels.numel(), " labels, ",
        iters.numel(), " iterations (labels and iterations are [M])");
  check_finite(pixels, ("synthetic dataset '" + path + "': images").c_str());
  const Tensor<Cpu>* conf = f.contains("confidence") ? &f.at("confidence") : nullptr;
  check(!conf || (conf->rank() == 1 && conf->numel() == m), "synthetic dataset '", path, "': ", m,
        " images but confidence ", conf ? conf->shape().str() : std::string("[]"));
  if (conf) check_finite(*conf, ("synthetic dataset '" + path + "': confidence").c_str());
  for (std::int64_t i = 0; i < masks.numel(); ++i)
    check(masks[i] == 0.0f || masks[i] == 1.0f, "synthetic dataset '", path, "': mask value ", masks[i], " of image ",
          i / n, " (patch ", i % n, ") is not 0 or 1");
  std::vector<int> label_of(static_cast<std::size_t>(m)), iteration_of(static_cast<std::size_t>(m));
  for (std::int64_t i = 0; i < m; ++i) {
    label_of[static_cast<std::size_t>(i)] = detail::synthetic_dataset_int(labels[i], path, "label", i);
    iteration_of[static_cast<std::size_t>(i)] = detail::synthetic_dataset_int(iters[i], path, "iteration", i);
  }
  std::vector<SparseImage> out(static_cast<std::size_t>(m));
  for (std::int64_t i = 0; i < m; ++i) {
    auto& s = out[static_cast<std::size_t>(i)];
    s.pixels = Tensor<Cpu>::empty(Shape{pixels.dim(1), pixels.dim(2), pixels.dim(3)});
    std::copy(pixels.data() + i * per, pixels.data() + (i + 1) * per, s.pixels.data());
    s.mask = Tensor<Cpu>::empty(Shape{n});
    std::copy(masks.data() + i * n, masks.data() + (i + 1) * n, s.mask.data());
    s.label = label_of[static_cast<std::size_t>(i)];
    s.iteration = iteration_of[static_cast<std::size_t>(i)];
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
