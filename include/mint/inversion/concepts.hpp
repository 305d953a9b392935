// mint/inversion/concepts.hpp -- the policies an inversion method is composed of, each a C++20 concept, so a
// type that is not, say, a PatchSelector fails at the Inverter<> with "constraints not satisfied ...
// PatchSelector" instead of deep inside the engine (tests/inversion/fail_not_a_selector.cpp checks this).
//
//   Model         forward(images, keep) -> logits; last_cls_attention(); backward(d_logits, mode) -> d_images;
//                 patch geometry (num_patches, patch_size, grid)
//   Objective     loss(logits, labels, d_logits) -> value, adding d loss / d logits
//   Regularizer   add(images, d_images) -> value, adding its weighted gradient (image priors)
//   PatchSelector rank(RankInput) -> the active patches, most important first
//   Schedule      event(t, T, active, N) -> what happens after iteration t: nothing, prune or detach
//   Augmentation  sample(iteration, image) -> a content-preserving transform of the patch grid
#pragma once

#include <concepts>
#include <cstdint>
#include <span>
#include <vector>

#include "mint/autodiff/backward.hpp"
#include "mint/core/tensor.hpp"
#include "mint/nn/tokens.hpp"

namespace mint {

// The backend a model runs on: M::device_type where it names one (ViT<Cuda>: Cuda), else Cpu.
template <class M>
struct model_device {
  using type = Cpu;
};
template <class M>
  requires requires { typename M::device_type; }
struct model_device<M> {
  using type = typename M::device_type;
};
template <class M>
using model_device_t = typename model_device<M>::type;

// A model's tensors are Tensor<model_device_t<M>>; objectives and priors are called with that tensor type (the
// built-in ones are templates over the backend; the concepts below check them on the CPU).
template <class M>
concept Model = requires(M m, const Tensor<model_device_t<M>>& x, const nn::TokenIndex* keep,
                         const Tensor<model_device_t<M>>& g) {
  { m.forward(x, keep) } -> std::same_as<Tensor<model_device_t<M>>>;
  { m.last_cls_attention() } -> std::convertible_to<const Tensor<model_device_t<M>>&>;
  { m.backward(g, Backward::InputOnly) } -> std::same_as<Tensor<model_device_t<M>>>;
  { m.num_patches() } -> std::convertible_to<int>;
  { m.patch_size() } -> std::convertible_to<int>;
  { m.grid() } -> std::convertible_to<int>;
};

template <class O>
concept Objective = requires(const O o, const Tensor<Cpu>& logits, const std::vector<int>& labels, Tensor<Cpu>& d) {
  { o.loss(logits, labels, d) } -> std::convertible_to<float>;
};

template <class R>
concept Regularizer = requires(const R r, const Tensor<Cpu>& images, Tensor<Cpu>& d_images) {
  { r.add(images, d_images) } -> std::convertible_to<float>;
};

// A regularizer that reads the model's latest forward (BNPrior) declares `static constexpr bool
// reads_model_activations = true`: its gradient is with respect to the images the model saw, so it cannot be
// combined with an augmentation that transforms them (the Inverter refuses it; Sum<...> inherits the flag).
template <class R>
inline constexpr bool reads_model_activations = false;
template <class R>
  requires requires { R::reads_model_activations; }
inline constexpr bool reads_model_activations<R> = static_cast<bool>(R::reads_model_activations);

// What a selector sees for one image: its active patches (patch numbers, in token order) and the last
// block's head-averaged CLS attention to each of them from the latest forward pass (same order).
struct RankInput {
  std::span<const std::int32_t> active;
  std::span<const float> attention;
  int grid = 0;                 // patches per side
  std::int64_t image = 0;       // index of the image in the batch
  int iteration = 0;            // 1-based iteration after which the ranking is used
  std::uint64_t seed = 0;       // the run's seed (for seeded selectors)
};

template <class S>
concept PatchSelector = requires(const S s, const RankInput& in) {
  { s.rank(in) } -> std::same_as<std::vector<std::int32_t>>;
};

struct ScheduleEvent {
  enum class Kind { None, Prune, Detach };
  Kind kind = Kind::None;
  int count = 0;  // patches pruned (the lowest-ranked) or detached (the highest-ranked) per image
};

template <class S>
concept Schedule = requires(const S s, int t, int total, int active, int n) {
  { s.event(t, total, active, n) } -> std::same_as<ScheduleEvent>;
};

// A transform of one image: a horizontal flip, then a roll. The keep set follows the patches: patch (r, c) goes to
// (r + shift_y, (flip ? G - 1 - c : c) + shift_x) mod G. The pixels roll by the same whole patches, or, with
// pixel_roll, by (roll_y, roll_x) pixels (SMI's official jitter: the patch shift is then that code's rounding of
// the pixel roll, and a patch of the transformed grid holds parts of two original patches).
struct PatchTransform {
  bool flip = false;
  int shift_y = 0, shift_x = 0;  // roll in patches (may be negative)
  bool pixel_roll = false;       // the pixels roll by (roll_y, roll_x) pixels instead of by the patch shift
  int roll_y = 0, roll_x = 0;
  [[nodiscard]] bool identity() const {
    return !flip && shift_y == 0 && shift_x == 0 && (!pixel_roll || (roll_y == 0 && roll_x == 0));
  }
};

// sample(iteration, image, seed, grid), or, for a transform that needs the patch size (pixel jitter),
// sample(iteration, image, seed, grid, patch).
template <class A>
concept Augmentation = requires(const A a, int iteration, std::int64_t image, std::uint64_t seed, int grid) {
  { a.sample(iteration, image, seed, grid) } -> std::same_as<PatchTransform>;
} || requires(const A a, int iteration, std::int64_t image, std::uint64_t seed, int grid, int patch) {
  { a.sample(iteration, image, seed, grid, patch) } -> std::same_as<PatchTransform>;
};

// An augmentation that declares `static constexpr bool skips_schedule_events = true` is not applied in the
// iteration whose forward ranks the patches for a schedule event nor in the first iteration after it (SMI's
// synthesis/smi.py: the branches `it+1 in prune_it` and `it in prune_it` call the teacher without jitter_and_flip).
template <class A>
inline constexpr bool skips_schedule_events = false;
template <class A>
  requires requires { A::skips_schedule_events; }
inline constexpr bool skips_schedule_events<A> = static_cast<bool>(A::skips_schedule_events);

// One that declares `static constexpr bool keeps_full_keep_set = true` leaves the keep set alone while every
// patch is active (smi.py: `current_abs_index_aug = current_abs_index` when none is pruned yet), so the tokens
// stay in raster order; otherwise the keep set holds each active patch's new place.
template <class A>
inline constexpr bool keeps_full_keep_set = false;
template <class A>
  requires requires { A::keeps_full_keep_set; }
inline constexpr bool keeps_full_keep_set<A> = static_cast<bool>(A::keeps_full_keep_set);

}  // namespace mint
