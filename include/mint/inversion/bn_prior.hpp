// mint/inversion/bn_prior.hpp -- DeepInversion's BatchNorm-statistics image prior (Yin et al. 2020; GradViT
// Eq. 4) as Regularizer policies: BNPrior (the statistics of the CNN the Inverter drives), BorrowedBNPrior (those of
// a borrowed CNN run on the images, for a ViT inversion: SMI's code's `bn` lever), and ResNetAdapter, which lets the
// Inverter run a CNN (one "patch" = the whole image), so DeepInversion is
// Inverter<ResNetAdapter, ClassObjective, Sum<BNPrior, TV>, HighAttention, Dense>.
//
//   R_BN(x) = weight * sum_l m_l ( ||mu_l(x) - mu_l^run||_2 + ||var_l(x) - var_l^run||_2 )
//
// mu_l, var_l: mean and biased variance over (N, H, W) of BN layer l's input for the batch x (the whole batch,
// as DeepInversion's hooks compute them); mu_l^run, var_l^run: the layer's running statistics; m_l =
// first_multiplier for the first BN layer (DeepInversion's `first_bn_multiplier`, 10 in its reference code), 1
// otherwise. The norms are plain (not squared) L2 norms over channels, as GradViT Eq. 4 and DeepInversion's
// `torch.norm(..., 2)`; a zero difference gets subgradient 0.
//
// Design. A Regularizer only sees (images, d_images), but this prior depends on the model's internal
// activations. BNPrior therefore holds a pointer to the ResNet the Inverter drives. add() reads the BN-input
// statistics of the model's latest forward (which the Inverter ran on exactly these images just before),
// forms d R / d mu_l and d R / d var_l, and asks the model to propagate them to the pixels
// (ResNet::backward_bn_stats: channel_stats_backward at each BN input, then the model's ordinary input-only
// backward chain), adding the result to d_images. This costs one extra input-only backward per iteration; a
// model can instead fold BNStatGrads into its main backward (ResNet::backward(dlogits, mode, &extra)) when the
// caller controls the order, which is what a hand-written loop can do.
#pragma once

#include <cmath>
#include <vector>

#include "mint/core/normalization.hpp"
#include "mint/inversion/concepts.hpp"
#include "mint/models/resnet.hpp"
#include "mint/nn/tokens.hpp"

namespace mint {

// The prior's formula, once (BNPrior and BorrowedBNPrior both call it): R_BN of the file comment for `model`'s
// latest forward, and (if grads) d R / d mu_l, d R / d var_l per BN layer (undefined for a layer that did not run).
inline double bn_prior_value(ResNet<>& model, float weight, float first_multiplier, BNStatGrads* grads) {
  const std::size_t nl = model.num_bn_layers();
  const auto layers = model.bn_layers();
  if (grads) {
    grads->dmean.assign(nl, Tensor<Cpu>{});
    grads->dvar.assign(nl, Tensor<Cpu>{});
  }
  double total = 0.0;
  for (std::size_t l = 0; l < nl; ++l) {
    if (!model.bn_ran(l)) continue;
    const auto& st = model.bn_input_stats(l);
    const double m = (l == 0 ? first_multiplier : 1.0f) * weight;  // the float product, as it always was
    auto term = [&](const Tensor<Cpu>& v, const Tensor<Cpu>& run, Tensor<Cpu>* d) {
      double sq = 0.0;
      for (std::int64_t c = 0; c < v.numel(); ++c) sq += (double(v[c]) - run[c]) * (double(v[c]) - run[c]);
      const double norm = std::sqrt(sq);
      if (d) {
        *d = Tensor<Cpu>::zeros(v.shape());
        if (norm > 0.0)
          for (std::int64_t c = 0; c < v.numel(); ++c) (*d)[c] = static_cast<float>(m * (double(v[c]) - run[c]) / norm);
      }
      return m * norm;
    };
    total += term(st.mean, *layers[l].running_mean, grads ? &grads->dmean[l] : nullptr);
    total += term(st.var, *layers[l].running_var, grads ? &grads->dvar[l] : nullptr);
  }
  return total;
}

// R_BN of `model`'s latest forward (bn_prior_value) and, into d_input, its gradient with respect to that forward's
// input (one input-only backward from the BN statistics: ResNet::backward_bn_stats). Returns the value.
inline float bn_prior_input_gradient(ResNet<>& model, float weight, float first_multiplier, Tensor<Cpu>& d_input) {
  BNStatGrads g;
  const auto v = static_cast<float>(bn_prior_value(model, weight, first_multiplier, &g));
  d_input = model.backward_bn_stats(g, Backward::InputOnly);
  return v;
}

struct BNPrior {
  // It reads the model's latest forward: the Inverter refuses it with an augmentation that transforms the images
  // (the gradient would be in the transformed frame but added in the original one).
  static constexpr bool reads_model_activations = true;
  ResNet<>* model = nullptr;
  float weight = 1e-2f;           // scale of the whole prior (DeepInversion's r_feature, 0.01 for ResNet-50)
  float first_multiplier = 10.0f; // m_1 (DeepInversion's first_bn_multiplier)

