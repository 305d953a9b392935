// mint/tasks/dci.hpp -- DCI (divide-and-conquer inversion, seed 000 Appendix B): recover an image from a CNN's
// intermediate features with one inversion module per block of the target, trained progressively.
//
// Blocks of the target ResNet<> (mint/models/resnet.hpp), split points k = 0..4:
//   k = 0  stem    conv1 - bn1 - relu                      [1, 28, 28]   -> [w, 28, 28]
//   k = 1  layer1  2 BasicBlocks, stride 1                 [w, 28, 28]   -> [w, 28, 28]
//   k = 2  layer2  2 BasicBlocks, the first with stride 2  [w, 28, 28]   -> [2w, 14, 14]
//   k = 3  layer3                                          [2w, 14, 14]  -> [4w, 7, 7]
//   k = 4  layer4                                          [4w, 7, 7]    -> [8w, 4, 4]
//   k = 5  logits  global average pool + fc                 [8w, 4, 4]    -> [classes]
// Inversion module k maps block k's output shape back to its input shape (seed Fig. 10: the block's mirror
// with reversed input and output dimensions). For a layer of BasicBlocks B_0 (C_in -> C, stride s), B_1 (C -> C)
// it is InvB_1 then InvB_0, each an "inverse BasicBlock":
//   InvB (C -> C', up-sampling s):  a = relu(bn1(conv1(x)))                    conv1: 3x3, C -> C, stride 1
//                                   h = bn2(convT2(a))                         convT2: 3x3 transposed, C -> C',
//                                                                              stride s, pad 1 (output_padding
//                                                                              chosen so the size is exactly the
//                                                                              block's input size)
//                                   y = relu(h + shortcut(x))                  shortcut: identity when C = C' and
//                                                                              s = 1, else bn(convT 1x1 stride s)
// i.e. the forward block's order reversed: its first conv (the one that changes channels and resolution) becomes
// the last, as a transposed convolution. Outputs of layer modules end in a ReLU because the features they
// reconstruct (the previous block's output) are ReLU outputs. The stem's mirror (conv - BN - ReLU reversed) is
//   x = conv_b(relu(bn(conv_a(z))))    conv_a: 3x3 w -> w (no bias), conv_b: 3x3 w -> in_chans with bias
// and has no final activation: it produces a normalised image. The logits' mirror (pool + fc reversed) is one
// linear layer classes -> 8w * 4 * 4 (with bias) and a ReLU, reshaped to layer4's output [8w, 4, 4].
//
// Loss L_k (the seed names it but its main text is not in the seed file; docs/dci.md has the choice): for
// target features z_k = F_{0..k}(x) and the image x_hat = G_0(G_1(...G_k(z_k))),
//   L_k = mean (x_hat - x)^2  +  cycle * mean (F_{0..k}(x_hat) - z_k)^2
// (the second term is the cycle-consistency term: the recovered image fed back through the frozen target gives
// the same features). Progressive training (Appendix B.1): stage k first trains module k alone (modules
// 0..k-1 frozen, gradients flow through them) with L_k, then fine-tunes modules 0..k together with the same L_k;
// for k = 0 the fine-tuning is skipped. Inversion is then one forward pass through modules k..0.
//
// Optimiser: optim::Adam (one per module and phase). BatchNorm in the modules uses batch statistics while
// training and running statistics when inverting (train(bool)).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "mint/autodiff/backward.hpp"
#include "mint/core/rng.hpp"
#include "mint/core/tensor.hpp"
#include "mint/io/safetensors.hpp"
#include "mint/models/resnet.hpp"
#include "mint/nn/activation.hpp"
#include "mint/nn/batchnorm.hpp"
#include "mint/nn/conv.hpp"
#include "mint/nn/elementwise.hpp"
#include "mint/nn/linear.hpp"
#include "mint/nn/losses.hpp"
#include "mint/optim/adam.hpp"
#include "mint/tasks/metrics.hpp"

namespace mint::tasks {

// The split points DCI inverts: stem, layer1..layer4 and the logits (Stage 0..5).
inline constexpr int kDciDepths = 6;

inline int dci_depth(Stage s) {
  const int k = static_cast<int>(s);
  check(k >= 0 && k < kDciDepths, "DCI: split point ", k,
        " is not supported; the split points are 0..5 (stem, layer1, layer2, layer3, layer4, logits)");
  return k;
}

// One inversion module: the mirror of block k of a ResNet (see the top of this file). Parameters are named
// "<unit>.weight" etc.; buffers hold the BN running statistics.
class DciModule {
 public:
  using ParamMap = std::map<std::string, Param<Cpu>>;

  // Move-only: the units hold pointers into params_ / buffers_ (map nodes survive a move, not a copy), as in
  // ResNet. A copy would read the source's weights and write the source's gradients.
  DciModule(const DciModule&) = delete;
  DciModule& operator=(const DciModule&) = delete;
  DciModule(DciModule&&) noexcept = default;
  DciModule& operator=(DciModule&&) noexcept = default;

