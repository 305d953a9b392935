// mint/models/resnet.hpp -- ResNet<Device>: a ResNet-18-style CNN (torchvision BasicBlock, layers [2, 2, 2, 2])
// for small images (Fashion-MNIST 28 x 28 x 1), with torchvision's parameter names.
//
//   stem    conv1 3x3 stride 1 pad 1 (no bias) - bn1 - relu            (no max pool: 28 -> 28)
//   layer1  2 BasicBlocks, width w,  stride 1                           28 -> 28
//   layer2  2 BasicBlocks, width 2w, stride 2 (1x1 conv + BN shortcut)  28 -> 14
//   layer3  2 BasicBlocks, width 4w, stride 2                           14 -> 7
//   layer4  2 BasicBlocks, width 8w, stride 2                            7 -> 4
//   global average pool, fc (8w -> classes)
// BasicBlock: out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), shortcut = downsample.1(downsample.0(x))
// (1x1 conv stride s, BN) when the shape changes, x otherwise. torchvision's resnet18 has w = 64, a 7x7 stride-2
// stem and a max pool; here the stem keeps the 28 x 28 resolution, and w defaults to 16 (FLOPs in
// docs/architecture.md).
//
// forward(x) runs in training mode (batch statistics; running statistics updated, as torch) or eval mode
// (running statistics), see train(bool). forward_to(x, stage) stops at a split point (Stem, Layer1..Layer4,
// Logits) and returns its features; backward_from(stage, d_features, mode) backpropagates from there. Every
// BatchNorm layer's input is kept, so bn_input_stats(l) gives its batch mean and biased variance from the
// latest forward (DeepInversion's BN-statistics prior, mint/inversion/bn_prior.hpp), and backward can add
// gradients with respect to those statistics (BNStatGrads).
//
// ResNet<Cuda> is the same template on device tensors: include mint/models/resnet_cuda.cuh (nvcc) for the CUDA
// ops (conv, batch norm, pooling, ReLU, linear), before anything that includes this header.
#pragma once
#define MINT_MODELS_RESNET_HPP_INCLUDED 1

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "mint/autodiff/backward.hpp"
#include "mint/core/tensor.hpp"
#include "mint/io/safetensors.hpp"
#include "mint/nn/activation.hpp"
#include "mint/nn/batchnorm.hpp"
#include "mint/nn/conv.hpp"
#include "mint/nn/elementwise.hpp"
#include "mint/nn/linear.hpp"
#include "mint/nn/pool.hpp"

namespace mint {

struct ResNetConfig {
  int in_chans = 1;
  int img_size = 28;
  int width = 16;   // channels of layer1 (torchvision resnet18: 64); layer k has width * 2^(k-1)
  int classes = 10;
  std::array<int, 4> blocks = {2, 2, 2, 2};  // BasicBlocks per layer (ResNet-18)
  float eps = 1e-5f;       // BatchNorm eps (torch default)
  float momentum = 0.1f;   // BatchNorm momentum (torch default)