  // The prior's value for the model's latest forward, and (if grads) d R / d mu_l, d R / d var_l per layer.
  float value(BNStatGrads* grads) const { return static_cast<float>(value_double(grads)); }

  // The same in double (finite-difference tests: a float total of a few hundred would quantise the differences).
  double value_double(BNStatGrads* grads) const {
    check(model != nullptr, "BNPrior: no model set");
    return bn_prior_value(*model, weight, first_multiplier, grads);
  }

  // requires: the model's latest forward ran on `images` (the Inverter's order: forward, objective, backward,
  //           prior); d_images [B, C, H, W].
  // ensures:  returns the prior's value; adds its gradient w.r.t. the images to d_images.
  float add(const Tensor<Cpu>& images, Tensor<Cpu>& d_images) const {
    check_shape(d_images, images.shape(), "BNPrior: d_images");
    check(model != nullptr, "BNPrior: no model set");
    Tensor<Cpu> d;
    const float v = bn_prior_input_gradient(*model, weight, first_multiplier, d);
    check_shape(d, d_images.shape(), "BNPrior: the model's latest forward was on a different batch shape; d_images");
    for (std::int64_t i = 0; i < d.numel(); ++i) d_images[i] += d[i];
    return v;
  }
};

// DeepInversion's prior from a borrowed CNN, for a model that has no BatchNorm of its own (a ViT): SMI's official
// code keeps this lever (Egg-Hu/SMI synthesis/smi.py:127-158, 198-203: `bn`, `bnsource`, a torchvision ResNet-50
// in eval mode with DeepInversionHooks, loss_bn = sum_l rescale_l r_feature_l, rescale = [10, 1, 1, ...]; test_kt.py
// :134 leaves bn = 0, "we borrow a CNN to only facilitate visualization", after GradViT).
// Here the borrowed CNN is a mint ResNet (mint-experiment: the embedded models/fmnist_resnet.safetensors).
//
// add(images, d_images) runs the CNN's own eval forward on the images it is given, forms R_BN (bn_prior_value,
// the formula above) and adds weight-scaled d R_BN / d images (ResNet::backward_bn_stats) into d_images. It does
// not read the inverted model's activations, so unlike BNPrior it runs under any augmentation. What it is given:
// the Inverter passes every prior the untransformed canvas x (inverter.hpp, write_prior(prior_, x, ...)), the
// whole canvas [B, C, H, W] even when SMI has pruned patches or PRI has detached them (the CNN sees every pixel,
// the frozen ones too), and never the jittered/flipped copy the ViT sees. SMI's code instead runs its prior on
// inputs_aug (smi.py:199, `self.prior(inputs_aug)`), the jittered and flipped canvas; a ResNet with zero padding
// is not equivariant to a roll or a flip, so the two differ by the augmentation's effect on the CNN's statistics
// (mint runs the prior unaugmented, as SMI's code runs its TV).
//
// Normalisation: `images_norm` is the inverted model's input normalisation (the space of `images`), `cnn_norm` the
// CNN's. Where they differ, channel c is mapped x_cnn = a_c x + b_c (Normalization::map_to) before the forward and
// the gradient back by d x += a_c d x_cnn. The embedded ViT teacher and ResNet both use mean 0.286, std 0.353
// (models/fmnist_vit.json, models/fmnist_resnet.json), so there the images go in as given.
//
// Cost: one forward and one input-only backward of the CNN on the whole batch per iteration, which CostMeter
// (cost.hpp: the ViT's GEMMs only) does not count. weight == 0 runs nothing and adds nothing (the run is bit for bit
// the one without the term).
struct BorrowedBNPrior {
  ResNet<>* cnn = nullptr;         // the borrowed CNN, in eval mode (code sets it; from_json leaves it null)
  float weight = 1e-2f;            // SMI's `bn` (DeepInversion's r_feature)
  float first_multiplier = 10.0f;  // smi.py: rescale = [10.0] + [1.0, ...]
  Normalization images_norm;       // the space of the images add() is given (the inverted model's)
  Normalization cnn_norm;          // the CNN's input space (equal to images_norm: the images go in unmapped)

  // requires: weight finite and >= 0; when weight > 0: a CNN in eval mode whose input is grid * patch_size px,
  //           normalisations valid. Throws naming the field.
  void begin(const RunInfo& info) const {
    check(std::isfinite(weight) && weight >= 0.0f && std::isfinite(first_multiplier) && first_multiplier >= 0.0f,
          "BorrowedBNPrior: weight (", weight, ") and first_multiplier (", first_multiplier,
          ") must be finite and >= 0");
    if (weight == 0.0f) return;
    check_cnn();
    const int px = info.grid * info.patch_size;
    check(px == cnn->config().img_size, "BorrowedBNPrior: the inverted images are ", px, " x ", px, " px (grid ",
          info.grid, " x patch ", info.patch_size, "), the borrowed CNN (", cnn->describe(), ") takes ",
          cnn->config().img_size, " x ", cnn->config().img_size);
  }

