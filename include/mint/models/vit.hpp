// mint/models/vit.hpp -- ViT<Cpu>: a timm ViT / DeiT (incl. distilled DeiT) that loads timm safetensors
// unchanged, runs on a per-image keep set of patch tokens, and hands out the last block's head-averaged
// CLS attention from the same forward pass.
//
// ViT<Cuda> is the same template on device tensors: include mint/models/vit_cuda.cuh (nvcc) for the CUDA ops.
//
// forward(images, keep) gathers the kept patches before the embedding GEMM and adds their gathered position
// embeddings (equal to SMI's "prune after the position-embedding add", see mint/nn/tokens.hpp), so the cost of
// every layer follows the kept count K. backward(d_logits, mode) returns d_images; in Backward::Full it also
// accumulates every parameter's gradient, in Backward::InputOnly no weight-gradient work runs at all.
#pragma once
#define MINT_MODELS_VIT_HPP_INCLUDED 1

#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "mint/autodiff/backward.hpp"
#include "mint/core/tensor.hpp"
#include "mint/io/safetensors.hpp"
#include "mint/models/vit_config.hpp"
#include "mint/nn/activation.hpp"
#include "mint/nn/attention.hpp"
#include "mint/nn/elementwise.hpp"
#include "mint/nn/fused.hpp"
#include "mint/nn/layernorm.hpp"
#include "mint/nn/linear.hpp"
#include "mint/nn/tokens.hpp"

namespace mint {

// How to read a checkpoint. Everything left unset is inferred from the tensors (see vit_config.hpp).
struct ViTLoadOptions {
  std::optional<int> heads = std::nullopt;  // explicit head count
  std::string arch = {};     // a known timm architecture name, e.g. "deit_tiny_patch16_224"
  float eps = 1e-6f;         // LayerNorm eps
};

// An observer of the input of every linear layer (mint/tasks/quantize.hpp uses it for activation calibration
// and fake quantization). on_linear_input runs just before the layer's GEMM and may modify x in place; the
// modified tensor is what the layer and its backward then see. `block` is the transformer block (-1 for the
// patch embedding and the heads). With no hook set (the default) forward is unchanged.
// on_linear_input_grad runs in backward() just after the layer's input gradient d loss / d x (of the modified x)
// is complete, before it flows further down, and may modify it in place: quantization-aware training
// (mint/tasks/qat.hpp) masks it there (the straight-through estimator) and reads it for its learned ranges.
enum class LinearSite { PatchEmbed, Qkv, Proj, Fc1, Fc2, Head, HeadDist };

template <class Device = Cpu>
struct LinearInputHook {
  virtual ~LinearInputHook() = default;
  virtual void on_linear_input(LinearSite site, int block, Tensor<Device>& x) = 0;
  virtual void on_linear_input_grad(LinearSite /*site*/, int /*block*/, Tensor<Device>& /*dx*/) {}
};

template <class Device = Cpu>
class ViT {
  static_assert(std::is_same_v<Device, Cpu> || std::is_same_v<Device, Cuda>, "ViT: Device is Cpu or Cuda");

 public:
  using device_type = Device;
  using TensorT = Tensor<Device>;
  using TensorMap = std::map<std::string, TensorT>;

  // Builds a model from timm-named tensors. Missing, unexpected or mis-shaped keys throw mint::Error naming
  // the key (and both shapes); non-finite weights throw naming the key. Every inferred size and every key's
  // shape is checked before the model allocates anything, so the model is never larger than the tensors it
  // is built from (a file's zero-element tensors cannot make it allocate more).
  static ViT from_tensors(const TensorMap& tensors, const ViTLoadOptions& opt = {},
                          const std::map<std::string, std::string>& metadata = {}, const std::string& source = "tensors") {
    const ViTConfig cfg = infer_config(tensors, opt, metadata, source);
    const std::map<std::string, Shape> shapes = parameter_shapes(cfg);
    std::vector<std::string> unexpected;
    for (const auto& [name, t] : tensors)
      if (!shapes.count(name)) unexpected.push_back(name);
    if (!unexpected.empty()) {
      std::string list;
      for (std::size_t i = 0; i < unexpected.size() && i < 8; ++i) list += (i ? ", '" : "'") + unexpected[i] + "'";
      throw Error(detail::concat("ViT (", source, "): ", unexpected.size(), " unexpected key(s) ", list,
                                 unexpected.size() > 8 ? ", ..." : "",
                                 " -- mint's ViT has no such parameter (layer scale, fc_norm, ... are not supported)"));
    }
    for (const auto& [name, shape] : shapes) {
      auto it = tensors.find(name);
      check(it != tensors.end(), "ViT (", source, "): missing key '", name, "' (expected shape ", shape.str(), ")");
      check(it->second.shape() == shape, "ViT (", source, "): key '", name, "' has shape ", it->second.shape().str(),
            " but the model (", describe(cfg), ") expects ", shape.str());
      check_finite(it->second, ("ViT (" + source + "): weight '" + name + "'").c_str());
    }
    ViT m(cfg);
    for (auto& [name, p] : m.params_) p.value = tensors.at(name).clone();
    m.bind();
    return m;
  }