  void validate() const {
    check(in_chans >= 1 && img_size >= 1 && width >= 1 && classes >= 1, "ResNetConfig: in_chans (", in_chans,
          "), img_size (", img_size, "), width (", width, ") and classes (", classes, ") must be >= 1");
    for (int b : blocks) check(b >= 1, "ResNetConfig: every layer needs >= 1 block");
    check(width <= std::numeric_limits<int>::max() / 8, "ResNetConfig: width ", width, " is too large (layer4 has ",
          "8 x width channels, which must fit in an int)");
    check(std::isfinite(eps) && eps > 0.0f && std::isfinite(momentum) && momentum >= 0.0f && momentum <= 1.0f,
          "ResNetConfig: BatchNorm eps (", eps, ") must be finite and > 0 and momentum (", momentum, ") in [0, 1]");
    // Every conv has at most 8w x max(8w, in_chans) x 3 x 3 weights: their total must fit in int64.
    const std::int64_t widest = std::max<std::int64_t>(8 * std::int64_t{width}, in_chans);
    std::int64_t per = 0, total = 0, convs = 2;
    for (int b : blocks) convs += 3 * std::int64_t{b};
    check(detail::checked_mul(widest * 9, widest, per) && detail::checked_mul(per, convs, total) &&
              total <= std::numeric_limits<std::int64_t>::max() - std::int64_t{classes} * widest,
          "ResNetConfig: width ", width, ", in_chans ", in_chans, ", blocks: the parameter count overflows int64");
  }
  // Spatial size after layer k (k = 0: stem).
  [[nodiscard]] int spatial(int k) const {
    int s = img_size;
    for (int i = 2; i <= k; ++i) s = (s + 2 - 3) / 2 + 1;
    return s;
  }
  [[nodiscard]] int channels(int k) const { return k == 0 ? width : width << (k - 1); }
};

// Split points, in order: the output of the stem (after its ReLU), of each layer, and the logits.
enum class Stage { Stem = 0, Layer1 = 1, Layer2 = 2, Layer3 = 3, Layer4 = 4, Logits = 5 };

// Gradients with respect to the batch statistics of BN inputs: per BN layer (bn_layers() order), d mean and d var
// ([C] each, or undefined = zero). Backward adds their effect: dz += dmean / M + 2 dvar (z - mean) / M.
template <class Device = Cpu>
struct BNStatGradsT {
  std::vector<Tensor<Device>> dmean, dvar;
};
using BNStatGrads = BNStatGradsT<Cpu>;

template <class Device = Cpu>
class ResNet {
 public:
  using device_type = Device;
  using TensorT = Tensor<Device>;
  using TensorMap = std::map<std::string, TensorT>;
  using StatGrads = BNStatGradsT<Device>;

  // One BatchNorm layer as the BN prior sees it.
  struct BNLayer {
    std::string name;                 // torchvision prefix, e.g. "layer2.0.downsample.1"
    const TensorT* running_mean;      // [C]
    const TensorT* running_var;       // [C]
  };

  explicit ResNet(const ResNetConfig& cfg) : cfg_(cfg) {
    cfg_.validate();
    build();
  }
  ResNet(ResNet&& o) noexcept
      : cfg_(o.cfg_), params_(std::move(o.params_)), buffers_(std::move(o.buffers_)), cache_(std::move(o.cache_)),
        training_(o.training_), check_inputs_(o.check_inputs_) {
    build_units();
  }
  ResNet& operator=(ResNet&& o) noexcept {
    cfg_ = o.cfg_;
    params_ = std::move(o.params_);
    buffers_ = std::move(o.buffers_);
    cache_ = std::move(o.cache_);
    training_ = o.training_;
    check_inputs_ = o.check_inputs_;
    build_units();
    return *this;
  }
  ResNet(const ResNet&) = delete;
  ResNet& operator=(const ResNet&) = delete;