  // requires: cfg valid, 0 <= k < kDciDepths.
  DciModule(const ResNetConfig& cfg, int k, std::uint64_t seed) : k_(k) {
    cfg.validate();
    check(k >= 0 && k < kDciDepths, "DciModule: block index ", k, " out of range [0, ", kDciDepths, ")");
    in_shape_ = k == 0 ? std::array<std::int64_t, 3>{cfg.in_chans, cfg.img_size, cfg.img_size}
                       : std::array<std::int64_t, 3>{cfg.channels(k - 1), cfg.spatial(k - 1), cfg.spatial(k - 1)};
    out_shape_ = {cfg.channels(k), cfg.spatial(k), cfg.spatial(k)};
    if (k == kLogits) out_shape_ = {cfg.classes, 0, 0};
    eps_ = cfg.eps;
    momentum_ = cfg.momentum;
    if (k == kLogits) {
      params_["fc.weight"].value = Tensor<Cpu>::zeros(Shape{in_shape_[0] * in_shape_[1] * in_shape_[2], cfg.classes});
      params_["fc.bias"].value = Tensor<Cpu>::zeros(Shape{in_shape_[0] * in_shape_[1] * in_shape_[2]});
    } else if (k == 0) {
      const std::int64_t w = cfg.width;
      unit("stem.conv_a", w, w, 3, false, 1, 0, true, false);
      unit("stem.conv_b", w, cfg.in_chans, 3, false, 1, 0, false, true);
    } else {
      const int nb = cfg.blocks[static_cast<std::size_t>(k - 1)];
      const std::int64_t c = cfg.channels(k), cin = in_shape_[0];
      const std::int64_t s = k == 1 ? 1 : 2;
      // output_padding so that the transposed conv restores exactly the forward block's input size
      const std::int64_t op = s == 1 ? 0 : in_shape_[1] - ((out_shape_[1] - 1) * s - 2 + 3);
      check(op >= 0 && op < s, "DciModule: cannot mirror block ", k, " (output padding ", op, ")");
      for (int i = nb - 1; i >= 0; --i) {
        const std::string p = "block" + std::to_string(nb - 1 - i) + ".";
        InvBlock b{};
        const std::int64_t co = i == 0 ? cin : c, st = i == 0 ? s : 1;
        b.u1 = unit(p + "conv1", c, c, 3, false, 1, 0, true, false);
        b.u2 = unit(p + "conv2", c, co, 3, true, st, st == 1 ? 0 : op, true, false);
        if (co != c || st != 1) b.sc = unit(p + "shortcut", c, co, 1, true, st, st == 1 ? 0 : op, true, false);
        blocks_.push_back(b);
      }
    }
    init(seed);
  }

  static constexpr int kLogits = 5;

  [[nodiscard]] int index() const { return k_; }
  [[nodiscard]] Shape input_shape(std::int64_t batch) const {
    if (k_ == kLogits) return Shape{batch, out_shape_[0]};
    return Shape{batch, out_shape_[0], out_shape_[1], out_shape_[2]};
  }
  [[nodiscard]] Shape output_shape(std::int64_t batch) const { return Shape{batch, in_shape_[0], in_shape_[1], in_shape_[2]}; }
  ParamMap& parameters() { return params_; }
  std::map<std::string, Tensor<Cpu>>& buffers() { return buffers_; }
  void train(bool on = true) { training_ = on; }
  [[nodiscard]] bool training() const { return training_; }
  void zero_grad() {
    for (auto& [n, p] : params_) p.zero_grad();
  }

  // requires: z [B, C_k, S_k, S_k] (block k's output shape), finite.
  // ensures:  returns [B, C_{k-1}, S_{k-1}, S_{k-1}] (block k's input shape; the image for k = 0); the pass is
  //           saved for backward().
  Tensor<Cpu> forward(const Tensor<Cpu>& z) {
    check(z.rank() >= 1 && z.shape() == input_shape(z.dim(0)), "DciModule ", k_, ": input has shape ", z.shape().str(),
          " but block ", k_, " (", block_name(), ") outputs [B", input_shape(1).str().substr(2));
    check_finite(z, "DciModule: input features");
    cache_ = Cache{};
    if (k_ == kLogits) {
      cache_.units.resize(1);
      cache_.units[0].x = z;
      cache_.a = nn::linear(z, params_.at("fc.weight").value, &params_.at("fc.bias").value);
      return nn::relu(cache_.a).reshape(output_shape(z.dim(0)));
    }
    cache_.units.resize(units_.size());
    cache_.blocks.resize(blocks_.size());
    if (k_ == 0) {
      cache_.a = unit_forward(0, z);
      auto r = nn::relu(cache_.a);
      return unit_forward(1, r);
    }
    Tensor<Cpu> x = z;
    for (std::size_t i = 0; i < blocks_.size(); ++i) {
      const InvBlock& b = blocks_[i];
      auto& bc = cache_.blocks[i];
      bc.h1 = unit_forward(b.u1, x);
      auto a = nn::relu(bc.h1);
      bc.s = unit_forward(b.u2, a);
      if (b.sc) nn::add_inplace(bc.s, unit_forward(*b.sc, x));
      else nn::add_inplace(bc.s, x);
      x = nn::relu(bc.s);
    }
    return x;
  }