  // The name and shape of every parameter of a model of this config (timm names). requires: cfg.validate().
  static std::map<std::string, Shape> parameter_shapes(const ViTConfig& cfg) {
    const std::int64_t d = cfg.dim, e = cfg.extra_tokens(), n = cfg.num_patches(), h = cfg.mlp_hidden;
    const std::int64_t p = cfg.patch, c = cfg.in_chans;
    std::map<std::string, Shape> s;
    s["cls_token"] = {1, 1, d};
    if (cfg.distilled) s["dist_token"] = {1, 1, d};
    s["pos_embed"] = {1, e + n, d};
    s["patch_embed.proj.weight"] = {d, c, p, p};
    s["patch_embed.proj.bias"] = {d};
    for (int i = 0; i < cfg.depth; ++i) {
      const std::string b = "blocks." + std::to_string(i) + ".";
      s[b + "norm1.weight"] = {d};
      s[b + "norm1.bias"] = {d};
      s[b + "attn.qkv.weight"] = {3 * d, d};
      s[b + "attn.qkv.bias"] = {3 * d};
      s[b + "attn.proj.weight"] = {d, d};
      s[b + "attn.proj.bias"] = {d};
      s[b + "norm2.weight"] = {d};
      s[b + "norm2.bias"] = {d};
      s[b + "mlp.fc1.weight"] = {h, d};
      s[b + "mlp.fc1.bias"] = {h};
      s[b + "mlp.fc2.weight"] = {d, h};
      s[b + "mlp.fc2.bias"] = {d};
    }
    s["norm.weight"] = {d};
    s["norm.bias"] = {d};
    s["head.weight"] = {cfg.classes, d};
    s["head.bias"] = {cfg.classes};
    if (cfg.distilled) {
      s["head_dist.weight"] = {cfg.classes, d};
      s["head_dist.bias"] = {cfg.classes};
    }
    return s;
  }

  // Reads a timm safetensors checkpoint (F32, F16 or BF16 stored; converted to float32). ViT<Cuda> reads it
  // on the host, checks it there and copies every weight to the device once.
  static ViT load(const std::string& path, const ViTLoadOptions& opt = {}) {
    auto file = io::load_safetensors(path);
    if constexpr (std::is_same_v<Device, Cpu>) {
      return from_tensors(file.tensors, opt, file.metadata, path);
    } else {
      return ViT<Cpu>::from_tensors(file.tensors, opt, file.metadata, path).template to<Device>();
    }
  }

  // A copy of this model on another backend (weights only; gradients and the saved pass are not copied).
  template <class To>
  [[nodiscard]] ViT<To> to() const {
    ViT<To> out(cfg_);
    for (auto& [n, p] : out.parameters()) p.value = to_backend<To>(to_cpu(params_.at(n).value));
    out.rebind();
    return out;
  }

  // A model of the given shape with its parameters zeroed (the trainer initialises them).
  explicit ViT(const ViTConfig& cfg) : cfg_(cfg) {
    cfg_.validate();
    for (const auto& [name, shape] : parameter_shapes(cfg_)) params_[name].value = TensorT::zeros(shape);
    bind();
  }

