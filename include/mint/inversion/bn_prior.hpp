// mint/inversion/bn_prior.hpp -- DeepInversion's BatchNorm-statistics image prior (Yin et al. 2020; GradViT
// Eq. 4) as a Regularizer policy, and ResNetAdapter, which lets the Inverter run a CNN (one "patch" = the whole
// image), so DeepInversion is Inverter<ResNetAdapter, ClassObjective, Sum<BNPrior, TV>, HighAttention, Dense>.
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

#include "mint/inversion/concepts.hpp"
#include "mint/models/resnet.hpp"
#include "mint/nn/tokens.hpp"

namespace mint {

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
    const std::size_t nl = model->num_bn_layers();
    const auto layers = model->bn_layers();
    if (grads) {
      grads->dmean.assign(nl, Tensor<Cpu>{});
      grads->dvar.assign(nl, Tensor<Cpu>{});
    }
    double total = 0.0;
    for (std::size_t l = 0; l < nl; ++l) {
      if (!model->bn_ran(l)) continue;
      const auto& st = model->bn_input_stats(l);
      const double m = (l == 0 ? first_multiplier : 1.0f) * weight;
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

  // requires: the model's latest forward ran on `images` (the Inverter's order: forward, objective, backward,
  //           prior); d_images [B, C, H, W].
  // ensures:  returns the prior's value; adds its gradient w.r.t. the images to d_images.
  float add(const Tensor<Cpu>& images, Tensor<Cpu>& d_images) const {
    check_shape(d_images, images.shape(), "BNPrior: d_images");
    BNStatGrads g;
    const float v = value(&g);
    auto d = model->backward_bn_stats(g, Backward::InputOnly);
    check_shape(d, d_images.shape(), "BNPrior: the model's latest forward was on a different batch shape; d_images");
    for (std::int64_t i = 0; i < d.numel(); ++i) d_images[i] += d[i];
    return v;
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

}  // namespace mint
