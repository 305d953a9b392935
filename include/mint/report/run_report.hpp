// mint/report/run_report.hpp -- everything an inversion run leaves for people and pipelines, written by one call:
//   <out>/images.png            a readable grid (report/grid.hpp): class name and teacher confidence under each image
//   <out>/images/<class>/<n>.png the image-folder export (report/image_folder.hpp), torchvision ImageFolder reads it
//   <out>/dataset.safetensors   the synthetic dataset (save_synthetic_dataset) with the normalisation and class
//                               names in its metadata (scripts/load_mint_dataset.py reads it)
//   <out>/report.html           a self-contained page (report/html.hpp): the grid, loss and active-patch curves
//                               from InversionResult::history, the command line, the model, settings and cost
// Every file goes through the atomic writer (io/atomic_file.hpp). The teacher's confidence is softmax(logits) of
// the target class on the patches each image keeps (tasks::outputs_of, the forward distillation uses).
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mint/core/error.hpp"
#include "mint/core/normalization.hpp"
#include "mint/inversion/inverter.hpp"
#include "mint/inversion/sparse_image.hpp"
#include "mint/io/atomic_file.hpp"
#include "mint/models/vit.hpp"
#include "mint/nn/softmax.hpp"
#include "mint/report/grid.hpp"
#include "mint/report/html.hpp"
#include "mint/report/image_folder.hpp"
#include "mint/tasks/distill.hpp"