  ViT(ViT&& o) noexcept
      : cfg_(o.cfg_), params_(std::move(o.params_)), cache_(std::move(o.cache_)), hook_(o.hook_),
        check_inputs_(o.check_inputs_) {
    bind();
  }
  ViT& operator=(ViT&& o) noexcept {
    cfg_ = o.cfg_;
    params_ = std::move(o.params_);
    cache_ = std::move(o.cache_);
    hook_ = o.hook_;
    check_inputs_ = o.check_inputs_;
    bind();
    return *this;
  }
  ViT(const ViT&) = delete;
  ViT& operator=(const ViT&) = delete;

  [[nodiscard]] const ViTConfig& config() const { return cfg_; }
  [[nodiscard]] int num_patches() const { return cfg_.num_patches(); }
  [[nodiscard]] int patch_size() const { return cfg_.patch; }
  [[nodiscard]] int grid() const { return cfg_.grid(); }

  // Parameters by timm name (for optimisers and tests). References stay valid while the model lives.
  std::map<std::string, Param<Device>>& parameters() { return params_; }
  const std::map<std::string, Param<Device>>& parameters() const { return params_; }
  Param<Device>& parameter(const std::string& name) {
    auto it = params_.find(name);
    check(it != params_.end(), "ViT: no parameter '", name, "'");
    return it->second;
  }
  void zero_grad() {
    for (auto& [n, p] : params_) p.zero_grad();
  }

  // The linear-input hook (not owned; nullptr = none). It must outlive its use in forward().
  void set_linear_input_hook(LinearInputHook<Device>* hook) { hook_ = hook; }
  [[nodiscard]] LinearInputHook<Device>* linear_input_hook() const { return hook_; }

  // timm-named weights, and a safetensors file with them plus "mint.num_heads" metadata.
  [[nodiscard]] TensorMap state_dict() const {
    TensorMap m;
    for (const auto& [n, p] : params_) m[n] = p.value;
    return m;
  }
  void save(const std::string& path, std::map<std::string, std::string> metadata = {}) const {
    metadata["mint.num_heads"] = std::to_string(cfg_.heads);
    if constexpr (std::is_same_v<Device, Cpu>) {
      io::save_safetensors(path, state_dict(), metadata);
    } else {
      std::map<std::string, Tensor<Cpu>> host;
      for (const auto& [n, p] : params_) host[n] = to_cpu(p.value);
      io::save_safetensors(path, host, metadata);
    }
  }

  // Whether forward() scans the images for NaN/Inf (default on). On CUDA the scan ends in a 4-byte copy to the
  // host, i.e. a stream synchronisation, which a CUDA graph capture cannot contain: the inversion engine turns
  // it off for captured iterations (it checks the loss instead).
  void set_check_inputs(bool on) { check_inputs_ = on; }

  // Re-resolves the parameter pointers after parameters() values were replaced (to<>() uses it).
  void rebind() { bind(); }

  // requires: images [B, C, H, W] matching the config, finite (a NaN or Inf pixel throws naming its index);
  //           keep == nullptr (all patches) or a valid keep set for (B, N).
  // ensures:  logits [B, classes]; last_cls_attention() is [B, K]; the pass is saved for backward().
  TensorT forward(const TensorT& images, const nn::TokenIndex* keep = nullptr) {
    check(images.rank() == 4 && images.dim(1) == cfg_.in_chans && images.dim(2) == cfg_.img_size &&
              images.dim(3) == cfg_.img_size,
          "ViT::forward: images have shape ", images.shape().str(), " but the model expects [B, ", cfg_.in_chans, ", ",
          cfg_.img_size, ", ", cfg_.img_size, "]");
    if (check_inputs_) check_finite(images, "ViT::forward: images");
    const std::int64_t b = images.dim(0), n = cfg_.num_patches(), e = cfg_.extra_tokens();
    if (keep) keep->validate(b, n);
    Cache& c = cache_;
    c = Cache{};
    c.batch = b;
    c.has_keep = keep != nullptr;
    if (keep) c.keep = *keep;
    c.image_shape = images.shape();
    c.patches = nn::patchify(images, cfg_.patch, keep);  // [B, K, C*p*p], the kept patches only
    observe(LinearSite::PatchEmbed, -1, c.patches);
    auto tok = nn::linear(c.patches, pe_w_flat_, &pe_b_->value);
    TensorT x = nn::embed_tokens(tok, keep,
                                 nn::TokenEmbedParamsT<Device>{&cls_->value, cfg_.distilled ? &dist_->value : nullptr, &pos_->value});
    c.tokens = x.dim(1);
    c.blocks.resize(static_cast<std::size_t>(cfg_.depth));
    for (int l = 0; l < cfg_.depth; ++l) {
      // Only the CLS (and distillation) rows reach the head, so the last block computes just those rows
      // (its keys and values still come from every token): -22% per iteration on the small model.
      const bool last = l + 1 == cfg_.depth;
      x = block_forward(blocks_[static_cast<std::size_t>(l)], c.blocks[static_cast<std::size_t>(l)], x,
                        last ? &c.cls_attn : nullptr, e, last ? e : c.tokens, l);
    }
    c.head_in_raw = x;  // [B, E, D]
    c.head_in = nn::layernorm(c.head_in_raw, norm_w_->value, norm_b_->value, cfg_.eps, &c.ln_final);
    return head_forward(c.head_in);
  }

