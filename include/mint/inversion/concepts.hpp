// mint/inversion/concepts.hpp -- the policies an inversion method is composed of, each a C++20 concept, so a
// type that is not, say, a PatchSelector fails at the Inverter<> with "constraints not satisfied ...
// PatchSelector" instead of deep inside the engine (tests/inversion/fail_not_a_selector.cpp checks this).
//
//   Model         config() (in_chans, img_size); forward(images, keep) -> logits; last_cls_attention();
//                 backward(d_logits, mode) -> d_images; patch geometry (num_patches, patch_size, grid); all on
//                 Tensor<model_device_t<M>>. Optional: cls_attention_per_head(block) (the selectors' probe),
//                 set_check_inputs(bool) (off inside a CUDA graph)
//   Objective     loss(logits, labels, d_logits) -> value, adding d loss / d logits; or loss(..., LossSink&)
//   Regularizer   add(images, d_images) -> value, adding its weighted gradient (image priors); or add(..., LossSink&);
//                 optionally add(images, d_images, stepped, p) on the CPU: the same value, the gradient needed only at
//                 the stepped patches' pixels (TV computes just the pairs near them; loss_sink.hpp write_prior)
//   PatchSelector rank(RankInput) -> a permutation of the active patches, most important first
//   Schedule      event(t, T, active, N) or event(ScheduleInput) -> what happens after iteration t
//   Augmentation  sample(iteration, image) -> a content-preserving transform of the patch grid
// Every policy may have begin(const RunInfo&): called once when a run starts, before any other call, to validate
// its parameters against the run and precompute (ensmallen's per-run policy state). The engine checks what each
// policy returns against its contract and names the policy's type (policy_name<P>()) when it is broken.
// docs/policies.md, "Writing a policy", has copyable skeletons.
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
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
  { m.config().in_chans } -> std::convertible_to<std::int64_t>;
  { m.config().img_size } -> std::convertible_to<std::int64_t>;
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

// The type of a policy as the compiler spells it (for messages: "selector mint::HighAttention ...").
template <class P>
std::string policy_name() {
  std::string_view f = __PRETTY_FUNCTION__;  // "... policy_name() [with P = T; ...]" (GCC) or "[P = T]" (clang)
  const auto at = f.find("P = ");
  if (at == std::string_view::npos) return std::string(f);
  f.remove_prefix(at + 4);
  return std::string(f.substr(0, f.find_first_of(";]")));
}

// What a run is, for the policies' begin() (and the callbacks'): handed over once before the first iteration.
struct RunInfo {
  std::int64_t batch = 0;   // trajectories (images inverted together)
  int patches = 0;          // N, patches per image
  int grid = 0;             // patches per side
  int patch_size = 0;       // pixels per patch side
  int iterations = 0;       // T
  std::uint64_t seed = 0;
  int heads = 0, blocks = 0;  // the model's attention heads and blocks (0 when it does not say)
  bool cuda_graph = false;    // the iterations run as a captured CUDA graph (no hook between evaluate and step)
};

// Calls p.begin(info) where the policy has one.
template <class P>
void begin_policy(P& p, const RunInfo& info) {
  if constexpr (requires { p.begin(info); }) p.begin(info);
}

// What one iteration did (for progress bars, cost accounting, schedules and callbacks).
struct IterationStats {
  int iteration = 0;
  float loss = 0.0f;            // objective + prior, as the loss sink summed them
  std::int64_t active = 0;      // active patches per image during this iteration's forward
  double seconds = 0.0;         // wall time of the iteration
};