  // Builds a model from torchvision-named tensors (the config is inferred: width from conv1.weight, in_chans,
  // classes from fc.weight, blocks per layer from the layerK.I keys; img_size as given). Missing, unexpected or
  // mis-shaped keys throw naming the key; num_batches_tracked is accepted and optional.
  static ResNet from_tensors(const TensorMap& t, int img_size = 28, const std::string& source = "tensors") {
    auto need = [&](const std::string& k) -> const TensorT& {
      auto it = t.find(k);
      check(it != t.end(), "ResNet (", source, "): missing key '", k, "'");
      return it->second;
    };
    // A size read from a tensor's shape: >= 1, and small enough that width * 8 (layer4) stays an int.
    auto size_of = [&](const std::string& key, const TensorT& tensor, int axis, const char* what, std::int64_t hi) {
      const std::int64_t v = tensor.dim(axis);
      check(v >= 1 && v <= hi, "ResNet (", source, "): key '", key, "' has shape ", tensor.shape().str(),
            ", which gives ", what, " = ", v, "; it must be in [1, ", hi, "]");
      return static_cast<int>(v);
    };
    constexpr std::int64_t kIntMax = std::numeric_limits<int>::max();
    ResNetConfig c;
    c.img_size = img_size;
    const auto& w = need("conv1.weight");
    check(w.rank() == 4 && w.dim(2) == 3 && w.dim(3) == 3, "ResNet (", source, "): key 'conv1.weight' has shape ",
          w.shape().str(), " but a [width, in_chans, 3, 3] stem is expected");
    c.width = size_of("conv1.weight", w, 0, "width", kIntMax / 8);
    c.in_chans = size_of("conv1.weight", w, 1, "in_chans", kIntMax);
    const auto& fc = need("fc.weight");
    check(fc.rank() == 2, "ResNet (", source, "): key 'fc.weight' has shape ", fc.shape().str(), ", expected 2-D");
    c.classes = size_of("fc.weight", fc, 0, "classes", kIntMax);
    for (int l = 0; l < 4; ++l) {
      int n = 0;
      while (t.count("layer" + std::to_string(l + 1) + "." + std::to_string(n) + ".conv1.weight")) ++n;
      check(n > 0, "ResNet (", source, "): missing key 'layer", l + 1, ".0.conv1.weight'");
      c.blocks[static_cast<std::size_t>(l)] = n;
    }
    c.validate();
    // Every key is checked against the layout before the model allocates anything: its tensors then have
    // exactly the shapes of the file's tensors, so a file cannot make it allocate more than it holds.
    const std::vector<Slot> slots = layout(c);
    std::set<std::string> names;
    for (const auto& slot : slots) names.insert(slot.name);
    std::vector<std::string> unexpected;
    for (const auto& [name, v] : t)
      if (!names.count(name)) unexpected.push_back(name);
    if (!unexpected.empty()) {
      std::string list;
      for (std::size_t i = 0; i < unexpected.size() && i < 8; ++i) list += (i ? ", '" : "'") + unexpected[i] + "'";
      throw Error(detail::concat("ResNet (", source, "): ", unexpected.size(), " unexpected key(s) ", list,
                                 unexpected.size() > 8 ? ", ..." : "", " -- not a parameter of ", describe(c)));
    }
    for (const auto& slot : slots) {
      const bool optional = ends_with(slot.name, "num_batches_tracked");
      auto it = t.find(slot.name);
      if (it == t.end()) {
        check(optional, "ResNet (", source, "): missing key '", slot.name, "' (expected shape ", slot.shape.str(), ")");
        continue;
      }
      check(it->second.shape() == slot.shape || (optional && it->second.numel() == 1 && slot.shape.numel() == 1),
            "ResNet (", source, "): key '", slot.name, "' has shape ", it->second.shape().str(), " but the model (",
            describe(c), ") expects ", slot.shape.str());
      check_finite(it->second, ("ResNet (" + source + "): tensor '" + slot.name + "'").c_str());
    }
    ResNet m(c);
    auto take = [&](const std::string& name, TensorT& dst) {
      if (auto it = t.find(name); it != t.end()) dst = it->second.clone().reshape(dst.shape());
    };
    for (auto& [name, p] : m.params_) take(name, p.value);
    for (auto& [name, b] : m.buffers_) take(name, b);
    m.build_units();
    return m;
  }

  // ResNet<Cuda> reads and checks the file on the host and copies every tensor to the device once.
  static ResNet load(const std::string& path, int img_size = 28) {
    if constexpr (std::is_same_v<Device, Cpu>) {
      auto file = io::load_safetensors(path);
      const auto s = io::metadata_int(file.metadata, "mint.img_size", 1, std::numeric_limits<int>::max(),
                                      "ResNet (" + path + ")");
      return from_tensors(file.tensors, s ? static_cast<int>(*s) : img_size, path);
    } else {
      return ResNet<Cpu>::load(path, img_size).template to<Device>();
    }
  }