namespace mint::report {

// The class names in a recipe or config JSON: mint's `class_names` (models/fmnist_vit.json) or timm's hub
// config.json `label_names`. A missing file or key gives none (the caller falls back to indices); a key that is
// not an array of `classes` strings is an error naming the file and the key.
inline std::vector<std::string> read_class_names(const std::string& json_path, std::int64_t classes) {
  std::error_code ec;
  if (json_path.empty() || !std::filesystem::is_regular_file(json_path, ec)) return {};
  const auto j = nlohmann::json::parse(std::ifstream(json_path), nullptr, false);
  check(!j.is_discarded(), "read_class_names: '", json_path, "' is not valid JSON");
  for (const char* key : {"class_names", "label_names"}) {
    if (!j.is_object() || !j.contains(key)) continue;
    const auto& v = j.at(key);
    check(v.is_array() && static_cast<std::int64_t>(v.size()) == classes, "read_class_names: '", json_path, "': '",
          key, "' must be an array of ", classes, " names (the model's classes), got ", v.dump().substr(0, 80));
    std::vector<std::string> names;
    for (const auto& n : v) {
      check(n.is_string(), "read_class_names: '", json_path, "': '", key, "' holds a non-string ", n.dump());
      names.push_back(n.get<std::string>());
    }
    return names;
  }
  return {};
}

// The synthetic-dataset file (save_synthetic_dataset), written atomically, with what a reader needs to use it in
// its metadata: "mint.normalize_mean" / "mint.normalize_std" (normalization_metadata: comma-separated, one entry
// per channel; the keys open_model reads from a safetensors model too) and "mint.class_names"
// (a JSON array, empty when unknown), besides `extra`. scripts/load_mint_dataset.py reads it.
inline void save_dataset(const std::string& path, const std::vector<SparseImage>& images, const Normalization& norm,
                         const std::vector<std::string>& class_names, std::map<std::string, std::string> extra = {}) {
  norm.validate("save_dataset: normalization");
  for (auto& [k, v] : normalization_metadata(norm)) extra[k] = v;
  extra["mint.class_names"] = nlohmann::json(class_names).dump();
  io::write_atomically(path, [&](const std::string& tmp) { save_synthetic_dataset(tmp, images, extra); });
}

struct RunDescription {
  std::string title = "mint inversion";
  std::string command_line;            // report::command_line(argc, argv)
  std::string model_path;
  Normalization normalization;         // the model's input normalisation (denormalises grid, folder, metadata)
  std::vector<std::string> class_names;  // empty: classes are shown by index
  nlohmann::json settings = nlohmann::json::object();  // method and its options (scalars become table rows)
  nlohmann::json cost = nlohmann::json::object();      // time, FLOPs, memory
  std::map<std::string, std::string> dataset_metadata;  // extra safetensors metadata (method, model, ...)
  GridOptions grid;
  std::size_t grid_images = 200;  // at most this many images in the grid, evenly spaced over the run
};

struct RunOutputs {
  std::string grid, image_folder, dataset, report;  // the paths written
  std::vector<float> confidence;                    // per image: the teacher's probability of its target class
  std::vector<int> predicted;                       // per image: the teacher's top class
};

// Writes the four outputs above into `out_dir` (created if missing). requires: res.images non-empty and valid
// for the model (pixels [C, H, W] of its input size, masks of its patch count); class names empty or one per
// class; the font readable. Throws mint::Error naming the problem; a failure leaves earlier files complete.
inline RunOutputs write_inversion_outputs(const std::string& out_dir, ViT<>& teacher, const InversionResult& res,
                                          const RunDescription& d) {
  const ViTConfig& cfg = teacher.config();
  check(!res.images.empty(), "write_inversion_outputs: the run produced no images");
  check(d.class_names.empty() || static_cast<int>(d.class_names.size()) == cfg.classes, "write_inversion_outputs: ",
        d.class_names.size(), " class names for a model of ", cfg.classes, " classes");
  const Normalization norm = d.normalization.for_channels(cfg.in_chans, "write_inversion_outputs: normalization");
  norm.validate("write_inversion_outputs: normalization");
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  check(std::filesystem::is_directory(out_dir, ec), "write_inversion_outputs: cannot create '", out_dir, "'");
  RunOutputs out{out_dir + "/images.png", out_dir + "/images", out_dir + "/dataset.safetensors",
                 out_dir + "/report.html", {}, {}};
  auto pred = tasks::teacher_predictions(teacher, res.images);
  out.confidence.assign(pred.confidence.begin(), pred.confidence.end());
  out.predicted = std::move(pred.top);

  auto name_of = [&](int c) { return d.class_names.empty() ? "class " + std::to_string(c) : d.class_names[c]; };
  // The grid shows at most d.grid_images images, evenly spaced (a 50,000-image run stays a readable picture).
  const std::size_t m = res.images.size(), shown = std::clamp<std::size_t>(d.grid_images, 1, m);
  std::vector<SparseImage> grid_images;
  std::vector<Caption> captions;
  double mean_conf = 0.0;
  int agree = 0;
  for (std::size_t i = 0; i < m; ++i) {
    mean_conf += out.confidence[i] / static_cast<double>(m);
    agree += out.predicted[i] == res.images[i].label ? 1 : 0;
  }
  for (std::size_t k = 0; k < shown; ++k) {
    const std::size_t i = k * m / shown;
    const int label = res.images[i].label, top = out.predicted[i];
    std::string line2 = "p = " + detail::fmt(out.confidence[i]);
    if (top != label) line2 += ", top: " + name_of(top);
    captions.push_back({name_of(label), line2});
    grid_images.push_back(res.images[i]);
  }
  const Canvas grid = labelled_grid(grid_images, captions, norm, cfg.patch, d.grid);
  const std::string grid_png = grid.png();
  io::write_file_atomically(out.grid, grid_png);
  export_image_folder(out.image_folder, res.images, norm, cfg.patch, cfg.classes, d.class_names);

  save_dataset(out.dataset, res.images, norm, d.class_names, d.dataset_metadata);

  auto floats = [](const std::vector<float>& v) {
    std::string s;
    for (const float x : v) s += (s.empty() ? "" : ", ") + detail::fmt(x, "%.6g");
    return s;
  };
  HtmlReport page{d.title, d.command_line, {}, {}, {}};
  page.figures.push_back({"Inverted images (" + (shown < m ? std::to_string(shown) + " of " : std::string()) +
                              std::to_string(m) +
                              "): target class and the teacher's confidence; checkerboard = patch not in the image",
                          grid_png, grid.width(), grid.height(), "grid of the inverted images"});
  Curve loss{"Loss (objective + prior) per iteration", "iteration", "loss", {}, {}};
  Curve active{"Active patches per image per iteration", "iteration", "active patches", {}, {}};
  for (const auto& s : res.history) {
    loss.x.push_back(s.iteration), loss.y.push_back(s.loss);
    active.x.push_back(s.iteration), active.y.push_back(static_cast<double>(s.active));
  }
  page.curves = {loss, active};
  nlohmann::json model = {{"path", d.model_path}, {"img_size", cfg.img_size}, {"patch", cfg.patch},
                          {"in_chans", cfg.in_chans}, {"dim", cfg.dim}, {"depth", cfg.depth}, {"heads", cfg.heads},
                          {"classes", cfg.classes}, {"distilled", cfg.distilled},
                          {"normalization mean", floats(norm.mean)}, {"normalization std", floats(norm.std)}};
  if (!d.class_names.empty()) model["class names"] = d.class_names;
  nlohmann::json outcome = {{"images", res.images.size()}, {"teacher confidence (mean)", mean_conf},
                            {"teacher top-1 = target", std::to_string(agree) + " of " +
                                                           std::to_string(res.images.size())}};
  page.tables = {{"Model", json_rows(model)}, {"Settings", json_rows(d.settings)}, {"Cost", json_rows(d.cost)},
                 {"Outcome", json_rows(outcome)}};
  io::write_file_atomically(out.report, render_html(page));
  return out;
}

}  // namespace mint::report
