// mint/inversion/regularizers.hpp -- image priors as Regularizer policies: each adds weight * prior to the loss
// and its gradient to d_images. The paper-literal ones (TV: SMI Eq. 2, L2) are batch means; the official-code
// ones (TVOfficial, TVOfficialL1, L2Official: SMI's synthesis/smi.py) are whole-batch norms, as that code
// computes them.
// Sum<...> combines several, each with its own weight. The backend templates (TV, L2, NoPrior, Sum of them) also
// write into the engine's LossSink (on CUDA on the device), so they can run inside a CUDA graph (`capturable`).
#pragma once

#include <tuple>
#include <type_traits>

#include "mint/inversion/concepts.hpp"
#include "mint/inversion/loss_sink.hpp"
#include "mint/nn/image_priors.hpp"

namespace mint {

// Total variation, SMI Eq. 2 (four directions, L2 across channels). SMI's reference weight is 1e-4.
// (Templates over the backend: on CUDA the nn::total_variation of mint/backend/cuda/image_priors.cuh runs.)
//
// On the CPU the engine calls the active-set form add(images, d_images, stepped, p) (write_prior in loss_sink.hpp):
// only the pixel pairs that touch a stepped patch are computed each iteration (SMI's and PRI's later stages step
// 11-49 % of the canvas), and the pairs between frozen pixels, which never change while the stepped set stays the
// same, are summed once when it changes and added as a constant. The value is that of add(images, d_images) up to
// the double rounding of the two partial sums; the gradient at every stepped pixel is the same bits.
struct TV {
  float weight = 1e-4f;
  static constexpr bool capturable = true;
  template <class D>
  float add(const Tensor<D>& images, Tensor<D>& d_images) const {
    return nn::total_variation(images, weight, &d_images);
  }
  // requires: images [B, C, H, W] of patch size p and `stepped` a keep set of its patch grid; between two calls with
  //           the same images tensor, p and stepped, the pixels outside the stepped patches are unchanged (the
  //           masked Adam step). ensures: returns add(images, d_images)'s value (up to rounding); adds its gradient at
  //           every stepped pixel exactly (other pixels get only the border pairs' part, which no step reads).
  //           Not thread-safe: it keeps the frozen pairs' sums of the latest call (`frozen`).
  float add(const Tensor<Cpu>& images, Tensor<Cpu>& d_images, const nn::TokenIndex& stepped, std::int64_t p) const {
    const auto b = static_cast<double>(images.dim(0));
    if (!frozen.holds(images, stepped, p)) {
      frozen.tv = nn::total_variation_per_image_near(images, stepped, p, false);
      frozen.data = images.data(), frozen.shape = images.shape(), frozen.patch = p, frozen.stepped = stepped;
    }
    const auto tv =
        nn::total_variation_per_image_near(images, stepped, p, true, &d_images, static_cast<float>(weight / b));
    double s = 0.0;
    for (std::size_t i = 0; i < tv.size(); ++i) s += tv[i] + frozen.tv[i];
    return static_cast<float>(weight * s / b);
  }
  void begin(const RunInfo&) { frozen = {}; }