  // A copy of this model on another backend: parameters, BN buffers and the train/eval mode (gradients and the
  // saved pass are not copied).
  template <class To>
  [[nodiscard]] ResNet<To> to() const {
    ResNet<To> out(cfg_);
    for (auto& [n, p] : out.parameters()) p.value = to_backend<To>(to_cpu(params_.at(n).value));
    for (auto& [n, b] : out.buffers()) b = to_backend<To>(to_cpu(buffers_.at(n)));
    out.train(training_);
    out.set_check_inputs(check_inputs_);
    return out;
  }

  [[nodiscard]] TensorMap state_dict() const {
    TensorMap m;
    for (const auto& [n, p] : params_) m[n] = p.value;
    for (const auto& [n, b] : buffers_) m[n] = b;
    return m;
  }
  // torchvision names (num_batches_tracked stored as F32) plus "mint.arch" / "mint.img_size" metadata.
  void save(const std::string& path, std::map<std::string, std::string> metadata = {}) const {
    metadata["mint.arch"] = "resnet18-basicblock-small";
    metadata["mint.img_size"] = std::to_string(cfg_.img_size);
    if constexpr (std::is_same_v<Device, Cpu>) {
      io::save_safetensors(path, state_dict(), metadata);
    } else {
      std::map<std::string, Tensor<Cpu>> host;
      for (const auto& [n, t] : state_dict()) host[n] = to_cpu(t);
      io::save_safetensors(path, host, metadata);
    }
  }

  [[nodiscard]] const ResNetConfig& config() const { return cfg_; }
  std::map<std::string, Param<Device>>& parameters() { return params_; }
  const std::map<std::string, Param<Device>>& parameters() const { return params_; }
  std::map<std::string, TensorT>& buffers() { return buffers_; }
  Param<Device>& parameter(const std::string& name) {
    auto it = params_.find(name);
    check(it != params_.end(), "ResNet: no parameter '", name, "'");
    return it->second;
  }
  void zero_grad() {
    for (auto& [n, p] : params_) p.zero_grad();
  }

  // Training mode: BN normalises with batch statistics and updates running statistics (torch's model.train()).
  void train(bool on = true) { training_ = on; }
  void eval() { training_ = false; }
  [[nodiscard]] bool training() const { return training_; }
  // The forward checks its images for NaN/Inf (on by default). On CUDA that check reads a flag back to the host,
  // i.e. synchronises the stream: turn it off where the caller checks its loss instead (as ViT).
  void set_check_inputs(bool on) { check_inputs_ = on; }

  // requires: images [B, in_chans, img_size, img_size], finite; B * H * W > 1 per BN in training mode.
  // ensures:  logits [B, classes]; the pass is saved for backward().
  TensorT forward(const TensorT& images) { return forward_to(images, Stage::Logits); }

  // Runs up to and including `stop` and returns its output: [B, C_k, S_k, S_k] for Stem/LayerK, logits for
  // Logits. The pass is saved for backward_from(stop or an earlier stage, ...).
  TensorT forward_to(const TensorT& images, Stage stop) {
    check(images.rank() == 4 && images.dim(1) == cfg_.in_chans && images.dim(2) == cfg_.img_size &&
              images.dim(3) == cfg_.img_size,
          "ResNet::forward: images have shape ", images.shape().str(), " but the model expects [B, ", cfg_.in_chans,
          ", ", cfg_.img_size, ", ", cfg_.img_size, "]");
    if (check_inputs_) check_finite(images, "ResNet::forward: images");
    Cache& c = cache_;
    c = Cache{};
    c.batch = images.dim(0);
    c.image_shape = images.shape();
    c.units.resize(units_.size());
    c.stats.resize(units_.size());
    c.has_stats.assign(units_.size(), false);
    c.training = training_;
    TensorT x = unit_forward(0, images);
    c.stem_pre = x;
    x = nn::relu(x);
    c.reached = Stage::Stem;
    c.stage_out[0] = x;
    for (int l = 1; l <= 4 && static_cast<int>(stop) >= l; ++l) {
      for (auto& b : layers_[static_cast<std::size_t>(l - 1)]) x = block_forward(b, x);
      c.reached = static_cast<Stage>(l);
      c.stage_out[l] = x;
    }
    if (stop != Stage::Logits) return x;
    c.pooled = nn::global_avg_pool2d(x).reshape(Shape{c.batch, x.dim(1)});
    c.reached = Stage::Logits;
    return nn::linear(c.pooled, fc_w_->value, &fc_b_->value);
  }