  // requires: images [B, C, H, W] with C, H, W the CNN's input; d_images of that shape.
  // ensures:  returns R_BN of the CNN's forward on the (mapped) images; adds d R_BN / d images to d_images. The
  //           CNN's saved pass is overwritten (a model the Inverter drives has finished its backward by then).
  float add(const Tensor<Cpu>& images, Tensor<Cpu>& d_images) const {
    check_shape(d_images, images.shape(), "BorrowedBNPrior: d_images");
    if (weight == 0.0f) return 0.0f;
    const auto maps = forward(images);
    Tensor<Cpu> d;
    const float v = bn_prior_input_gradient(*cnn, weight, first_multiplier, d);
    const std::int64_t c = images.dim(1), hw = images.dim(2) * images.dim(3);
    for (std::int64_t i = 0; i < d.numel(); ++i)
      d_images[i] += maps.empty() ? d[i] : maps[static_cast<std::size_t>((i / hw) % c)].scale * d[i];
    return v;
  }

  // The prior's value on `images` in double, no gradient (finite-difference tests).
  [[nodiscard]] double value_double(const Tensor<Cpu>& images) const {
    if (weight == 0.0f) return 0.0;
    forward(images);
    return bn_prior_value(*cnn, weight, first_multiplier, nullptr);
  }

 private:
  void check_cnn() const {
    check(cnn != nullptr, "BorrowedBNPrior: no CNN set (BorrowedBNPrior::cnn) for weight ", weight);
    check(!cnn->training(), "BorrowedBNPrior: the borrowed CNN is in training mode; call eval() (its running "
          "statistics are the prior's targets, and a training forward would normalise with the batch's own)");
    images_norm.validate("BorrowedBNPrior: images_norm");
    cnn_norm.validate("BorrowedBNPrior: cnn_norm");
  }
  // Runs the CNN on the images in its space; returns the per-channel maps used (empty: the images went in as given).
  std::vector<Normalization::ChannelMap> forward(const Tensor<Cpu>& images) const {
    check_cnn();
    const auto& k = cnn->config();
    check(images.rank() == 4 && images.dim(1) == k.in_chans && images.dim(2) == k.img_size &&
              images.dim(3) == k.img_size,
          "BorrowedBNPrior: images ", images.shape().str(), " do not fit the borrowed CNN (", cnn->describe(), ")");
    const std::int64_t c = images.dim(1);
    const Normalization from = images_norm.for_channels(c, "BorrowedBNPrior: images_norm");
    const Normalization to = cnn_norm.for_channels(c, "BorrowedBNPrior: cnn_norm");
    if (from == to) {
      cnn->forward(images);
      return {};
    }
    std::vector<Normalization::ChannelMap> maps;
    for (std::int64_t ch = 0; ch < c; ++ch) maps.push_back(from.map_to(to, ch));
    auto x = Tensor<Cpu>::empty(images.shape());
    const std::int64_t hw = images.dim(2) * images.dim(3);
    for (std::int64_t i = 0; i < x.numel(); ++i) {
      const auto& m = maps[static_cast<std::size_t>((i / hw) % c)];
      x[i] = m.scale * images[i] + m.shift;
    }
    cnn->forward(x);
    return maps;
  }
};

// A ResNet seen by the Inverter: one patch per image (the whole image: grid 1, patch_size = img_size), a keep set
// that must be that patch (or nullptr), and a constant CLS "attention" of 1 ([B, 1]), so every selector and the
// Dense schedule work unchanged. The wrapped model keeps its mode (eval() for inversion, as DeepInversion).
class ResNetAdapter {
 public:
  struct Config {
    int in_chans, img_size;
  };
  explicit ResNetAdapter(ResNet<>& model)
      : model_(&model), cfg_{model.config().in_chans, model.config().img_size} {}

  [[nodiscard]] const Config& config() const { return cfg_; }
  [[nodiscard]] int num_patches() const { return 1; }
  [[nodiscard]] int patch_size() const { return cfg_.img_size; }
  [[nodiscard]] int grid() const { return 1; }
  ResNet<>& model() { return *model_; }

  Tensor<Cpu> forward(const Tensor<Cpu>& images, const nn::TokenIndex* keep = nullptr) {
    if (keep) {
      keep->validate(images.dim(0), 1);
      check(keep->count == 1, "ResNetAdapter: a CNN cannot drop its single patch (keep count ", keep->count, ")");
    }
    auto logits = model_->forward(images);
    attn_ = Tensor<Cpu>::empty(Shape{images.dim(0), 1});
    attn_.fill(1.0f);
    return logits;
  }
  [[nodiscard]] const Tensor<Cpu>& last_cls_attention() const {
    check(attn_.defined(), "ResNetAdapter::last_cls_attention: no forward pass yet");
    return attn_;
  }
  Tensor<Cpu> backward(const Tensor<Cpu>& dlogits, Backward mode) { return model_->backward(dlogits, mode); }

 private:
  ResNet<>* model_;
  Config cfg_;
  Tensor<Cpu> attn_;
};

static_assert(Model<ResNetAdapter>);
static_assert(Regularizer<BNPrior>);
static_assert(Regularizer<BorrowedBNPrior>);
static_assert(!reads_model_activations<BorrowedBNPrior>);

}  // namespace mint
