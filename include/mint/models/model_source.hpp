// mint/models/model_source.hpp -- a ViT as people have it: a .safetensors file, a torch.save .pth/.bin file, or a
// timm hub folder (model.safetensors or pytorch_model.bin + config.json), plus everything needed to invert it that
// the weights themselves do not say: the head count, the per-channel input normalisation, the input size and the
// class names. Each comes from the first of these that has it, and the result records which one:
//   1. explicit overrides (ModelOverrides: what the CLIs fill from --heads, --arch, --mean, --std, --config);
//   2. the config beside the weights: a timm hub config.json (timm/models/_hub.py save_config_for_hf:
//      `architecture`, `num_classes`, `model_args`, `label_names`, `pretrained_cfg` {mean, std, input_size}) or a
//      mint recipe (models/fmnist_vit.json: `model` {heads, img_size, in_chans, classes}, `normalization`
//      {mean, std}, scalar or per channel, `class_names`);
//   3. safetensors `__metadata__` (mint.num_heads, mint.normalize_mean, mint.normalize_std);
//   4. the known-architecture table (vit_config.hpp), matched on the whole shape; an ambiguous guess is an error.
// Values that several sources give must agree with the weights (classes, input size): a mismatch is an error.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mint/core/error.hpp"
#include "mint/core/normalization.hpp"
#include "mint/io/pytorch.hpp"
#include "mint/io/safetensors.hpp"
#include "mint/models/vit.hpp"
#include "mint/models/vit_config.hpp"

namespace mint {

// What the user said explicitly; every field left empty is looked up in the files.
struct ModelOverrides {
  std::optional<int> heads = std::nullopt;  // --heads
  std::string arch = {};                     // --arch: a known timm name (vit_config.hpp), checked against the shape
  std::vector<float> mean = {}, std = {};    // --mean / --std: one value, or one per channel; both or neither
  std::string config = {};                   // --config: a timm config.json or a mint recipe, instead of the one found
};

// A value and where it came from ("--heads", "config.json model_args.num_heads", ...), for a CLI to print.
template <class T>
struct Sourced {
  T value{};
  std::string from;
};

struct ModelSource {
  ViT<Cpu> vit;
  std::string weights;   // the file the weights were read from
  std::string format;    // "safetensors" or "pytorch"
  std::string config;    // the config.json / recipe used ("" if none)
  Sourced<int> heads;
  Sourced<std::string> architecture;  // a known timm name, or "" when unknown
  Sourced<Normalization> normalization;
  Sourced<int> input_size;            // pixels per side (the channels are vit.config().in_chans)
  Sourced<std::vector<std::string>> class_names;