  // requires: forward() (or forward_to(Logits)) was the latest pass; dlogits [B, classes].
  // ensures:  returns d loss / d images; in Full mode adds every parameter's gradient into Param::grad.
  //           `extra` (optional) adds gradients with respect to BN-input statistics on the way.
  TensorT backward(const TensorT& dlogits, Backward mode, const StatGrads* extra = nullptr) {
    return backward_from(Stage::Logits, dlogits, mode, extra);
  }

  // requires: the latest forward reached `from`; d [shape of forward_to(x, from)].
  // ensures:  returns d <features(from), d> / d images (+ the BN-statistics terms of `extra` for the BN layers
  //           at or below `from`); Full mode also accumulates parameter gradients of those layers.
  TensorT backward_from(Stage from, const TensorT& d, Backward mode, const StatGrads* extra = nullptr) {
    Cache& c = cache_;
    check(c.batch > 0, "ResNet::backward: call forward() first");
    check(static_cast<int>(c.reached) >= static_cast<int>(from), "ResNet::backward_from: the latest forward stopped at ",
          stage_name(c.reached), ", before ", stage_name(from));
    if (extra)
      check(extra->dmean.size() == units_.size() && extra->dvar.size() == units_.size(),
            "ResNet::backward: BNStatGrads must have one (possibly undefined) entry per BN layer (", units_.size(), ")");
    TensorT dx;
    int top = static_cast<int>(from);
    if (from == Stage::Logits) {
      check_shape(d, Shape{c.batch, cfg_.classes}, "ResNet::backward: d_logits");
      auto dpooled = TensorT::zeros(c.pooled.shape());
      nn::linear_backward(d, c.pooled, fc_w_->value, &dpooled, fc_w_->grad_for(mode), fc_b_->grad_for(mode));
      dx = TensorT::zeros(c.stage_out[4].shape());
      nn::global_avg_pool2d_backward(dpooled.reshape(Shape{c.batch, dpooled.dim(1), 1, 1}), dx);
      top = 4;
    } else {
      check_shape(d, c.stage_out[top].shape(), "ResNet::backward_from: d_features");
      dx = d.clone();
    }
    for (int l = top; l >= 1; --l) {
      auto& blocks = layers_[static_cast<std::size_t>(l - 1)];
      for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) dx = block_backward(*it, dx, mode, extra);
    }
    auto dpre = TensorT::zeros(c.stem_pre.shape());
    nn::relu_backward(dx, c.stem_pre, dpre);
    return unit_backward(0, dpre, mode, extra, true);
  }

  // The network's input gradient only from BN-statistics gradients (no logits or feature gradient): runs the
  // backward chain from the deepest BN layer with a defined gradient. Used by BNPrior.
  TensorT backward_bn_stats(const StatGrads& g, Backward mode = Backward::InputOnly) {
    Cache& c = cache_;
    check(c.batch > 0, "ResNet::backward_bn_stats: call forward() first");
    return backward_from(c.reached, TensorT::zeros(c.reached == Stage::Logits ? Shape{c.batch, cfg_.classes}
                                                                                : c.stage_out[static_cast<int>(c.reached)].shape()),
                         mode, &g);
  }