// The model-side probe a selector may read beyond the head-averaged last-block attention: the CLS token's
// attention to each active patch per head, in any block, of the forward pass that ranks (read from what that pass
// saved for backward; a block is fetched from the model only when a selector asks for it, once per event, so a
// selector that never asks costs nothing). Blocks count from 0; a negative block counts from the end (-1: last).
class AttentionProbe {
 public:
  // fetch(block) -> [B, H, K] on the host, block in 0..blocks-1.
  AttentionProbe(int heads, int blocks, std::int64_t active, std::function<Tensor<Cpu>(int)> fetch)
      : heads_(heads), blocks_(blocks), active_(active), fetch_(std::move(fetch)) {}
  [[nodiscard]] int heads() const { return heads_; }
  [[nodiscard]] int blocks() const { return blocks_; }
  // ensures: H * K values, head h's attention to active patch j at [h * K + j] (K in the image's token order).
  [[nodiscard]] std::span<const float> per_head(std::int64_t image, int block) const {
    const int l = block < 0 ? blocks_ + block : block;
    check(l >= 0 && l < blocks_, "AttentionProbe: block ", block, " outside 0..", blocks_ - 1, " (or -", blocks_,
          "..-1 from the end)");
    auto it = cache_.find(l);
    if (it == cache_.end()) {
      Tensor<Cpu> a = fetch_(l);
      check(a.rank() == 3 && a.dim(1) == heads_ && a.dim(2) == active_ && image < a.dim(0), "AttentionProbe: block ",
            l, " gave ", a.shape().str(), ", expected [B, ", heads_, ", ", active_, "]");
      it = cache_.emplace(l, std::move(a)).first;
    }
    const std::int64_t per = heads_ * active_;
    check(image >= 0 && image < it->second.dim(0), "AttentionProbe: image ", image, " outside the batch");
    return {it->second.data() + image * per, static_cast<std::size_t>(per)};
  }
  [[nodiscard]] std::int64_t fetched() const { return static_cast<std::int64_t>(cache_.size()); }

 private:
  int heads_, blocks_;
  std::int64_t active_;
  std::function<Tensor<Cpu>(int)> fetch_;
  mutable std::map<int, Tensor<Cpu>> cache_;
};

// What a selector sees for one image: its active patches (patch numbers, in token order) and the last
// block's head-averaged CLS attention to each of them from the latest forward pass (same order); `probe` (set by
// the engine when the model has one, else nullptr) hands out per-head attention of any block.
struct RankInput {
  std::span<const std::int32_t> active;
  std::span<const float> attention;
  int grid = 0;                 // patches per side
  std::int64_t image = 0;       // index of the image in the batch
  int iteration = 0;            // 1-based iteration after which the ranking is used
  std::uint64_t seed = 0;       // the run's seed (for seeded selectors)
  const AttentionProbe* probe = nullptr;

  // Head h's attention to active[j] in `block` (-1: the last) at [h * active.size() + j]. Throws naming the
  // selector's need when the model gives no probe.
  [[nodiscard]] std::span<const float> per_head(int block = -1) const {
    check(probe != nullptr, "RankInput::per_head: this model has no attention probe (cls_attention_per_head)");
    return probe->per_head(image, block);
  }
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

// What a schedule sees when it decides the event after iteration t: the counts, and the previous iteration's
// statistics (the event is decided before the iteration runs, since the augmentation must know whether this is a
// ranking iteration; previous == nullptr at t = 1).
struct ScheduleInput {
  int t = 0, total = 0;     // the iteration (1-based) and T
  int active = 0, n = 0;    // active patches per image now, and N
  const IterationStats* previous = nullptr;
};

template <class S>
concept Schedule = requires(const S s, int t, int total, int active, int n) {
  { s.event(t, total, active, n) } -> std::same_as<ScheduleEvent>;
} || requires(const S s, const ScheduleInput& in) {
  { s.event(in) } -> std::same_as<ScheduleEvent>;
};

// The event a schedule decides for `in`, through whichever form it has.
template <Schedule S>
ScheduleEvent schedule_event(const S& s, const ScheduleInput& in) {
  if constexpr (requires { { s.event(in) } -> std::same_as<ScheduleEvent>; }) {
    return s.event(in);
  } else {
    return s.event(in.t, in.total, in.active, in.n);
  }
}

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