  // requires: forward() was the latest pass; dy of its output's shape.
  // ensures:  returns d <forward(z), dy> / d z when want_dx (else an undefined tensor: the top module of a chain
  //           needs no input gradient); Full mode adds the parameter gradients into Param::grad.
  Tensor<Cpu> backward(const Tensor<Cpu>& dy, Backward mode, bool want_dx = true) {
    check(!cache_.units.empty(), "DciModule::backward: call forward() first");
    if (k_ == kLogits) {
      const auto& z = cache_.units[0].x;
      check_shape(dy, output_shape(z.dim(0)), "DciModule::backward: d_output");
      auto da = Tensor<Cpu>::zeros(cache_.a.shape());
      nn::relu_backward(dy.reshape(cache_.a.shape()), cache_.a, da);
      auto& w = params_.at("fc.weight");
      auto& b = params_.at("fc.bias");
      Tensor<Cpu> dz = want_dx ? Tensor<Cpu>::zeros(z.shape()) : Tensor<Cpu>{};
      nn::linear_backward(da, z, w.value, want_dx ? &dz : nullptr, w.grad_for(mode), b.grad_for(mode));
      return dz;
    }
    if (k_ == 0) {
      check_shape(dy, output_shape(cache_.units[0].x.dim(0)), "DciModule::backward: d_output");
      auto dr = unit_backward(1, dy, mode, true);
      auto da = Tensor<Cpu>::zeros(cache_.a.shape());
      nn::relu_backward(dr, cache_.a, da);
      return unit_backward(0, da, mode, want_dx);
    }
    Tensor<Cpu> dx = dy;
    for (std::size_t i = blocks_.size(); i-- > 0;) {
      const InvBlock& b = blocks_[i];
      auto& bc = cache_.blocks[i];
      const bool need = want_dx || i > 0;
      auto ds = Tensor<Cpu>::zeros(bc.s.shape());
      nn::relu_backward(dx, bc.s, ds);
      auto da = unit_backward(b.u2, ds, mode, true);
      auto dh1 = Tensor<Cpu>::zeros(bc.h1.shape());
      nn::relu_backward(da, bc.h1, dh1);
      auto dxi = unit_backward(b.u1, dh1, mode, need);
      if (b.sc) {
        auto dsc = unit_backward(*b.sc, ds, mode, need);
        if (need) nn::add_inplace(dxi, dsc);
      } else if (need) {
        nn::add_inplace(dxi, ds);
      }
      dx = dxi;
    }
    return dx;
  }

  // Multiply-accumulates of one forward pass per sample (convolutions only).
  [[nodiscard]] std::int64_t forward_macs() const {
    std::int64_t m = 0;
    for (const auto& u : units_) m += u.w->value.numel() * u.out_hw;
    if (k_ == kLogits) m += params_.at("fc.weight").value.numel();
    return m;
  }

  [[nodiscard]] std::string block_name() const { return ResNet<>::stage_name(static_cast<Stage>(k_)); }

 private:
  struct Unit {
    std::string name;
    bool transposed;
    nn::Conv2dOptions opt;
    Param<Cpu>*w, *bias, *g, *b;  // bias: only without BN; g, b: BN affine (nullptr without BN)
    Tensor<Cpu>*rm, *rv;
    std::int64_t out_hw = 0;
  };
  struct UnitCache {
    Tensor<Cpu> x, z;
    nn::BatchNormSaved bn;
  };
  struct InvBlock {
    std::size_t u1 = 0, u2 = 0;
    std::optional<std::size_t> sc;
  };
  struct BlockCache {
    Tensor<Cpu> h1, s;
  };
  struct Cache {
    std::vector<UnitCache> units;
    std::vector<BlockCache> blocks;
    Tensor<Cpu> a;  // stem: BN output before the ReLU
  };