  // BN layers in torchvision module order (bn1, layer1.0.bn1, layer1.0.bn2, [layer1.0.downsample.1], ...).
  [[nodiscard]] std::vector<BNLayer> bn_layers() const {
    std::vector<BNLayer> v;
    for (const auto& u : units_) v.push_back({u.bn, u.rm, u.rv});
    return v;
  }
  [[nodiscard]] std::size_t num_bn_layers() const { return units_.size(); }
  // Whether BN layer l ran in the latest forward (forward_to may stop before it).
  [[nodiscard]] bool bn_ran(std::size_t l) const { return l < cache_.units.size() && cache_.units[l].z.defined(); }
  // Mean and biased variance over (N, H, W) of BN layer l's input in the latest forward (computed on first use).
  const nn::ChannelStatsT<Device>& bn_input_stats(std::size_t l) {
    check(bn_ran(l), "ResNet::bn_input_stats: BN layer ", l, " did not run in the latest forward");
    if (!cache_.has_stats[l]) {
      cache_.stats[l] = nn::channel_stats(cache_.units[l].z);
      cache_.has_stats[l] = true;
    }
    return cache_.stats[l];
  }
  // The input of BN layer l in the latest forward, [B, C, S, S].
  [[nodiscard]] const TensorT& bn_input(std::size_t l) const {
    check(bn_ran(l), "ResNet::bn_input: BN layer ", l, " did not run in the latest forward");
    return cache_.units[l].z;
  }

  void release_cache() { cache_ = Cache{}; }

  static const char* stage_name(Stage s) {
    static const char* n[] = {"stem", "layer1", "layer2", "layer3", "layer4", "logits"};
    return n[static_cast<int>(s)];
  }

  // Multiply-accumulates of one forward pass per image (convolutions and fc; BN, ReLU, pooling excluded).
  [[nodiscard]] std::int64_t forward_macs() const {
    std::int64_t macs = 0;
    for (const auto& u : units_) {
      const auto& w = u.w->value;
      macs += w.numel() * u.out_hw * u.out_hw;
    }
    return macs + fc_w_->value.numel();
  }

  [[nodiscard]] std::string describe() const { return describe(cfg_); }
  [[nodiscard]] static std::string describe(const ResNetConfig& c) {
    return detail::concat("ResNet width ", c.width, ", blocks [", c.blocks[0], ",", c.blocks[1], ",", c.blocks[2], ",",
                          c.blocks[3], "], in_chans ", c.in_chans, ", img ", c.img_size, ", classes ", c.classes);
  }

 private:
  // A convolution (no bias) followed by a BatchNorm: the unit every layer of the net is made of.
  struct Unit {
    std::string bn;  // BN prefix
    Param<Device>*w, *g, *b;
    TensorT *rm, *rv, *nbt;
    nn::Conv2dOptions opt;
    std::int64_t out_hw = 0;
  };
  struct UnitCache {
    TensorT x, z;  // conv input, conv output (= BN input)
    nn::BatchNormSavedT<Device> bn;
  };
  struct Block {
    std::size_t u1, u2;          // conv1/bn1, conv2/bn2
    std::optional<std::size_t> ds;  // downsample.0/.1
  };
  struct BlockCache {
    TensorT h1;  // bn1 output (pre-ReLU)
    TensorT s;   // bn2 output + shortcut (pre-ReLU)
  };
  struct Cache {
    std::int64_t batch = 0;
    Shape image_shape;
    bool training = false;
    Stage reached = Stage::Stem;
    std::vector<UnitCache> units;
    std::vector<nn::ChannelStatsT<Device>> stats;
    std::vector<bool> has_stats;
    std::map<const Block*, BlockCache> blocks;
    TensorT stem_pre, pooled;
    std::array<TensorT, 5> stage_out;
  };

  static bool ends_with(const std::string& s, const std::string& suf) {
    return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
  }

