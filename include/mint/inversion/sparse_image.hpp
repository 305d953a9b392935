// mint/inversion/sparse_image.hpp -- the results of an inversion, and the synthetic-dataset file that
// distillation and quantization read back.
#pragma once

#include <sstream>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "mint/core/normalization.hpp"
#include "mint/io/image.hpp"
#include "mint/io/safetensors.hpp"

namespace mint {

// One inverted image. `mask` is exactly the set of patches kept (SMI, DMI) or detached (PRI) during the run,
// recorded when it happened, never recomputed from the pixels afterwards.
struct SparseImage {
  Tensor<Cpu> pixels;  // [C, H, W] in the model's normalised input space
  Tensor<Cpu> mask;    // [N] patch mask, row-major patch order: 1 = part of this image, 0 = absent
  int label = 0;       // the target class
  int iteration = 0;   // the iteration after which it was detached (or T for the final image)
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
    std::vector<float> out;
    std::istringstream is(it->second);
    for (std::string tok; std::getline(is, tok, ',');) {
      std::size_t used = 0;
      float v = 0.0f;
      try {
        v = std::stof(tok, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      check(used == tok.size() && !tok.empty(), where, ": metadata '", key, "' = '", it->second,
            "' is not a comma-separated list of numbers");
      out.push_back(v);
    }
    return out;
  };
  Normalization n{read("mint.normalize_mean"), read("mint.normalize_std")};
  n.validate(where + ": metadata normalisation");
  return n;
}

// Writes images [M, C, H, W], masks [M, N], labels [M], iterations [M] (plus metadata) as safetensors, atomically
// (save_safetensors goes through write_atomically). requires: label, iteration >= 0 (what the reader accepts).
inline void save_synthetic_dataset(const std::string& path, const std::vector<SparseImage>& images,
                                   std::map<std::string, std::string> metadata = {}) {
  check(!images.empty(), "save_synthetic_dataset: no images to write to '", path, "'");
  const Shape px = images.front().pixels.shape();
  const std::int64_t m = static_cast<std::int64_t>(images.size()), n = images.front().mask.numel();
  auto pixels = Tensor<Cpu>::empty(Shape{m, px[0], px[1], px[2]});
  auto masks = Tensor<Cpu>::empty(Shape{m, n});
  auto labels = Tensor<Cpu>::empty(Shape{m}), iters = Tensor<Cpu>::empty(Shape{m});
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
  }
  metadata["mint.kind"] = "synthetic_dataset";
  io::save_safetensors(path, {{"images", pixels}, {"masks", masks}, {"labels", labels}, {"iterations", iters}}, metadata);
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

// Reads a file written by save_synthetic_dataset. Every count and value is checked before anything is built:
// images [M, C, H, W] with M, C, H, W >= 1 and finite pixels, masks [M, N] of 0/1 values, labels [M] and
// iterations [M] of whole numbers >= 0. Anything else throws mint::Error naming the file and what is wrong.
inline std::vector<SparseImage> load_synthetic_dataset(const std::string& path) {
  const auto f = io::load_safetensors(path);
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
  }
  return out;
}

}  // namespace mint