  // Head-averaged attention of the CLS token to each kept patch token in the last block of the latest
  // forward(), [B, K] in keep order (SMI Sec. 4.2). Computed in that pass, no extra cost.
  [[nodiscard]] const TensorT& last_cls_attention() const {
    check(cache_.batch > 0, "ViT::last_cls_attention: no forward pass yet");
    return cache_.cls_attn;
  }

  // The CLS token's attention to each kept patch in block `block` of the latest forward(), per head: [B, H, K] on
  // the host, in keep order (the selectors' probe: mint/inversion/concepts.hpp AttentionProbe). Read from the
  // attention probabilities that pass saved for backward, so forward() computes nothing extra for it and only a
  // caller pays (on a device backend: a copy of that block's probabilities to the host).
  // requires: a forward() since the last release_cache(); 0 <= block < depth.
  [[nodiscard]] Tensor<Cpu> cls_attention_per_head(int block) const {
    check(cache_.batch > 0, "ViT::cls_attention_per_head: no forward pass yet");
    check(block >= 0 && block < cfg_.depth, "ViT::cls_attention_per_head: block ", block, " outside 0..",
          cfg_.depth - 1);
    const Tensor<Cpu> probs = to_cpu(cache_.blocks[static_cast<std::size_t>(block)].att.probs);  // [B, H, Q, T]
    const std::int64_t b = probs.dim(0), h = probs.dim(1), q = probs.dim(2), t = probs.dim(3);
    const std::int64_t e = cfg_.extra_tokens(), k = t - e;
    auto out = Tensor<Cpu>::empty(Shape{b, h, k});
    for (std::int64_t bh = 0; bh < b * h; ++bh)  // row 0 of each (image, head): the CLS query
      std::copy(probs.data() + bh * q * t + e, probs.data() + bh * q * t + t, out.data() + bh * k);
    return out;
  }

  // Frees what the latest forward() saved for backward (activations, attention). The next forward() would
  // free it anyway; call this to measure memory from a clean start or to hand the memory back between runs.
  void release_cache() { cache_ = Cache{}; }