  // The per-image sums over the pairs of frozen pixels for one images tensor, patch size and stepped set.
  struct Frozen {
    const float* data = nullptr;
    Shape shape;
    std::int64_t patch = 0;
    nn::TokenIndex stepped;
    std::vector<double> tv;
    [[nodiscard]] bool holds(const Tensor<Cpu>& x, const nn::TokenIndex& s, std::int64_t p) const {
      return data == x.data() && shape == x.shape() && patch == p && stepped.count == s.count &&
             stepped.index == s.index;
    }
  };
  mutable Frozen frozen = {};
  template <class D>
  void add(const Tensor<D>& images, Tensor<D>& d_images, LossSink<D>& sink) const {
    if constexpr (std::is_same_v<D, Cpu>) {
      sink.add(add(images, d_images));
    } else {
      (void)nn::total_variation(images, weight, &d_images, sink.device());
    }
  }
};

// Squared L2 norm of each image, batch mean. (A template over the backend, as TV: on CUDA the nn::l2_prior of
// mint/backend/cuda/image_priors.cuh runs.)
struct L2 {
  float weight = 1e-5f;
  static constexpr bool capturable = true;
  template <class D>
  float add(const Tensor<D>& images, Tensor<D>& d_images) const {
    return nn::l2_prior(images, weight, &d_images);
  }
  template <class D>
  void add(const Tensor<D>& images, Tensor<D>& d_images, LossSink<D>& sink) const {
    if constexpr (std::is_same_v<D, Cpu>) {
      sink.add(add(images, d_images));
    } else {
      (void)nn::l2_prior(images, weight, &d_images, sink.device());
    }
  }
};

// SMI's reference-code TV, L2 form (synthesis/smi.py get_image_prior_losses, loss_var_l2; weight tv2, test_kt.py:
// 1e-4): sum of the four directions' Frobenius norms over the whole batch, no batch mean. CPU only.
struct TVOfficial {
  float weight = 1e-4f;
  float add(const Tensor<Cpu>& images, Tensor<Cpu>& d_images) const {
    return nn::tv_official_l2(images, weight, &d_images);
  }
};

// SMI's reference-code TV, L1 form (smi.py get_image_prior_losses, loss_var_l1; weight tv1, 0 in test_kt.py):
// sum of the four directions' mean |difference| over the whole batch. CPU only.
struct TVOfficialL1 {
  float weight = 1e-4f;
  float add(const Tensor<Cpu>& images, Tensor<Cpu>& d_images) const {
    return nn::tv_official_l1(images, weight, &d_images);
  }
};

// SMI's reference-code L2 prior (smi.py: loss_l2 = torch.norm(inputs, 2), weight l2, 0 in test_kt.py): the
// unsquared norm of the whole batch tensor. CPU only.
struct L2Official {
  float weight = 1e-5f;
  float add(const Tensor<Cpu>& images, Tensor<Cpu>& d_images) const {
    return nn::l2_official_norm(images, weight, &d_images);
  }
};

// No prior.
struct NoPrior {
  static constexpr bool capturable = true;
  template <class D>
  float add(const Tensor<D>&, Tensor<D>&) const { return 0.0f; }
  template <class D>
  void add(const Tensor<D>&, Tensor<D>&, LossSink<D>&) const {}
};

// The sum of several priors; each keeps its own weight: Sum<TV, L2>{{.weight = 1e-4f}, {.weight = 1e-5f}}.
template <Regularizer... Rs>
struct Sum {
  std::tuple<Rs...> terms;
  static constexpr bool reads_model_activations = (false || ... || mint::reads_model_activations<Rs>);
  static constexpr bool capturable = (true && ... && mint::capturable<Rs>);
  Sum() = default;
  explicit Sum(Rs... rs) : terms(std::move(rs)...) {}
  template <class D>
  float add(const Tensor<D>& images, Tensor<D>& d_images) const {
    return std::apply([&](const auto&... r) { return (0.0f + ... + r.add(images, d_images)); }, terms);
  }
  // The active-set form (TV above): each term's own when it has one, else its plain add. CPU.
  float add(const Tensor<Cpu>& images, Tensor<Cpu>& d_images, const nn::TokenIndex& stepped, std::int64_t p) const {
    return std::apply([&](const auto&... r) { return (0.0f + ... + add_stepped(r, images, d_images, stepped, p)); },
                      terms);
  }
  // On the host the terms' float sum goes in as one value (the sum add() returns, bit for bit); on a device each
  // term writes its own.
  template <class D>
  void add(const Tensor<D>& images, Tensor<D>& d_images, LossSink<D>& sink) const {
    if constexpr (std::is_same_v<D, Cpu>) {
      sink.add(add(images, d_images));
    } else {
      std::apply([&](const auto&... r) { (write_prior(r, images, d_images, sink), ...); }, terms);
    }
  }
};

}  // namespace mint
