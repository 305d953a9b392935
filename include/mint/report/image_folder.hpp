// mint/report/image_folder.hpp -- the inverted images as a folder a PyTorch pipeline reads unchanged with
// torchvision.datasets.ImageFolder: <dir>/<class>/<n>.png, one folder per class that has images (ImageFolder
// refuses an empty one), named by the class name where known, else by the class index, zero-padded; n is the
// image's row in the synthetic-dataset file (zero-padded, so file order is dataset order). Pixels are
// denormalised with the model's per-channel normalisation (x_unit = x * std + mean, clamped to [0, 1], 8 bits);
// the patch mask is the alpha channel (grey + alpha for one channel, RGBA for three): 255 on the patches the
// sparse image keeps, 0 on the absent ones, whose colour values are the trajectory's pixels as stored in the
// dataset file. <dir>/class_to_idx.json maps every class's folder name to the model's label: ImageFolder numbers
// the folders alphabetically, which differs from the model's order as soon as there are class names (remap with
// target_transform).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mint/core/error.hpp"
#include "mint/core/normalization.hpp"
#include "mint/inversion/sparse_image.hpp"
#include "mint/io/atomic_file.hpp"
#include "mint/io/image.hpp"
#include "mint/report/grid.hpp"

namespace mint::report {

inline constexpr const char* kImageFolderIndex = "class_to_idx.json";

// The folder of each class: its name with '/', '\\' and control characters replaced by '_' (so "T-shirt/top" is
// "T-shirt_top"), or its index zero-padded to the digits of classes - 1 when there are no names. requires:
// class_names empty or one per class; the folder names distinct and none empty, "." or "..". Throws naming them.
inline std::vector<std::string> class_folder_names(std::int64_t classes, std::span<const std::string> class_names) {
  check(classes >= 1, "class_folder_names: need at least one class, got ", classes);
  check(class_names.empty() || static_cast<std::int64_t>(class_names.size()) == classes, "class_folder_names: ",
        class_names.size(), " class names for a model of ", classes, " classes");
  const int digits = static_cast<int>(std::to_string(classes - 1).size());
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (std::int64_t c = 0; c < classes; ++c) {
    std::string name;
    if (class_names.empty()) {
      name = std::string(static_cast<std::size_t>(digits) - std::to_string(c).size(), '0') + std::to_string(c);
    } else {
      name = class_names[static_cast<std::size_t>(c)];
      for (char& ch : name)
        if (ch == '/' || ch == '\\' || static_cast<unsigned char>(ch) < 0x20 || ch == 0x7F) ch = '_';
    }
    check(!name.empty() && name != "." && name != "..", "class_folder_names: class ", c, " is named '", name,
          "', which cannot be a folder name");
    check(seen.insert(name).second, "class_folder_names: classes share the folder name '", name, "' (class ", c,
          ")");
    out.push_back(name);
  }
  return out;
}

struct ImageFolderExport {
  std::vector<std::string> folders;  // per class
  std::vector<std::string> files;    // per image, relative to the export folder: "<class>/<n>.png"
};

namespace detail {

inline bool is_previous_export(const std::filesystem::path& dir) {
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec) && std::filesystem::is_empty(dir, ec)) return true;
  const auto index = dir / kImageFolderIndex;
  if (!std::filesystem::is_regular_file(index, ec)) return false;
  const auto j = nlohmann::json::parse(std::ifstream(index), nullptr, false);
  return j.is_object() && j.contains("mint.kind") && j["mint.kind"] == "image_folder";
}

}  // namespace detail