  // requires: the latest call was forward() on the images to differentiate; dlogits [B, classes].
  // ensures:  returns d loss / d images [B, C, H, W] (zero on dropped patches except through nothing: the
  //           blocks never saw them); in Full mode adds every parameter's gradient into Param::grad.
  TensorT backward(const TensorT& dlogits, Backward mode) {
    Cache& c = cache_;
    check(c.batch > 0, "ViT::backward: call forward() first");
    check_shape(dlogits, Shape{c.batch, cfg_.classes}, "ViT::backward: d_logits");
    const std::int64_t b = c.batch, e = cfg_.extra_tokens(), d = cfg_.dim, t = c.tokens;
    // head(s)
    auto dhead_in = TensorT::zeros(Shape{b, e, d});
    if (!cfg_.distilled) {
      auto dflat = dhead_in.reshape(Shape{b, d});  // a view: writes land in dhead_in
      nn::linear_backward(dlogits, c.head_in.reshape(Shape{b, d}), head_w_->value, &dflat, head_w_->grad_for(mode),
                          head_b_->grad_for(mode));
      observe_grad(LinearSite::Head, -1, dhead_in);
    } else {
      TensorT half = dlogits.clone();
      nn::scale_inplace(half, 0.5f);
      auto cls_rows = select_row(c.head_in, 0), dist_rows = select_row(c.head_in, 1);
      auto dcls = TensorT::zeros(Shape{b, d}), ddist = TensorT::zeros(Shape{b, d});
      nn::linear_backward(half, cls_rows, head_w_->value, &dcls, head_w_->grad_for(mode), head_b_->grad_for(mode));
      nn::linear_backward(half, dist_rows, head_dist_w_->value, &ddist, head_dist_w_->grad_for(mode),
                          head_dist_b_->grad_for(mode));
      observe_grad(LinearSite::Head, -1, dcls);
      observe_grad(LinearSite::HeadDist, -1, ddist);
      copy_rows(dhead_in, 0, 2 * d, dcls, 0, d, d, b);  // row 0 of every image
      copy_rows(dhead_in, d, 2 * d, ddist, 0, d, d, b);  // row 1
    }
    auto dx = TensorT::zeros(Shape{b, e, d});  // d loss / d (last block's output rows)
    nn::layernorm_backward(dhead_in, c.head_in_raw, norm_w_->value, c.ln_final, &dx, norm_w_->grad_for(mode),
                           norm_b_->grad_for(mode));
    for (int l = cfg_.depth - 1; l >= 0; --l)
      dx = block_backward(blocks_[static_cast<std::size_t>(l)], c.blocks[static_cast<std::size_t>(l)], dx, mode, l);
    // tokens -> patches -> pixels
    const nn::TokenIndex* keep = c.has_keep ? &c.keep : nullptr;
    auto dtok = TensorT::zeros(Shape{b, t - e, d});
    nn::embed_tokens_backward(dx, keep, e,
                              nn::TokenEmbedGradsT<Device>{&dtok, cls_->grad_for(mode),
                                                           cfg_.distilled ? dist_->grad_for(mode) : nullptr, pos_->grad_for(mode)});
    auto dpatches = TensorT::empty(c.patches.shape());
    TensorT* dpe_w = pe_w_->grad_for(mode);
    TensorT dpe_w_flat = dpe_w ? dpe_w->reshape(pe_w_flat_.shape()) : TensorT{};
    nn::linear_backward(dtok, c.patches, pe_w_flat_, &dpatches, dpe_w ? &dpe_w_flat : nullptr, pe_b_->grad_for(mode),
                        GradInto::Overwrite);
    observe_grad(LinearSite::PatchEmbed, -1, dpatches);
    auto dimages = TensorT::zeros(c.image_shape);
    nn::patchify_backward(dpatches, cfg_.patch, keep, dimages);
    return dimages;
  }

 private:
  struct Block {
    Param<Device>*ln1_w, *ln1_b, *qkv_w, *qkv_b, *proj_w, *proj_b, *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
  };
  struct BlockCache {
    TensorT x_in, h1, qkv, att_out, x_mid, h2, fc1_out, act;
    nn::LayerNormSavedT<Device> ln1, ln2;
    nn::AttentionSavedT<Device> att;
  };
  struct Cache {
    std::int64_t batch = 0, tokens = 0;
    bool has_keep = false;
    nn::TokenIndex keep;
    Shape image_shape;
    TensorT patches, head_in_raw, head_in, cls_attn;
    nn::LayerNormSavedT<Device> ln_final;
    std::vector<BlockCache> blocks;
  };