  // Adds a conv (or transposed conv) unit; with_bn: BN after it (no conv bias), else a conv bias.
  std::size_t unit(const std::string& name, std::int64_t cin, std::int64_t cout, std::int64_t kk, bool transposed,
                   std::int64_t stride, std::int64_t out_pad, bool with_bn, bool bias) {
    auto& w = params_[name + ".weight"];
    w.value = transposed ? Tensor<Cpu>::zeros(Shape{cin, cout, kk, kk}) : Tensor<Cpu>::zeros(Shape{cout, cin, kk, kk});
    Unit u{name, transposed, nn::Conv2dOptions::square(stride, kk == 3 ? 1 : 0), &w, nullptr, nullptr, nullptr,
           nullptr, nullptr, 0};
    u.opt.out_pad_h = u.opt.out_pad_w = out_pad;
    if (bias) {
      auto& b = params_[name + ".bias"];
      b.value = Tensor<Cpu>::zeros(Shape{cout});
    }
    if (with_bn) {
      params_[name + ".bn.weight"].value = Tensor<Cpu>::zeros(Shape{cout});
      params_[name + ".bn.bias"].value = Tensor<Cpu>::zeros(Shape{cout});
      buffers_[name + ".bn.running_mean"] = Tensor<Cpu>::zeros(Shape{cout});
      buffers_[name + ".bn.running_var"] = Tensor<Cpu>::zeros(Shape{cout});
    }
    units_.push_back(u);
    resolve();
    return units_.size() - 1;
  }
  // Map nodes are stable, but resolve all pointers after every insertion anyway (cheap, and obviously right).
  void resolve() {
    for (auto& u : units_) {
      u.w = &params_.at(u.name + ".weight");
      u.bias = params_.count(u.name + ".bias") ? &params_.at(u.name + ".bias") : nullptr;
      const bool bn = params_.count(u.name + ".bn.weight") > 0;
      u.g = bn ? &params_.at(u.name + ".bn.weight") : nullptr;
      u.b = bn ? &params_.at(u.name + ".bn.bias") : nullptr;
      u.rm = bn ? &buffers_.at(u.name + ".bn.running_mean") : nullptr;
      u.rv = bn ? &buffers_.at(u.name + ".bn.running_var") : nullptr;
    }
  }
  // torchvision-style: Kaiming-normal (fan_out, relu) conv weights from Philox, BN 1/0, biases 0, statistics 0/1.
  void init(std::uint64_t seed) {
    std::uint32_t stream = static_cast<std::uint32_t>(k_) * 1000u;
    for (auto& [name, p] : params_) {
      auto& t = p.value;
      if (t.rank() == 2 || (k_ == kLogits && name == "fc.bias")) {
        const float bound = 1.0f / std::sqrt(static_cast<float>(out_shape_[0]));  // nn.Linear: U(+-1/sqrt(in))
        fill_uniform(t, seed, stream, -bound, bound);
      } else if (t.rank() == 4) {
        // fan_out of the layer's output channels: dim 0 for conv2d [Cout, Cin, k, k], dim 1 for transposed
        const bool tr = name.find("conv2") != std::string::npos || name.find("shortcut") != std::string::npos;
        const std::int64_t fan_out = (tr && k_ > 0 ? t.dim(1) : t.dim(0)) * t.dim(2) * t.dim(3);
        // the image-producing conv (linear output, no ReLU after it): N(0, 1/fan_in), so the initial image has
        // about unit variance like the normalised data
        const bool image_conv = name == "stem.conv_b.weight";
        const float sd = image_conv ? std::sqrt(1.0f / static_cast<float>(t.dim(1) * t.dim(2) * t.dim(3)))
                                    : std::sqrt(2.0f / static_cast<float>(fan_out));
        fill_normal(t, seed, stream, 0.0f, sd);
      } else {
        const bool bn_weight = name.size() >= 10 && name.compare(name.size() - 10, 10, ".bn.weight") == 0;
        t.fill(bn_weight ? 1.0f : 0.0f);
      }
      ++stream;
    }
    for (auto& [name, b] : buffers_) b.fill(name.find("running_var") != std::string::npos ? 1.0f : 0.0f);
    // the unit's output spatial size, for forward_macs
    std::int64_t hw = out_shape_[1] * out_shape_[2];
    if (k_ == kLogits) {
    } else if (k_ == 0) {
      units_[0].out_hw = units_[1].out_hw = hw;
    } else {
      for (const auto& b : blocks_) {
        units_[b.u1].out_hw = hw;
        const auto& u2 = units_[b.u2];
        if (u2.opt.stride_h > 1) hw = in_shape_[1] * in_shape_[2];
        units_[b.u2].out_hw = hw;
        if (b.sc) units_[*b.sc].out_hw = hw;
      }
    }
  }

  Tensor<Cpu> unit_forward(std::size_t i, const Tensor<Cpu>& x) {
    const Unit& u = units_[i];
    UnitCache& s = cache_.units[i];
    s.x = x;
    const Tensor<Cpu>* bias = u.bias ? &u.bias->value : nullptr;
    s.z = u.transposed ? nn::conv_transpose2d(x, u.w->value, bias, u.opt) : nn::conv2d(x, u.w->value, bias, u.opt);
    if (!u.g) return s.z;
    const nn::BatchNormOptions bo{training_, momentum_, eps_};
    return nn::batch_norm2d(s.z, &u.g->value, &u.b->value, u.rm, u.rv, bo, &s.bn);
  }