// Writes the export to `dir` as a whole: it is built in a sibling temporary folder (each file through
// io::write_file_atomically) and renamed into place, so `dir` holds the previous export or the new one, never a
// mix. A `dir` that exists must be empty or a previous export (it has class_to_idx.json from this function);
// anything else is refused, never deleted. requires: images as labelled_grid requires, labels in [0, classes),
// class_names empty or one per class. Throws mint::Error naming the problem before writing anything.
inline ImageFolderExport export_image_folder(const std::string& dir, std::span<const SparseImage> images,
                                             const Normalization& norm, std::int64_t patch, std::int64_t classes,
                                             std::span<const std::string> class_names = {}) {
  namespace fs = std::filesystem;
  const auto g = detail::image_geometry(images, norm, patch, "export_image_folder");
  ImageFolderExport ex{class_folder_names(classes, class_names), {}};
  for (std::size_t i = 0; i < images.size(); ++i)
    check(images[i].label >= 0 && images[i].label < classes, "export_image_folder: image ", i, " has label ",
          images[i].label, ", outside the model's ", classes, " classes");
  const fs::path target = fs::path(dir).lexically_normal();
  check(!target.filename().empty(), "export_image_folder: '", dir, "' names no folder");
  std::error_code ec;
  check(!fs::exists(target, ec) || detail::is_previous_export(target), "export_image_folder: '", dir,
        "' exists and is not an image-folder export of mint (no ", kImageFolderIndex, "); refusing to replace it");
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  fs::create_directories(parent, ec);
  check(fs::is_directory(parent, ec), "export_image_folder: cannot create the folder '", parent.string(), "'");

  const std::string suffix = "." + std::to_string(::getpid());
  const fs::path tmp = parent / ("." + target.filename().string() + ".tmp" + suffix);
  const fs::path old = parent / ("." + target.filename().string() + ".old" + suffix);
  fs::remove_all(tmp, ec);
  try {
    // Folders only for the classes that have images: ImageFolder refuses an empty class folder.
    for (const auto& s : images) {
      const fs::path f = tmp / ex.folders[static_cast<std::size_t>(s.label)];
      fs::create_directories(f, ec);
      check(!ec, "export_image_folder: cannot create '", f.string(), "': ", ec.message());
    }
    const int digits = static_cast<int>(std::to_string(images.size() - 1).size());
    const std::int64_t channels = g.c + 1, hw = g.h * g.w;
    std::vector<std::uint8_t> px(static_cast<std::size_t>(hw * channels));
    for (std::size_t i = 0; i < images.size(); ++i) {
      const SparseImage& s = images[i];
      for (std::int64_t y = 0; y < g.h; ++y)
        for (std::int64_t x = 0; x < g.w; ++x) {
          const std::int64_t at = (y * g.w + x) * channels;
          for (std::int64_t ch = 0; ch < g.c; ++ch)
            px[static_cast<std::size_t>(at + ch)] = detail::unit_byte(g, s.pixels[ch * hw + y * g.w + x], ch);
          px[static_cast<std::size_t>(at + g.c)] = detail::patch_kept(g, s, y, x) ? 255 : 0;
        }
      const std::string n = std::to_string(i);
      const std::string file = ex.folders[static_cast<std::size_t>(s.label)] + "/" +
                               std::string(static_cast<std::size_t>(digits) - n.size(), '0') + n + ".png";
      io::write_file_atomically((tmp / file).string(), io::encode_png(px, g.w, g.h, static_cast<int>(channels)));
      ex.files.push_back(file);
    }
    nlohmann::json index = {{"mint.kind", "image_folder"},
                            {"images", images.size()},
                            {"alpha", "the patch mask: 255 = patch kept by the sparse image, 0 = absent"},
                            {"class_to_idx", nlohmann::json::object()}};
    for (std::size_t c = 0; c < ex.folders.size(); ++c) index["class_to_idx"][ex.folders[c]] = c;
    io::write_file_atomically((tmp / kImageFolderIndex).string(), index.dump(1) + "\n");
    if (fs::exists(target, ec)) {
      fs::rename(target, old, ec);
      check(!ec, "export_image_folder: cannot move the previous export '", dir, "' aside: ", ec.message());
    }
    fs::rename(tmp, target, ec);
    check(!ec, "export_image_folder: cannot rename '", tmp.string(), "' to '", dir, "': ", ec.message());
  } catch (...) {
    fs::remove_all(tmp, ec);
    if (!fs::exists(target, ec) && fs::exists(old, ec)) fs::rename(old, target, ec);  // put the previous one back
    throw;
  }
  io::detail::fsync_path(parent.string(), true, dir);
  fs::remove_all(old, ec);
  return ex;
}

}  // namespace mint::report