  static ViTConfig infer_config(const TensorMap& t, const ViTLoadOptions& opt,
                                const std::map<std::string, std::string>& metadata, const std::string& source) {
    auto need = [&](const std::string& k) -> const TensorT& {
      auto it = t.find(k);
      check(it != t.end(), "ViT (", source, "): missing key '", k, "'");
      return it->second;
    };
    // A size read from a tensor's shape, as the int the config holds: >= 1 and representable.
    auto size_of = [&](const std::string& key, const TensorT& tensor, int axis, const char* what) {
      const std::int64_t v = tensor.dim(axis);
      check(v >= 1 && v <= std::numeric_limits<int>::max(), "ViT (", source, "): key '", key, "' has shape ",
            tensor.shape().str(), ", which gives ", what, " = ", v, "; it must be in [1, ",
            std::numeric_limits<int>::max(), "]");
      return static_cast<int>(v);
    };
    auto need_rank = [&](const std::string& key, int rank, const char* form) -> const TensorT& {
      const TensorT& tensor = need(key);
      check(tensor.rank() == rank, "ViT (", source, "): key '", key, "' has shape ", tensor.shape().str(), " but ",
            form, " is expected");
      return tensor;
    };
    ViTConfig c;
    c.eps = opt.eps;
    const auto& pe = need_rank("patch_embed.proj.weight", 4, "a [dim, channels, patch, patch] conv weight");
    check(pe.dim(2) == pe.dim(3), "ViT (", source, "): key 'patch_embed.proj.weight' has shape ",
          pe.shape().str(), " but a [dim, channels, patch, patch] conv weight is expected");
    c.dim = size_of("patch_embed.proj.weight", pe, 0, "dim");
    c.in_chans = size_of("patch_embed.proj.weight", pe, 1, "in_chans");
    c.patch = size_of("patch_embed.proj.weight", pe, 2, "patch");
    c.distilled = t.count("dist_token") > 0;
    const auto& pos = need("pos_embed");
    check(pos.rank() == 3 && pos.dim(0) == 1 && pos.dim(2) == c.dim, "ViT (", source, "): key 'pos_embed' has shape ",
          pos.shape().str(), " but [1, tokens, ", c.dim, "] is expected");
    // pos_embed holds pos.dim(1) * dim >= pos.dim(1) real values, so n is bounded by the file; the square root
    // is taken in floating point and corrected, never by counting up to it.
    const std::int64_t n = pos.dim(1) - c.extra_tokens();
    check(n >= 1 && n <= std::numeric_limits<int>::max(), "ViT (", source, "): pos_embed has ", pos.dim(1),
          " rows, which is not ", c.extra_tokens(), " extra token(s) plus a square grid of patches");
    auto g = static_cast<std::int64_t>(std::sqrt(static_cast<double>(n)));
    while (g * g > n) --g;
    while ((g + 1) * (g + 1) <= n) ++g;
    check(g * g == n, "ViT (", source, "): pos_embed has ", pos.dim(1), " rows, which is not ", c.extra_tokens(),
          " extra token(s) plus a square grid of patches");
    check(g * c.patch <= std::numeric_limits<int>::max(), "ViT (", source, "): a ", g, " x ", g, " grid of ",
          c.patch, "-pixel patches is larger than an int image size");
    c.img_size = static_cast<int>(g) * c.patch;
    c.depth = 0;
    while (t.count("blocks." + std::to_string(c.depth) + ".norm1.weight")) ++c.depth;
    check(c.depth > 0, "ViT (", source, "): missing key 'blocks.0.norm1.weight' (no transformer blocks found)");
    const auto& fc1 = need_rank("blocks.0.mlp.fc1.weight", 2, "a [mlp_hidden, dim] linear weight");
    c.mlp_hidden = size_of("blocks.0.mlp.fc1.weight", fc1, 0, "mlp_hidden");
    c.classes = size_of("head.weight", need_rank("head.weight", 2, "a [classes, dim] linear weight"), 0, "classes");
    if (opt.heads) {
      c.heads = *opt.heads;
    } else if (!opt.arch.empty()) {
      const auto& k = known_vit(opt.arch);
      check(k.dim == c.dim && k.depth == c.depth && k.patch == c.patch, "ViT (", source, "): architecture '", opt.arch,
            "' has dim ", k.dim, ", depth ", k.depth, ", patch ", k.patch, " but the checkpoint has dim ", c.dim,
            ", depth ", c.depth, ", patch ", c.patch);
      c.heads = k.heads;
    } else if (auto h = io::metadata_int(metadata, "mint.num_heads", 1, c.dim, "ViT (" + source + ")")) {
      c.heads = static_cast<int>(*h);
    } else {
      c.heads = known_match(c, source).heads;  // throws when the table cannot tell
    }
    c.validate();
    return c;
  }