  Tensor<Cpu> unit_backward(std::size_t i, const Tensor<Cpu>& dy, Backward mode, bool want_dx) {
    const Unit& u = units_[i];
    UnitCache& s = cache_.units[i];
    Tensor<Cpu> dz = dy;
    if (u.g) {
      dz = Tensor<Cpu>::zeros(s.z.shape());
      nn::batch_norm2d_backward(dy, s.z, &u.g->value, s.bn, &dz, u.g->grad_for(mode), u.b->grad_for(mode));
    }
    Tensor<Cpu> dx = want_dx ? Tensor<Cpu>::zeros(s.x.shape()) : Tensor<Cpu>{};
    Tensor<Cpu>* db = u.bias ? u.bias->grad_for(mode) : nullptr;
    if (u.transposed)
      nn::conv_transpose2d_backward(dz, s.x, u.w->value, u.opt, want_dx ? &dx : nullptr, u.w->grad_for(mode), db);
    else
      nn::conv2d_backward(dz, s.x, u.w->value, u.opt, want_dx ? &dx : nullptr, u.w->grad_for(mode), db);
    return dx;
  }

  int k_;
  std::array<std::int64_t, 3> in_shape_{}, out_shape_{};
  float eps_ = 1e-5f, momentum_ = 0.1f;
  ParamMap params_;
  std::map<std::string, Tensor<Cpu>> buffers_;
  std::vector<Unit> units_;
  std::vector<InvBlock> blocks_;
  Cache cache_;
  bool training_ = true;
};
static_assert(std::is_nothrow_move_constructible_v<DciModule>, "a vector<DciModule> must move, never copy");

struct DciLoss {
  double recon = 0.0;  // mean (x_hat - x)^2, normalised pixel space
  double cycle = 0.0;  // mean (F(x_hat) - z)^2 (unweighted)
  double total = 0.0;  // recon + cycle_weight * cycle
};

struct DciOptions {
  float cycle_weight = 1.0f;  // weight of the cycle-consistency term in L_k
  float lr = 1e-3f;           // Adam
  std::int64_t batch = 32;
  std::int64_t steps_alone = 200;     // Adam steps training module k alone
  std::int64_t steps_finetune = 200;  // Adam steps fine-tuning modules 0..k together (skipped for k = 0)
  std::uint64_t seed = 0;             // module init and batch order
  void validate() const {
    check(std::isfinite(cycle_weight) && cycle_weight >= 0.0f, "DciOptions: cycle_weight must be >= 0, got ", cycle_weight);
    check(std::isfinite(lr) && lr > 0.0f, "DciOptions: lr must be > 0, got ", lr);
    check(batch >= 2, "DciOptions: batch must be >= 2 (BatchNorm in training mode), got ", batch);
    check(steps_alone >= 0 && steps_finetune >= 0, "DciOptions: step counts must be >= 0");
  }
};

// DCI's training batches: step s of a pass over the M images [M, ...] is images perm_e[(s mod M/b) b ..][0..b)
// of epoch e = s div (M/b), perm_e a Fisher-Yates permutation of 0..M-1 with Philox uniforms keyed by (seed,
// stream, e). So the batches of one epoch are disjoint and cover (M/b) b distinct images (the last M mod b of the
// permutation are left out that epoch). The permutation of the latest epoch is kept: steps in order cost O(b)
// each plus O(M) once per epoch. `data` must outlive the sampler.
class DciBatchSampler {
 public:
  DciBatchSampler(const Tensor<Cpu>& data, std::int64_t b, std::uint64_t seed, std::uint64_t stream)
      : data_(&data), b_(b), seed_(seed), stream_(stream) {
    check(data.rank() >= 1 && b >= 1 && b <= data.dim(0), "DCI::sample_batch: batch ", b, " from ",
          data.rank() >= 1 ? data.dim(0) : 0, " images (need 1 <= batch <= images)");
  }

  // The permutation of epoch e (recomputed only when e changes).
  const std::vector<std::int64_t>& permutation(std::int64_t epoch) {
    check(epoch >= 0, "DCI::sample_batch: epoch ", epoch, " < 0");
    if (epoch == epoch_) return idx_;
    const std::int64_t m = data_->dim(0);
    idx_.resize(static_cast<std::size_t>(m));
    for (std::int64_t i = 0; i < m; ++i) idx_[static_cast<std::size_t>(i)] = i;
    for (std::int64_t i = m - 1; i > 0; --i) {
      const auto r = philox_uniform(seed_ + 0x9E37u * (stream_ + 1), static_cast<std::uint32_t>(epoch),
                                    static_cast<std::uint64_t>(i));
      const auto j = std::min<std::int64_t>(i, static_cast<std::int64_t>(r * static_cast<double>(i + 1)));
      std::swap(idx_[static_cast<std::size_t>(i)], idx_[static_cast<std::size_t>(j)]);
    }
    epoch_ = epoch;
    return idx_;
  }