  // One tensor of the model: a parameter or a buffer, its shape and the value it starts with.
  struct Slot {
    std::string name;
    Shape shape;
    bool buffer;
    float init;
  };

  // Every parameter and buffer of a model of this config, in construction order (zero weights, BN weight 1,
  // running_var 1). requires: c.validate().
  static std::vector<Slot> layout(const ResNetConfig& c) {
    std::vector<Slot> s;
    auto conv = [&](const std::string& name, std::int64_t co, std::int64_t ci, std::int64_t k) {
      s.push_back({name, Shape{co, ci, k, k}, false, 0.0f});
    };
    auto bn = [&](const std::string& p, std::int64_t ch) {
      s.push_back({p + ".weight", Shape{ch}, false, 1.0f});
      s.push_back({p + ".bias", Shape{ch}, false, 0.0f});
      s.push_back({p + ".running_mean", Shape{ch}, true, 0.0f});
      s.push_back({p + ".running_var", Shape{ch}, true, 1.0f});
      s.push_back({p + ".num_batches_tracked", Shape{}, true, 0.0f});
    };
    conv("conv1.weight", c.width, c.in_chans, 3);
    bn("bn1", c.width);
    std::int64_t cin = c.width;
    for (int l = 1; l <= 4; ++l) {
      const std::int64_t co = c.channels(l);
      for (int i = 0; i < c.blocks[static_cast<std::size_t>(l - 1)]; ++i) {
        const std::string p = "layer" + std::to_string(l) + "." + std::to_string(i) + ".";
        const std::int64_t ci = i == 0 ? cin : co;
        conv(p + "conv1.weight", co, ci, 3);
        bn(p + "bn1", co);
        conv(p + "conv2.weight", co, co, 3);
        bn(p + "bn2", co);
        if (i == 0 && (l > 1 || ci != co)) {
          conv(p + "downsample.0.weight", co, ci, 1);
          bn(p + "downsample.1", co);
        }
      }
      cin = co;
    }
    s.push_back({"fc.weight", Shape{c.classes, c.channels(4)}, false, 0.0f});
    s.push_back({"fc.bias", Shape{c.classes}, false, 0.0f});
    return s;
  }

  // Creates the named parameters and buffers of layout(cfg_), then the units.
  void build() {
    for (const auto& slot : layout(cfg_)) {
      TensorT& t = slot.buffer ? buffers_[slot.name] : params_[slot.name].value;
      t = TensorT::zeros(slot.shape);
      if (slot.init != 0.0f) t.fill(slot.init);
    }
    build_units();
  }

  // Resolves names into units and blocks (after construction, loading or a move).
  void build_units() {
    units_.clear();
    layers_ = {};
    auto unit = [&](const std::string& conv, const std::string& bn, std::int64_t stride, std::int64_t pad,
                    std::int64_t out_hw) {
      units_.push_back({bn, &params_.at(conv), &params_.at(bn + ".weight"), &params_.at(bn + ".bias"),
                        &buffers_.at(bn + ".running_mean"), &buffers_.at(bn + ".running_var"),
                        &buffers_.at(bn + ".num_batches_tracked"), nn::Conv2dOptions::square(stride, pad), out_hw});
      return units_.size() - 1;
    };
    unit("conv1.weight", "bn1", 1, 1, cfg_.spatial(0));
    for (int l = 1; l <= 4; ++l) {
      const std::int64_t stride = l == 1 ? 1 : 2;
      for (int i = 0; i < cfg_.blocks[static_cast<std::size_t>(l - 1)]; ++i) {
        const std::string p = "layer" + std::to_string(l) + "." + std::to_string(i) + ".";
        const std::int64_t s = i == 0 ? stride : 1;
        Block b{};
        b.u1 = unit(p + "conv1.weight", p + "bn1", s, 1, cfg_.spatial(l));
        b.u2 = unit(p + "conv2.weight", p + "bn2", 1, 1, cfg_.spatial(l));
        if (params_.count(p + "downsample.0.weight")) b.ds = unit(p + "downsample.0.weight", p + "downsample.1", s, 0, cfg_.spatial(l));
        layers_[static_cast<std::size_t>(l - 1)].push_back(b);
      }
    }
    fc_w_ = &params_.at("fc.weight");
    fc_b_ = &params_.at("fc.bias");
    cache_ = Cache{};  // block pointers in the cache would dangle
  }