  [[nodiscard]] static std::string describe(const ViTConfig& c) {
    return detail::concat("dim ", c.dim, ", depth ", c.depth, ", patch ", c.patch, ", img ", c.img_size,
                          ", classes ", c.classes, ", mlp ", c.mlp_hidden, c.distilled ? ", distilled" : "");
  }

  // Resolves the named parameters into fast pointers (after construction or a move).
  void bind() {
    auto p = [&](const std::string& n) { return &params_.at(n); };
    cls_ = p("cls_token");
    dist_ = cfg_.distilled ? p("dist_token") : nullptr;
    pos_ = p("pos_embed");
    pe_w_ = p("patch_embed.proj.weight");
    pe_b_ = p("patch_embed.proj.bias");
    pe_w_flat_ = pe_w_->value.reshape(Shape{cfg_.dim, pe_w_->value.numel() / cfg_.dim});
    norm_w_ = p("norm.weight");
    norm_b_ = p("norm.bias");
    head_w_ = p("head.weight");
    head_b_ = p("head.bias");
    head_dist_w_ = cfg_.distilled ? p("head_dist.weight") : nullptr;
    head_dist_b_ = cfg_.distilled ? p("head_dist.bias") : nullptr;
    blocks_.clear();
    for (int i = 0; i < cfg_.depth; ++i) {
      const std::string b = "blocks." + std::to_string(i) + ".";
      blocks_.push_back({p(b + "norm1.weight"), p(b + "norm1.bias"), p(b + "attn.qkv.weight"), p(b + "attn.qkv.bias"),
                         p(b + "attn.proj.weight"), p(b + "attn.proj.bias"), p(b + "norm2.weight"), p(b + "norm2.bias"),
                         p(b + "mlp.fc1.weight"), p(b + "mlp.fc1.bias"), p(b + "mlp.fc2.weight"), p(b + "mlp.fc2.bias")});
    }
  }

  // x [B, T, D] -> [B, rows, D]: the block's output for the first `rows` tokens (T for all but the last block).
  TensorT block_forward(const Block& w, BlockCache& s, const TensorT& x, TensorT* cls_attn, std::int64_t extra,
                        std::int64_t rows, int l) {
    s.x_in = x;
    s.h1 = nn::layernorm(x, w.ln1_w->value, w.ln1_b->value, cfg_.eps, &s.ln1);
    observe(LinearSite::Qkv, l, s.h1);
    s.qkv = nn::linear(s.h1, w.qkv_w->value, &w.qkv_b->value);
    s.att_out = nn::attention(s.qkv, cfg_.heads, &s.att, cls_attn, static_cast<int>(extra), rows);
    observe(LinearSite::Proj, l, s.att_out);
    // x_mid = x + proj(att_out) and h2 = LN2(x_mid) from one pass after the GEMM (mint/nn/fused.hpp); in the
    // last block the residual is x's leading rows
    s.h2 = nn::linear_residual_layernorm(s.att_out, w.proj_w->value, w.proj_b->value, x, w.ln2_w->value,
                                         w.ln2_b->value, cfg_.eps, &s.ln2, s.x_mid);
    observe(LinearSite::Fc1, l, s.h2);
    s.act = nn::linear_gelu(s.h2, w.fc1_w->value, w.fc1_b->value, s.fc1_out);  // bias + GELU in one pass
    observe(LinearSite::Fc2, l, s.act);
    return nn::linear_residual(s.act, w.fc2_w->value, w.fc2_b->value, s.x_mid);
  }