  // The batch of step `step` (>= 0), [b, ...].
  Tensor<Cpu> batch(std::int64_t step) {
    check(step >= 0, "DCI::sample_batch: step ", step, " < 0");
    const std::int64_t m = data_->dim(0), per = data_->numel() / m, per_epoch = m / b_;
    const auto& idx = permutation(step / per_epoch);
    const std::int64_t off = (step % per_epoch) * b_;
    Shape s = data_->shape();
    s[0] = b_;
    auto out = Tensor<Cpu>::empty(s);
    for (std::int64_t i = 0; i < b_; ++i) {
      const std::int64_t src = idx[static_cast<std::size_t>(off + i)];
      std::copy(data_->data() + src * per, data_->data() + (src + 1) * per, out.data() + i * per);
    }
    return out;
  }

 private:
  const Tensor<Cpu>* data_;
  std::int64_t b_;
  std::uint64_t seed_, stream_;
  std::int64_t epoch_ = -1;
  std::vector<std::int64_t> idx_;
};

// The target CNN (frozen, eval mode) and its inversion modules 0..5 (stem, layer1-4, logits).
class DCI {
 public:
  // The target is used in eval mode and never updated; it must outlive the DCI object.
  DCI(ResNet<>& target, std::uint64_t seed = 0) : target_(&target) {
    target_->eval();
    for (int k = 0; k < kDciDepths; ++k) modules_.emplace_back(target.config(), k, seed);
  }

  DciModule& module(int k) {
    check(k >= 0 && k < kDciDepths, "DCI::module: index ", k, " out of range [0, ", kDciDepths, ")");
    return modules_[static_cast<std::size_t>(k)];
  }
  ResNet<>& target() { return *target_; }
  // The deepest depth whose stage has finished (-1: none). Set by train_stage and load.
  [[nodiscard]] int trained_depth() const { return trained_; }

  // Target features at split `depth` for normalised images [B, C, H, W].
  Tensor<Cpu> features(const Tensor<Cpu>& images, Stage depth) {
    const int k = dci_depth(depth);
    target_->eval();
    return target_->forward_to(images, static_cast<Stage>(k)).clone();
  }

  // One forward pass through modules depth..0 (eval mode: BN running statistics).
  // requires: features [B, C_k, S_k, S_k] of split `depth`.  ensures: normalised images [B, C, H, W].
  Tensor<Cpu> invert(const Tensor<Cpu>& features, Stage depth) {
    const int k = dci_depth(depth);
    for (int i = k; i >= 0; --i) modules_[static_cast<std::size_t>(i)].train(false);
    return chain_forward(features, k);
  }

  // L_k on a batch of normalised images, with gradients: modules first..k get Full-mode gradients (added into
  // their Param::grad), modules below `first` are frozen (gradient flows through them). Modules in training mode.
  DciLoss loss_and_backward(const Tensor<Cpu>& images, int k, int first, float cycle_weight) {
    check(k >= 0 && k < kDciDepths, "DCI::loss: depth ", k, " out of range [0, ", kDciDepths, ")");
    check(first >= 0 && first <= k, "DCI::loss: first trainable module ", first, " must be in [0, ", k, "]");
    const Stage st = static_cast<Stage>(k);
    auto z = features(images, st);
    for (int i = k; i >= 0; --i) modules_[static_cast<std::size_t>(i)].train(true);
    auto xh = chain_forward(z, k);
    check_shape(xh, images.shape(), "DCI::loss: recovered images");
    DciLoss L;
    auto dx = Tensor<Cpu>::zeros(xh.shape());
    L.recon = nn::squared_error(xh, images, 1.0 / static_cast<double>(xh.numel()), &dx);
    if (cycle_weight > 0.0f) {
      auto f = target_->forward_to(xh, st);
      auto df = Tensor<Cpu>::zeros(f.shape());
      L.cycle = nn::squared_error(f, z, 1.0 / static_cast<double>(f.numel()), &df, cycle_weight);
      nn::add_inplace(dx, target_->backward_from(st, df, Backward::InputOnly));
    }
    L.total = L.recon + cycle_weight * L.cycle;
    chain_backward(dx, k, first);
    return L;
  }