  // One line per setting: "heads         3  (config.json model_args.num_heads)".
  [[nodiscard]] std::string describe() const;
};

namespace detail {

// The normalisation timm's pretrained configs give a known architecture family: DeiT uses ImageNet's
// (timm IMAGENET_DEFAULT_MEAN / _STD), the original ViT weights (and their augreg re-releases) 0.5 / 0.5.
inline Normalization known_normalization(const std::string& arch) {
  if (arch.rfind("deit", 0) == 0) return {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
  return {{0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f}};
}

inline std::string join_floats(const std::vector<float>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + concat(v[i]);
  return s + "]";
}

// What a config file says; every field optional. `key` holds the JSON path each came from, for provenance.
struct ConfigInfo {
  std::optional<int> heads, classes, img_size, in_chans;
  std::string arch;
  std::optional<Normalization> norm;
  std::optional<std::vector<std::string>> labels;
  std::map<std::string, std::string> key;  // "heads" -> "model_args.num_heads", ...
};

inline int json_positive_int(const nlohmann::json& j, const std::string& file, const std::string& key) {
  check(j.is_number_integer() && j.get<std::int64_t>() >= 1 && j.get<std::int64_t>() <= (1 << 30), "model config '",
        file, "': \"", key, "\" must be a positive integer, got ", j.dump());
  return j.get<int>();
}

// A mean or std entry: a number (every channel) or an array of numbers.
inline std::vector<float> json_floats(const nlohmann::json& j, const std::string& file, const std::string& key) {
  std::vector<float> out;
  if (j.is_number()) {
    out.push_back(j.get<float>());
  } else {
    check(j.is_array() && !j.empty() && j.size() <= 64, "model config '", file, "': \"", key,
          "\" must be a number or an array of 1 to 64 numbers, got ", j.dump().substr(0, 80));
    for (const auto& v : j) {
      check(v.is_number(), "model config '", file, "': \"", key, "\" holds a non-number ", v.dump().substr(0, 40));
      out.push_back(v.get<float>());
    }
  }
  return out;
}

inline std::vector<std::string> json_labels(const nlohmann::json& j, const std::string& file, const std::string& key) {
  std::vector<std::string> out;
  if (j.is_array()) {
    for (const auto& v : j) {
      check(v.is_string(), "model config '", file, "': \"", key, "\" holds a non-string ", v.dump().substr(0, 40));
      out.push_back(v.get<std::string>());
    }
    return out;
  }
  // timm also allows {"0": name, "1": name, ...}; the ids must then be 0 .. n-1.
  check(j.is_object(), "model config '", file, "': \"", key, "\" must be a list of names or an id -> name object");
  out.resize(j.size());
  std::vector<bool> seen(j.size(), false);
  for (auto it = j.cbegin(); it != j.cend(); ++it) {
    std::size_t id = 0, used = 0;
    try {
      id = std::stoul(it.key(), &used);
    } catch (const std::exception&) {
      used = 0;
    }
    check(used == it.key().size() && id < out.size() && !seen[id] && it.value().is_string(), "model config '", file,
          "': \"", key, "\" entry '", it.key(), "' must map an id in [0, ", out.size(), ") to a name");
    seen[id] = true;
    out[id] = it.value().get<std::string>();
  }
  return out;
}

inline ConfigInfo read_model_config(const std::string& file) {
  std::ifstream in(file);
  check(in.is_open(), "model config '", file, "': cannot open it for reading");
  nlohmann::json j;
  // Nesting is bounded while parsing, so that dump() in the messages below (recursive) stays shallow.
  constexpr int kMaxDepth = 32;
  auto bounded = [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    check(depth <= kMaxDepth, "model config '", file, "': JSON nested deeper than ", kMaxDepth, " levels");
    return true;
  };
  try {
    j = nlohmann::json::parse(in, bounded);
  } catch (const nlohmann::json::exception& e) {
    throw Error(concat("model config '", file, "': not valid JSON: ", e.what()));
  }
  check(j.is_object(), "model config '", file, "': must be a JSON object, got a JSON ", j.type_name());
  ConfigInfo c;
  auto norm = [&](const nlohmann::json& obj, const std::string& prefix) {
    if (!obj.contains("mean") && !obj.contains("std")) return;
    check(obj.contains("mean") && obj.contains("std"), "model config '", file, "': \"", prefix,
          "\" must give both mean and std");
    Normalization n{json_floats(obj["mean"], file, prefix + "mean"), json_floats(obj["std"], file, prefix + "std")};
    n.validate("model config '" + file + "' " + prefix + "mean/std");
    c.norm = n;
    c.key["normalization"] = prefix.empty() ? "mean/std" : prefix.substr(0, prefix.size() - 1);
  };
  const bool timm = j.contains("pretrained_cfg") || j.contains("architecture");
  if (timm) {  // timm hub config.json
    if (j.contains("architecture")) {
      check(j["architecture"].is_string(), "model config '", file, "': \"architecture\" must be a string");
      c.arch = j["architecture"].get<std::string>();
      c.key["arch"] = "architecture";
    }
    if (j.contains("num_classes")) {
      c.classes = json_positive_int(j["num_classes"], file, "num_classes");
      c.key["classes"] = "num_classes";
    }
    if (j.contains("model_args") && j["model_args"].is_object() && j["model_args"].contains("num_heads")) {
      c.heads = json_positive_int(j["model_args"]["num_heads"], file, "model_args.num_heads");
      c.key["heads"] = "model_args.num_heads";
    }
    if (j.contains("pretrained_cfg")) {
      const auto& p = j["pretrained_cfg"];
      check(p.is_object(), "model config '", file, "': \"pretrained_cfg\" must be an object");
      norm(p, "pretrained_cfg.");
      if (p.contains("input_size")) {
        const auto& s = p["input_size"];
        check(s.is_array() && s.size() == 3, "model config '", file,
              "': \"pretrained_cfg.input_size\" must be [channels, height, width], got ", s.dump().substr(0, 60));
        c.in_chans = json_positive_int(s[0], file, "pretrained_cfg.input_size[0]");
        c.img_size = json_positive_int(s[1], file, "pretrained_cfg.input_size[1]");
        check(json_positive_int(s[2], file, "pretrained_cfg.input_size[2]") == *c.img_size, "model config '", file,
              "': pretrained_cfg.input_size ", s.dump(), " is not square; mint's ViT takes square images");
        c.key["input_size"] = "pretrained_cfg.input_size";
        c.key["in_chans"] = "pretrained_cfg.input_size[0]";
      }
    }
  } else {  // mint recipe
    if (j.contains("model")) {
      const auto& m = j["model"];
      check(m.is_object(), "model config '", file, "': \"model\" must be an object");
      const std::pair<const char*, std::optional<int>*> fields[] = {
          {"heads", &c.heads}, {"classes", &c.classes}, {"img_size", &c.img_size}, {"in_chans", &c.in_chans}};
      for (const auto& [name, dst] : fields) {
        if (!m.contains(name)) continue;
        *dst = json_positive_int(m[name], file, std::string("model.") + name);
        c.key[name] = std::string("model.") + name;
      }
      if (c.img_size) c.key["input_size"] = "model.img_size";
    }
    if (j.contains("normalization")) {
      check(j["normalization"].is_object(), "model config '", file, "': \"normalization\" must be an object");
      norm(j["normalization"], "normalization.");
    }
  }
  for (const char* k : {"label_names", "class_names"}) {
    if (!j.contains(k) || c.labels) continue;
    c.labels = json_labels(j[k], file, k);
    c.key["labels"] = k;
  }
  return c;
}

// The state dict inside a torch.save object: the tensors under the one prefix that holds "patch_embed.proj.weight"
// ("" for a bare state dict, "model." for {"model": sd}, "module." for DataParallel).
inline std::map<std::string, Tensor<Cpu>> state_dict_of(const io::PytorchFile& f) {
  const std::string anchor = "patch_embed.proj.weight";
  std::vector<std::string> prefixes;
  for (const auto& kv : f.tensors) {
    const std::string& n = kv.first;
    if (n.size() >= anchor.size() && n.compare(n.size() - anchor.size(), anchor.size(), anchor) == 0 &&
        (n.size() == anchor.size() || n[n.size() - anchor.size() - 1] == '.'))
      prefixes.push_back(n.substr(0, n.size() - anchor.size()));
  }
  if (prefixes.empty()) return f.tensors;  // not a ViT: from_tensors names the missing key
  if (prefixes.size() > 1) {
    std::string list;
    for (const auto& p : prefixes) list += (list.empty() ? "'" : ", '") + p + "'";
    throw Error(concat("'", f.source, "' holds ", prefixes.size(), " ViT state dicts (under ", list,
                       "), so which one to load is ambiguous; save the one you mean alone"));
  }
  std::map<std::string, Tensor<Cpu>> sd;
  for (const auto& kv : f.tensors)
    if (kv.first.rfind(prefixes[0], 0) == 0) sd.emplace(kv.first.substr(prefixes[0].size()), kv.second);
  return sd;
}

inline bool has_suffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace detail

inline std::string ModelSource::describe() const {
  const auto& c = vit.config();
  auto line = [](const std::string& what, const std::string& value, const std::string& from) {
    std::string l = what;
    l.resize(15, ' ');
    l += value;
    if (l.size() < 50) l.resize(50, ' ');
    return l + "  (" + from + ")\n";
  };
  std::string names;
  for (std::size_t i = 0; i < class_names.value.size() && i < 4; ++i) names += (i ? ", " : "") + class_names.value[i];
  if (class_names.value.size() > 4) names += ", ...";
  return line("weights", weights, format + (config.empty() ? "" : ", config " + config)) +
         line("architecture", architecture.value.empty() ? "(unknown)" : architecture.value, architecture.from) +
         line("heads", std::to_string(heads.value), heads.from) +
         line("input", detail::concat(c.in_chans, "x", input_size.value, "x", input_size.value), input_size.from) +
         line("normalization", "mean " + detail::join_floats(normalization.value.mean) + " std " +
                                   detail::join_floats(normalization.value.std),
              normalization.from) +
         line("classes", detail::concat(c.classes, names.empty() ? "" : ": " + names), class_names.from);
}

// Opens the model at `path` (a .safetensors file, a .pth/.pt/.bin torch.save file, or a timm hub folder) with the
// settings resolved as described at the top of this file. Throws mint::Error naming the file, the key or the
// option when something is missing, malformed, contradictory or ambiguous.
inline ModelSource open_model(const std::string& path, const ModelOverrides& ov = {}) {
  namespace fs = std::filesystem;
  check(!ov.heads || *ov.heads >= 1, "--heads ", ov.heads.value_or(0), " must be >= 1");
  check(ov.mean.empty() == ov.std.empty(), "--mean and --std must be given together (got only ",
        ov.mean.empty() ? "--std" : "--mean", ")");
  if (!ov.mean.empty()) Normalization{ov.mean, ov.std}.validate("--mean/--std");
  if (!ov.arch.empty()) (void)known_vit(ov.arch);  // unknown names fail here, listing the known ones
  check(ov.config.empty() || fs::is_regular_file(ov.config), "--config '", ov.config, "': no such file");

  std::error_code ec;
  const auto status = fs::status(path, ec);
  check(!ec && fs::exists(status), "model '", path, "': no such file or folder");
  std::string weights = path, config = ov.config;
  if (fs::is_directory(status)) {  // a timm hub folder
    const fs::path dir(path);
    if (fs::is_regular_file(dir / "model.safetensors")) {
      weights = (dir / "model.safetensors").string();
    } else if (fs::is_regular_file(dir / "pytorch_model.bin")) {
      weights = (dir / "pytorch_model.bin").string();
    } else {
      throw Error(detail::concat("model folder '", path, "' has neither model.safetensors nor pytorch_model.bin"));
    }
    if (config.empty()) {
      check(fs::is_regular_file(dir / "config.json"), "model folder '", path,
            "' has no config.json (a timm hub folder holds the weights and config.json)");
      config = (dir / "config.json").string();
    }
  } else if (config.empty()) {  // a recipe <stem>.json beside the weights, or a hub config.json in their folder
    const fs::path p(path);
    const fs::path recipe = fs::path(p).replace_extension(".json");
    const fs::path hub = p.parent_path() / "config.json";
    if (fs::is_regular_file(recipe)) {
      config = recipe.string();
    } else if (fs::is_regular_file(hub)) {
      config = hub.string();
    }
  }

  // The config first: its errors come before the (long) read of the weights.
  const detail::ConfigInfo cfg = config.empty() ? detail::ConfigInfo{} : detail::read_model_config(config);

  // The weights: .safetensors by name; otherwise a zip (torch.save) or the legacy torch.save magic (a pickle
  // starting PROTO 2, LONG1) is PyTorch, anything else is read as safetensors (.bin files are either).
  std::map<std::string, Tensor<Cpu>> tensors;
  std::map<std::string, std::string> metadata;
  std::string format = "safetensors";
  if (!detail::has_suffix(weights, ".safetensors")) {
    unsigned char head[3] = {0, 0, 0};
    std::ifstream in(weights, std::ios::binary);
    check(in.is_open(), "model '", weights, "': cannot open it for reading");
    in.read(reinterpret_cast<char*>(head), 3);
    const bool zip = in.gcount() == 3 && head[0] == 'P' && head[1] == 'K';
    const bool legacy = in.gcount() == 3 && head[0] == 0x80 && head[1] == 0x02 && head[2] == 0x8a;
    if (zip || legacy) format = "pytorch";
  }
  if (format == "pytorch") {
    tensors = detail::state_dict_of(io::load_pytorch(weights));
  } else {
    auto f = io::load_safetensors(weights);
    tensors = std::move(f.tensors);
    metadata = std::move(f.metadata);
  }
  const std::string cfg_name = config.empty() ? "" : fs::path(config).filename().string();
  auto from_cfg = [&](const std::string& what) { return cfg_name + " " + cfg.key.at(what); };

  // Heads: overrides, then the config, then (inside from_tensors) metadata and the table.
  ViTLoadOptions opt;
  Sourced<int> heads;
  Sourced<std::string> arch;
  std::string cfg_arch = cfg.arch.substr(0, cfg.arch.find('.'));  // timm names may carry a ".tag" suffix
  bool cfg_arch_known = false;
  for (const auto& k : known_vits()) cfg_arch_known = cfg_arch_known || cfg_arch == k.name;
  if (!ov.arch.empty()) {
    arch = {ov.arch, "--arch"};
  } else if (cfg_arch_known) {
    arch = {cfg_arch, from_cfg("arch")};
  }
  if (ov.heads) {
    opt.heads = ov.heads;
    heads.from = "--heads";
  } else if (!ov.arch.empty()) {
    opt.arch = ov.arch;
    heads.from = "--arch " + ov.arch + " (known-architecture table)";
  } else if (cfg.heads) {
    opt.heads = cfg.heads;
    heads.from = from_cfg("heads");
  } else if (cfg_arch_known) {
    opt.arch = cfg_arch;
    heads.from = from_cfg("arch") + " " + cfg_arch + " (known-architecture table)";
  } else if (metadata.count("mint.num_heads")) {
    heads.from = "safetensors metadata mint.num_heads";
  }
  ViT<Cpu> vit = ViT<Cpu>::from_tensors(tensors, opt, metadata, weights);
  const ViTConfig& c = vit.config();
  heads.value = c.heads;
  std::vector<std::string> table_names;
  if (heads.from.empty() || arch.from.empty()) {
    try {
      table_names = known_match(c, weights).names;
    } catch (const Error&) {
      table_names.clear();  // no unambiguous match: the architecture stays unknown
    }
  }
  if (heads.from.empty()) {  // from_tensors used the table, which succeeded, so table_names is not empty
    std::string list;
    for (const auto& n : table_names) list += (list.empty() ? "" : ", ") + n;
    heads.from = "known-architecture table (the shape matches " + list + ")";
  }
  if (arch.from.empty() && !table_names.empty()) {
    std::string list;
    for (const auto& n : table_names) list += (list.empty() ? "" : " / ") + n;
    arch = {table_names.size() == 1 ? table_names[0] : list, "known-architecture table, by shape"};
  }
  if (arch.from.empty()) arch.from = "no source names it";

  // Values the config repeats must agree with the weights.
  const std::string cfg_where = "model config '" + config + "'";
  if (cfg.classes)
    check(*cfg.classes == c.classes, cfg_where, ": ", cfg.key.at("classes"), " = ", *cfg.classes, " but the weights ('",
          weights, "', head.weight) have ", c.classes, " classes");
  if (cfg.in_chans)
    check(*cfg.in_chans == c.in_chans, cfg_where, ": ", cfg.key.at("in_chans"), " gives ", *cfg.in_chans,
          " channels but the weights ('", weights, "', patch_embed.proj.weight) take ", c.in_chans);
  Sourced<int> input{c.img_size, detail::concat("the weights (pos_embed: ", c.grid(), "x", c.grid(), " patches of ",
                                                c.patch, " px)")};
  if (cfg.img_size) {
    check(*cfg.img_size == c.img_size, cfg_where, ": ", cfg.key.at("input_size"), " gives ", *cfg.img_size,
          " px but the weights ('", weights, "', pos_embed) have ", c.grid(), "x", c.grid(), " patches of ", c.patch,
          " px = ", c.img_size, " px");
    input.from = from_cfg("input_size") + ", agrees with the weights";
  }

  // Normalisation: overrides, the config, metadata, then the architecture family (if the name is unambiguous).
  Sourced<Normalization> norm;
  if (!ov.mean.empty()) {
    norm = {{ov.mean, ov.std}, "--mean/--std"};
  } else if (cfg.norm) {
    norm = {*cfg.norm, from_cfg("normalization")};
  } else if (metadata.count("mint.normalize_mean") && metadata.count("mint.normalize_std")) {
    norm = {{parse_float_list(metadata.at("mint.normalize_mean"), "'" + weights + "': metadata mint.normalize_mean"),
             parse_float_list(metadata.at("mint.normalize_std"), "'" + weights + "': metadata mint.normalize_std")},
            "safetensors metadata mint.normalize_mean/std"};
  } else {
    std::vector<std::string> names = table_names;
    if (!arch.value.empty() && (arch.from == "--arch" || cfg_arch_known)) names = {arch.value};
    check(!names.empty(), "model '", path, "': no source gives the input normalisation (no --mean/--std, no ",
          config.empty() ? "config.json or recipe" : "mean/std in '" + config + "'",
          ", no metadata, and the architecture is unknown); pass --mean and --std");
    const Normalization first = detail::known_normalization(names[0]);
    for (const auto& n : names) {
      const Normalization other = detail::known_normalization(n);
      check(other.mean == first.mean && other.std == first.std, "model '", path,
            "': the input normalisation is ambiguous: the shape matches ", names[0], " (mean ",
            detail::join_floats(first.mean), ") and ", n, " (mean ", detail::join_floats(other.mean),
            "); pass --mean and --std, or --arch");
    }
    norm = {first, "timm's default for " + names[0] + " (pretrained_cfg mean/std)"};
  }
  norm.value.validate("normalization (" + norm.from + ")");
  check(norm.value.channels() == 1 || norm.value.channels() == c.in_chans, "normalization (", norm.from, ") has ",
        norm.value.channels(), " channels but the model takes ", c.in_chans);
  norm.value = norm.value.for_channels(c.in_chans, "normalization (" + norm.from + ")");

  Sourced<std::vector<std::string>> labels;
  if (cfg.labels) {
    check(static_cast<int>(cfg.labels->size()) == c.classes, cfg_where, ": ", cfg.key.at("labels"), " has ",
          cfg.labels->size(), " names but the model has ", c.classes, " classes");
    labels = {*cfg.labels, from_cfg("labels")};
  } else {
    for (int i = 0; i < c.classes; ++i) labels.value.push_back(std::to_string(i));
    labels.from = "class indices (no names in the files)";
  }
  return ModelSource{std::move(vit), weights, format, config, heads, arch, norm, input, labels};
}

}  // namespace mint