  TensorT unit_forward(std::size_t i, const TensorT& x) {
    const Unit& u = units_[i];
    UnitCache& s = cache_.units[i];
    s.x = x;
    s.z = nn::conv2d(x, u.w->value, nullptr, u.opt);
    const nn::BatchNormOptions bo{training_, cfg_.momentum, cfg_.eps};
    if (training_) nn::add_scalar_inplace(*u.nbt, 1.0f);  // on the device for ResNet<Cuda>: no host sync
    return nn::batch_norm2d(s.z, &u.g->value, &u.b->value, u.rm, u.rv, bo, &s.bn);
  }

  // dy: gradient at the BN output; returns (or, with into_dx, computes) the gradient at the conv input.
  TensorT unit_backward(std::size_t i, const TensorT& dy, Backward mode, const StatGrads* extra, bool want_dx) {
    const Unit& u = units_[i];
    UnitCache& s = cache_.units[i];
    auto dz = TensorT::zeros(s.z.shape());
    nn::batch_norm2d_backward(dy, s.z, &u.g->value, s.bn, &dz, u.g->grad_for(mode), u.b->grad_for(mode));
    if (extra) {
      const TensorT* dm = extra->dmean[i].defined() ? &extra->dmean[i] : nullptr;
      const TensorT* dv = extra->dvar[i].defined() ? &extra->dvar[i] : nullptr;
      if (dm || dv) nn::channel_stats_backward(s.z, bn_input_stats(i), dm, dv, dz);
    }
    TensorT dx = want_dx ? TensorT::zeros(s.x.shape()) : TensorT{};
    nn::conv2d_backward(dz, s.x, u.w->value, u.opt, want_dx ? &dx : nullptr, u.w->grad_for(mode), nullptr);
    return dx;
  }

  TensorT block_forward(const Block& b, const TensorT& x) {
    BlockCache& bc = cache_.blocks[&b];
    bc.h1 = unit_forward(b.u1, x);
    auto a = nn::relu(bc.h1);
    bc.s = unit_forward(b.u2, a);
    if (b.ds) nn::add_inplace(bc.s, unit_forward(*b.ds, x));
    else nn::add_inplace(bc.s, x);
    return nn::relu(bc.s);
  }

  TensorT block_backward(const Block& b, const TensorT& dout, Backward mode, const StatGrads* extra) {
    BlockCache& bc = cache_.blocks.at(&b);
    auto ds = TensorT::zeros(bc.s.shape());
    nn::relu_backward(dout, bc.s, ds);
    auto da = unit_backward(b.u2, ds, mode, extra, true);
    auto dh1 = TensorT::zeros(bc.h1.shape());
    nn::relu_backward(da, bc.h1, dh1);
    auto dx = unit_backward(b.u1, dh1, mode, extra, true);
    if (b.ds) nn::add_inplace(dx, unit_backward(*b.ds, ds, mode, extra, true));
    else nn::add_inplace(dx, ds);
    return dx;
  }

  ResNetConfig cfg_;
  std::map<std::string, Param<Device>> params_;
  std::map<std::string, TensorT> buffers_;
  Cache cache_;
  bool training_ = true;
  bool check_inputs_ = true;
  std::vector<Unit> units_;
  std::array<std::vector<Block>, 4> layers_;
  Param<Device>*fc_w_ = nullptr, *fc_b_ = nullptr;
};

}  // namespace mint