  // Progressive stage k (Appendix B.1) on normalised training images [M, C, H, W]: module k alone, then modules
  // 0..k together (not for k = 0), both with L_k. Stages below k must have been trained (trained_depth() >= k-1).
  // `log` (optional) gets (phase, step, loss) every log_every steps. Returns the mean L_k of the last 10% of
  // steps of each phase {alone, finetune}.
  std::array<double, 2> train_stage(const Tensor<Cpu>& data, int k, const DciOptions& opt,
                                    const std::function<void(const char*, std::int64_t, const DciLoss&)>& log = {},
                                    std::int64_t log_every = 50) {
    opt.validate();
    check(k >= 0 && k < kDciDepths, "DCI::train_stage: depth ", k, " out of range [0, ", kDciDepths, ")");
    check(k <= trained_ + 1, "DCI::train_stage: stage ", k, " needs stages 0..", k - 1, " trained first (trained up to ",
          trained_, ")");
    const auto& c = target_->config();
    check(data.rank() == 4 && data.dim(1) == c.in_chans && data.dim(2) == c.img_size && data.dim(3) == c.img_size,
          "DCI::train_stage: data has shape ", data.shape().str(), " but the target expects [M, ", c.in_chans, ", ",
          c.img_size, ", ", c.img_size, "]");
    check(data.dim(0) >= opt.batch, "DCI::train_stage: ", data.dim(0), " images, fewer than one batch (", opt.batch, ")");
    std::array<double, 2> tail{0.0, 0.0};
    for (int phase = 0; phase < 2; ++phase) {
      const std::int64_t steps = phase == 0 ? opt.steps_alone : (k == 0 ? 0 : opt.steps_finetune);
      const int first = phase == 0 ? k : 0;
      std::vector<optim::Adam<Cpu>> adams;
      for (int i = first; i <= k; ++i) adams.emplace_back(optim::AdamOptions{.lr = opt.lr});
      double acc = 0.0;
      std::int64_t counted = 0;
      const std::int64_t tail_from = steps - std::max<std::int64_t>(1, steps / 10);
      DciBatchSampler sampler(data, opt.batch, opt.seed, static_cast<std::uint64_t>(k * 2 + phase));
      for (std::int64_t s = 0; s < steps; ++s) {
        auto batch = sampler.batch(s);
        for (int i = first; i <= k; ++i) modules_[static_cast<std::size_t>(i)].zero_grad();
        const auto L = loss_and_backward(batch, k, first, opt.cycle_weight);
        check(std::isfinite(L.total), "DCI::train_stage: loss is ", L.total, " at stage ", k, " step ", s, "; lower lr");
        for (int i = first; i <= k; ++i) adams[static_cast<std::size_t>(i - first)].step(modules_[static_cast<std::size_t>(i)].parameters());
        if (s >= tail_from) {
          acc += L.total;
          ++counted;
        }
        if (log && (s % log_every == 0 || s + 1 == steps)) log(phase == 0 ? "alone" : "finetune", s, L);
      }
      tail[static_cast<std::size_t>(phase)] = counted ? acc / static_cast<double>(counted) : 0.0;
    }
    trained_ = std::max(trained_, k);
    return tail;
  }

  // Every module's parameters and BN statistics as "m<k>.<name>", with metadata (trained depth, target width).
  void save(const std::string& path, std::map<std::string, std::string> metadata = {}) {
    std::map<std::string, Tensor<Cpu>> t;
    for (auto& m : modules_) {
      const std::string p = "m" + std::to_string(m.index()) + ".";
      for (auto& [n, v] : m.parameters()) t[p + n] = v.value;
      for (auto& [n, v] : m.buffers()) t[p + n] = v;
    }
    metadata["mint.kind"] = "dci_modules";
    metadata["mint.dci.trained_depth"] = std::to_string(trained_);
    metadata["mint.dci.target"] = target_->describe();
    io::save_safetensors(path, t, metadata);
  }

  // Loads a file written by save(); it must have been trained for the same target architecture. Everything is
  // checked (kind, target, trained depth in [-1, kDciDepths), every tensor's presence and shape, finiteness, no
  // extra tensors) before any module is touched: a bad file throws mint::Error naming it and leaves this unchanged.
  void load(const std::string& path) {
    const auto f = io::load_safetensors(path);
    auto meta = [&](const char* key) {
      auto it = f.metadata.find(key);
      check(it != f.metadata.end(), "DCI::load: '", path, "' has no '", key, "' metadata (not a DCI module file?)");
      return it->second;
    };
    check(meta("mint.kind") == "dci_modules", "DCI::load: '", path, "' is not a DCI module file");
    check(meta("mint.dci.target") == target_->describe(), "DCI::load: '", path, "' was trained for ",
          meta("mint.dci.target"), " but the target is ", target_->describe());
    (void)meta("mint.dci.trained_depth");  // present (its own message), then an integer in range
    const auto trained =
        io::metadata_int(f.metadata, "mint.dci.trained_depth", -1, kDciDepths - 1, "DCI::load: '" + path + "'");
    std::vector<std::pair<const Tensor<Cpu>*, Tensor<Cpu>*>> copies;
    for (auto& m : modules_) {
      const std::string p = "m" + std::to_string(m.index()) + ".";
      auto take = [&](const std::string& n, Tensor<Cpu>& dst) {
        auto it = f.tensors.find(p + n);
        check(it != f.tensors.end(), "DCI::load: '", path, "' lacks '", p + n, "'");
        check(it->second.shape() == dst.shape(), "DCI::load: '", p + n, "' has shape ", it->second.shape().str(),
              ", expected ", dst.shape().str());
        check_finite(it->second, ("DCI::load: '" + path + "': tensor '" + p + n + "'").c_str());
        copies.emplace_back(&it->second, &dst);
      };
      for (auto& [n, v] : m.parameters()) take(n, v.value);
      for (auto& [n, v] : m.buffers()) take(n, v);
    }
    check(copies.size() == f.tensors.size(), "DCI::load: '", path, "' has ", f.tensors.size() - copies.size(),
          " unexpected tensor(s)");
    for (auto [src, dst] : copies) std::copy(src->data(), src->data() + dst->numel(), dst->data());
    trained_ = static_cast<int>(*trained);
  }