  // dy is d loss / d block output [B, rows, D]; returns d loss / d block input [B, T, D].
  TensorT block_backward(const Block& w, BlockCache& s, const TensorT& dy, Backward mode, int l) {
    // x_out = x_mid + fc2(gelu(fc1(ln2(x_mid))))
    // every d-input buffer below is written whole by its op (GradInto::Overwrite), so none is zero-filled first
    auto dact = TensorT::empty(s.act.shape());
    nn::linear_backward(dy, s.act, w.fc2_w->value, &dact, w.fc2_w->grad_for(mode), w.fc2_b->grad_for(mode),
                        GradInto::Overwrite);
    observe_grad(LinearSite::Fc2, l, dact);
    nn::gelu_backward_inplace(dact, s.fc1_out);  // dact becomes d fc1_out
    auto dh2 = TensorT::empty(s.h2.shape());
    nn::linear_backward(dact, s.h2, w.fc1_w->value, &dh2, w.fc1_w->grad_for(mode), w.fc1_b->grad_for(mode),
                        GradInto::Overwrite);
    observe_grad(LinearSite::Fc1, l, dh2);
    TensorT dmid = nn::layernorm_backward_residual(dh2, s.x_mid, w.ln2_w->value, s.ln2, dy, w.ln2_w->grad_for(mode),
                                                   w.ln2_b->grad_for(mode));
    // x_mid = x_in + proj(attention(qkv(ln1(x_in))))
    auto datt = TensorT::empty(s.att_out.shape());
    nn::linear_backward(dmid, s.att_out, w.proj_w->value, &datt, w.proj_w->grad_for(mode), w.proj_b->grad_for(mode),
                        GradInto::Overwrite);
    observe_grad(LinearSite::Proj, l, datt);
    auto dqkv = TensorT::zeros(s.qkv.shape());  // attention_backward adds into it (the last block: not every dQ row)
    nn::attention_backward(datt, s.qkv, cfg_.heads, s.att, dqkv);
    auto dh1 = TensorT::empty(s.h1.shape());
    nn::linear_backward(dqkv, s.h1, w.qkv_w->value, &dh1, w.qkv_w->grad_for(mode), w.qkv_b->grad_for(mode),
                        GradInto::Overwrite);
    observe_grad(LinearSite::Qkv, l, dh1);
    // the residual reaches the leading rows (all of them but in the last block)
    return nn::layernorm_backward_residual(dh1, s.x_in, w.ln1_w->value, s.ln1, dmid, w.ln1_w->grad_for(mode),
                                           w.ln1_b->grad_for(mode));
  }

  // The hook (if any) sees the head input: [B, 1, D] in place for a plain ViT; for a distilled one, copies of
  // the CLS rows (Head) and distillation rows (HeadDist), [B, D] each, so its backward sees the unhooked rows.
  TensorT head_forward(TensorT& head_in) {
    const std::int64_t b = head_in.dim(0), d = cfg_.dim;
    if (!cfg_.distilled) {
      observe(LinearSite::Head, -1, head_in);
      return nn::linear(head_in.reshape(Shape{b, d}), head_w_->value, &head_b_->value);
    }
    auto cls_rows = select_row(head_in, 0), dist_rows = select_row(head_in, 1);
    observe(LinearSite::Head, -1, cls_rows);
    observe(LinearSite::HeadDist, -1, dist_rows);
    auto a = nn::linear(cls_rows, head_w_->value, &head_b_->value);
    auto z = nn::linear(dist_rows, head_dist_w_->value, &head_dist_b_->value);
    nn::add_inplace(a, z);
    nn::scale_inplace(a, 0.5f);  // 0.5 (a + z), as timm's distilled head in eval mode
    return a;
  }

  void observe(LinearSite site, int block, TensorT& x) {
    if (hook_) hook_->on_linear_input(site, block, x);
  }
  void observe_grad(LinearSite site, int block, TensorT& dx) {
    if (hook_) hook_->on_linear_input_grad(site, block, dx);
  }

  // Row r of every image of x [B, R, D] as [B, D].
  static TensorT select_row(const TensorT& x, std::int64_t r) {
    const std::int64_t b = x.dim(0), rows = x.dim(1), d = x.dim(2);
    auto y = TensorT::empty(Shape{b, d});
    copy_rows(y, 0, d, x, r * d, rows * d, d, b);
    return y;
  }

  ViTConfig cfg_;
  std::map<std::string, Param<Device>> params_;
  Cache cache_;
  Param<Device>*cls_ = nullptr, *dist_ = nullptr, *pos_ = nullptr, *pe_w_ = nullptr, *pe_b_ = nullptr;
  Param<Device>*norm_w_ = nullptr, *norm_b_ = nullptr, *head_w_ = nullptr, *head_b_ = nullptr;
  Param<Device>*head_dist_w_ = nullptr, *head_dist_b_ = nullptr;
  TensorT pe_w_flat_;
  std::vector<Block> blocks_;
  LinearInputHook<Device>* hook_ = nullptr;
  bool check_inputs_ = true;
};

}  // namespace mint