  // A batch of `b` images drawn without replacement within each pass over the data (Philox permutation keyed by
  // seed, stream and epoch): DciBatchSampler(data, b, seed, stream).batch(step). One call costs O(M) for the
  // permutation; train_stage keeps a sampler per phase, which computes it once per epoch.
  static Tensor<Cpu> sample_batch(const Tensor<Cpu>& data, std::int64_t b, std::uint64_t seed, std::uint64_t stream,
                                  std::int64_t step) {
    return DciBatchSampler(data, b, seed, stream).batch(step);
  }

 private:
  Tensor<Cpu> chain_forward(const Tensor<Cpu>& z, int k) {
    Tensor<Cpu> x = z;
    for (int i = k; i >= 0; --i) x = modules_[static_cast<std::size_t>(i)].forward(x);
    return x;
  }
  void chain_backward(const Tensor<Cpu>& d, int k, int first) {
    Tensor<Cpu> g = d;
    for (int i = 0; i <= k; ++i)
      g = modules_[static_cast<std::size_t>(i)].backward(g, i >= first ? Backward::Full : Backward::InputOnly, i < k);
  }

  ResNet<>* target_;
  std::vector<DciModule> modules_;
  int trained_ = -1;
};

// Recovery quality of a batch: per-image PSNR and SSIM in [0, 1] pixel space (recovered images clipped to the
// valid range first) and teacher agreement: argmax of the target on the (clipped) recovered image equals its
// argmax on the original.
struct RecoveryMetrics {
  std::vector<double> psnr, ssim;
  std::vector<bool> agree;
  [[nodiscard]] double mean_psnr() const { return mean(psnr); }
  [[nodiscard]] double mean_ssim() const { return mean(ssim); }
  [[nodiscard]] double agreement() const {
    if (agree.empty()) return 0.0;
    return static_cast<double>(std::count(agree.begin(), agree.end(), true)) / static_cast<double>(agree.size());
  }
  static double mean(const std::vector<double>& v) {
    double s = 0.0;
    for (double x : v) s += x;
    return v.empty() ? 0.0 : s / static_cast<double>(v.size());
  }
};

// Fraction of images where the model's argmax on `recovered` equals its argmax on `original` (both normalised,
// [B, C, H, W]); per image in `per_image` if given. The model runs in whatever mode it is in (eval for a teacher).
template <class Model>
double teacher_agreement(Model& model, const Tensor<Cpu>& original, const Tensor<Cpu>& recovered,
                         std::vector<bool>* per_image = nullptr) {
  check(original.rank() == 4 && recovered.shape() == original.shape(), "teacher_agreement: original ",
        original.shape().str(), " and recovered ", recovered.shape().str(), " must be the same [B, C, H, W] shape");
  auto argmax = [](const Tensor<Cpu>& logits) {
    std::vector<std::int64_t> a(static_cast<std::size_t>(logits.dim(0)));
    const std::int64_t c = logits.dim(1);
    for (std::int64_t i = 0; i < logits.dim(0); ++i)
      a[static_cast<std::size_t>(i)] = std::max_element(logits.data() + i * c, logits.data() + (i + 1) * c) - (logits.data() + i * c);
    return a;
  };
  const auto a = argmax(model.forward(original).clone());
  const auto b = argmax(model.forward(recovered).clone());
  std::int64_t same = 0;
  if (per_image) per_image->clear();
  for (std::size_t i = 0; i < a.size(); ++i) {
    same += a[i] == b[i];
    if (per_image) per_image->push_back(a[i] == b[i]);
  }
  return a.empty() ? 0.0 : static_cast<double>(same) / static_cast<double>(a.size());
}

// PSNR / SSIM (data range 1, [0, 1] pixels) and teacher agreement of recovered vs original normalised images.
inline RecoveryMetrics recovery_metrics(ResNet<>& model, const Tensor<Cpu>& original, const Tensor<Cpu>& recovered,
                                        float mean, float std) {
  check_shape(recovered, original.shape(), "recovery_metrics: recovered images");
  auto a = denormalize01(original, mean, std), b = denormalize01(recovered, mean, std);
  RecoveryMetrics r;
  r.psnr = psnr(b, a, 1.0f);
  r.ssim = ssim(b, a, 1.0f);
  // the teacher sees the clipped recovered image, renormalised
  auto bn = Tensor<Cpu>::empty(b.shape());
  for (std::int64_t i = 0; i < b.numel(); ++i) bn[i] = (b[i] - mean) / std;
  model.eval();
  teacher_agreement(model, original, bn, &r.agree);
  return r;
}

}  // namespace mint::tasks
