// mint/inversion/inverter.hpp -- Inverter<Model, Objective, Regularizer, Selector, Schedule, Augmentation>:
// the model-inversion engine (DESIGN.md "data flow of one inversion").
//
// Each iteration: (augment) -> forward on the active patches only -> objective + prior -> input-only backward
// -> Adam on the active pixels only -> clip to the valid pixel range -> at a schedule event, rank the active
// patches by the latest forward's CLS attention and prune (SMI) or detach (PRI) them. Dropped and detached
// patches are never fed to the model again, so every later iteration costs less.
//
// The iteration body is written once (run_with); an executor runs it: PlainExecutor on any backend, or the
// CUDA-graph executor (IterationGraph<Cuda>, inverter_cuda.cuh) that captures and replays it. Every loss term goes
// into an explicit LossSink (loss_sink.hpp), read once per iteration. Policies get begin(RunInfo) once; the
// selector's rankings are checked; callbacks (callbacks.hpp) see every iteration. Pixels are optimised by
// PixelOptimizer (pixel_optimizer.hpp), the one GradViT's attack uses too.
//
// The engine runs on the model's backend (model_device_t<M>): for ViT<Cuda> the images, Adam moments, loss and
// prior stay on the GPU (include mint/inversion/inverter_cuda.cuh), and only the CLS attention and the images
// are copied to the host at schedule events. Augmentation runs on either backend (not inside a CUDA graph: it
// changes the transform and the keep set every iteration, which a captured graph would freeze).
#pragma once
#define MINT_INVERSION_INVERTER_HPP_INCLUDED 1

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "mint/backend/cpu/parallel.hpp"
#include "mint/backend/functors.hpp"
#include "mint/core/rng.hpp"
#include "mint/core/normalization.hpp"
#include "mint/inversion/augmentation.hpp"
#include "mint/inversion/callbacks.hpp"
#include "mint/inversion/clip_range.hpp"
#include "mint/inversion/concepts.hpp"
#include "mint/inversion/loss_sink.hpp"
#include "mint/inversion/objectives.hpp"
#include "mint/inversion/pixel_optimizer.hpp"
#include "mint/inversion/regularizers.hpp"
#include "mint/inversion/schedules.hpp"
#include "mint/inversion/selectors.hpp"
#include "mint/inversion/sparse_image.hpp"

namespace mint {

struct InversionOptions {
  int iterations = 4000;                 // T (SMI's reference code: 4000)
  float lr = 0.25f;                      // Adam, as SMI's reference code
  float beta1 = 0.5f, beta2 = 0.99f, eps = 1e-8f;
  std::uint64_t seed = 0;                // init noise, random selector, augmentation
  float pixel_lo = -1e30f, pixel_hi = 1e30f;  // valid range in normalised space; clipped after every step
  // CUDA models only: capture the iteration in a CUDA graph between schedule events (mint/inversion/
  // inverter_cuda.cuh says how); the built-in objective and priors only.
  bool cuda_graph = false;
  // Per-channel valid range (SMI's synthesis/smi.py clip_images): when set, channel c is clipped to
  // [normalization.lo(c), normalization.hi(c)], and pixel_lo / pixel_hi are not used.
  std::optional<Normalization> normalization;
  bool clip_initial = true;        // clip the initial images too (SMI's code does not: its randn starts unclipped)
  Tensor<Cpu> initial_images;      // [B, C, H, W] in model space to start from, used as given; undefined: noise
  bool step_whole_canvas = false;  // Adam on every pixel (SMI's code: Adam holds the whole tensor, so pruned
                                   // patches still move by the prior's gradient and the moments), not the active ones
  KeptImage kept_image = KeptImage::Last;  // best-image keeping: the engine runs it as a KeepBest callback

  // The range the engine clips channel c of a C-channel model to.
  [[nodiscard]] ClipRange clip_range(std::int64_t channels) const {
    return normalization ? ClipRange::of(*normalization, channels) : ClipRange::uniform(channels, pixel_lo, pixel_hi);
  }
  // Read at the top of every iteration (a CLI's SIGINT/SIGTERM handler sets it): once true, the run stops before
  // that iteration and returns what is finished, PRI's already-detached images, with `interrupted` set.
  const std::atomic<bool>* stop = nullptr;
};

// CUDA-graph capture of an iteration (InversionOptions::cuda_graph): the executor that captures and replays the
// iteration body; the Cuda specialisation is in mint/inversion/inverter_cuda.cuh, other backends have none.
template <class Device>
class IterationGraph {
 public:
  static constexpr bool available = false;
};

// The executor of one iteration without capture, on any backend: the body's evaluate part (augment, forward on
// the active tokens, objective, input-only backward, prior; every loss term into the sink), one read of the sink,
// the body's `evaluated(loss)` hook (best-image keeping sees the canvas before the step), then the body's step
// (masked Adam + clip) with this iteration's fn::AdamStep.
template <class Device>
struct PlainExecutor {
  template <class Body>
  float run(Body& body, std::int64_t /*active*/, const fn::AdamStep& step, LossSink<Device>& sink) {
    sink.reset();
    body.evaluate(sink);
    const float loss = sink.read();
    body.evaluated(loss);
    body.step(step);
    return loss;
  }
};

// The parts of one iteration the executors run (see PlainExecutor; IterationGraph<Cuda> runs evaluate and step
// under capture and calls no `evaluated`).
template <class Evaluate, class Evaluated, class Step>
struct IterationBody {
  Evaluate evaluate;
  Evaluated evaluated;
  Step step;
};
// Spelled out: clang before 17 does not deduce an aggregate's template arguments (C++20's P1816).
template <class Evaluate, class Evaluated, class Step>
IterationBody(Evaluate, Evaluated, Step) -> IterationBody<Evaluate, Evaluated, Step>;

// A host tensor with t's values: t itself on the CPU backend (shared, no copy), a copy otherwise.
template <class D>
Tensor<Cpu> host_tensor(const Tensor<D>& t) {
  if constexpr (std::is_same_v<D, Cpu>) {
    return t;
  } else {
    return to_cpu(t);
  }
}

template <Model M, Objective O = ClassObjective, Regularizer R = TV, PatchSelector S = HighAttention,
          Schedule Sch = Dense, Augmentation A = NoAugmentation>
class Inverter {
 public:
  Inverter(M& model, O objective = {}, R prior = {}, S selector = {}, Sch schedule = {}, A augmentation = {},
           InversionOptions options = {})
      : model_(model), objective_(std::move(objective)), prior_(std::move(prior)), selector_(std::move(selector)),
        schedule_(std::move(schedule)), augmentation_(std::move(augmentation)), opt_(options) {}

  InversionOptions& options() { return opt_; }

  using Device = model_device_t<M>;  // the backend the engine runs on (the model's)
  using TensorD = Tensor<Device>;

  // Inverts one batch: labels.size() images, each a trajectory that yields one image (DMI, SMI) or v images
  // (PRI). Each callback (mint/inversion/callbacks.hpp: a function of IterationStats, EarlyStop, Checkpoint,
  // MeterCallback, or any object with those hooks) is called at its hooks, in the order given.
  template <class... Callbacks>
  InversionResult run(const std::vector<int>& labels, Callbacks&&... callbacks) {
    const std::int64_t b = static_cast<std::int64_t>(labels.size());
    check(b > 0, "Inverter::run: no labels");
    check(opt_.iterations >= 1, "Inverter::run: iterations must be >= 1, got ", opt_.iterations);
    if (opt_.cuda_graph) {
      check(std::is_same_v<A, NoAugmentation>, "Inverter::run: cuda_graph: the augmentation ", policy_name<A>(),
            " changes the transform and the keep set every iteration, which a captured graph would freeze; run it "
            "without cuda_graph or with NoAugmentation");
      check(capturable<O>, "Inverter::run: cuda_graph: the objective ", policy_name<O>(), " cannot be captured in a "
            "CUDA graph (it returns its loss to the host instead of writing it to the LossSink on the device: "
            "mint/inversion/loss_sink.hpp); run it without cuda_graph");
      check(capturable<R>, "Inverter::run: cuda_graph: the prior ", policy_name<R>(), " cannot be captured in a "
            "CUDA graph (it returns its loss to the host instead of writing it to the LossSink on the device: "
            "mint/inversion/loss_sink.hpp); run it without cuda_graph");
      check(IterationGraph<Device>::available, "Inverter::run: cuda_graph needs a CUDA model (", Device::name,
            " here; include mint/inversion/inverter_cuda.cuh)");
    }
    KeepBest<Device> kept{opt_.kept_image};  // InversionOptions::kept_image as the callback (Last: inert)
    if constexpr (IterationGraph<Device>::available) {
      if (opt_.cuda_graph) {
        IterationGraph<Device> graph;
        return run_with(graph, labels, kept, callbacks...);
      }
    }
    PlainExecutor<Device> plain;
    return run_with(plain, labels, kept, callbacks...);
  }

 private:
  // The run on one executor: the iteration body is written once, here; the executor decides how it is run.
  template <class Executor, class... Callbacks>
  InversionResult run_with(Executor& exec, const std::vector<int>& labels, Callbacks&... callbacks) {
    const auto& cfg = model_.config();
    const std::int64_t b = static_cast<std::int64_t>(labels.size()), n = model_.num_patches(), p = model_.patch_size();
    const int grid = model_.grid(), total = opt_.iterations;
    const Shape shape{b, cfg.in_chans, cfg.img_size, cfg.img_size};
    RunInfo info{b, static_cast<int>(n), grid, static_cast<int>(p), total, opt_.seed, 0, 0};
    if constexpr (requires { cfg.heads; cfg.depth; }) info.heads = cfg.heads, info.blocks = cfg.depth;
    info.cuda_graph = opt_.cuda_graph && IterationGraph<Device>::available;
    // every policy and callback validates itself and precomputes once, before any work
    begin_policy(objective_, info);
    begin_policy(prior_, info);
    begin_policy(selector_, info);
    begin_policy(schedule_, info);
    begin_policy(augmentation_, info);
    (detail::callback_begin(callbacks, info), ...);
    int givers = 0;  // the callback that keeps the canvas images leave from (KeepBest), if any: at most one
    const TensorD* image_canvas = nullptr;
    (
        [&] {
          if (const TensorD* c = detail::callback_image_canvas<TensorD>(callbacks, givers)) image_canvas = c;
        }(),
        ...);
    check(givers <= 1, "Inverter::run: ", givers, " callbacks keep the canvas images leave from (KeepBest, or "
          "InversionOptions::kept_image beside one): pass one");
    Tensor<Cpu> x0;
    if (opt_.initial_images.defined()) {  // given images, e.g. real ones or another run's (SMI's init_dataset idea)
      check_shape(opt_.initial_images, shape, "Inverter::run: InversionOptions::initial_images");
      x0 = opt_.initial_images.clone();
    } else {
      x0 = PixelOptimizer<Device>::noise(shape, opt_.seed);  // seeded Gaussian noise in normalised space
    }
    PixelOptimizer<Device> pix(std::move(x0), PixelAdam{opt_.lr, opt_.beta1, opt_.beta2, opt_.eps},
                               opt_.clip_range(cfg.in_chans), opt_.clip_initial,
                               "Inverter::run: InversionOptions::initial_images");
    TensorD& x = pix.images();
    TensorD xa, g;  // the augmented images and their gradient (allocated when there is an augmentation)
    if constexpr (!std::is_same_v<A, NoAugmentation>) {
      xa = TensorD::empty(shape);
      g = TensorD::empty(shape);
    }
    InversionResult res;
    res.update_counts = Tensor<Cpu>::zeros(Shape{b, n});
    nn::TokenIndex active = nn::TokenIndex::all(b, n);  // per image, in token order
    const nn::TokenIndex all = nn::TokenIndex::all(b, n);
    std::vector<PatchTransform> tf(static_cast<std::size_t>(b));
    InputCheckOff input_check(model_, opt_.cuda_graph);  // a graph cannot contain the NaN check's read-back
    LossSink<Device> sink;
    bool event_before = false;  // a schedule event happened after the previous iteration
    bool stop = false;

    for (int t = 1; t <= total && !stop; ++t) {
      if (opt_.stop != nullptr && opt_.stop->load(std::memory_order_relaxed)) {
        res.interrupted = true;  // the trajectories in flight are unfinished: only detached images are kept
        break;
      }
      const auto start = std::chrono::steady_clock::now();
      // the schedule's event after this iteration, decided before it from the counts and the previous
      // iteration's statistics (the augmentation must know whether this iteration ranks), applied below
      const ScheduleInput sin{t, total, static_cast<int>(active.count), static_cast<int>(n),
                              res.history.empty() ? nullptr : &res.history.back()};
      const ScheduleEvent ev = schedule_event(schedule_, sin);
      check(ev.kind == ScheduleEvent::Kind::None || ev.count >= 0, "Inverter: schedule ", policy_name<Sch>(),
            " at iteration ", t, ": event count ", ev.count, " is negative");
      const bool event_now = ev.kind != ScheduleEvent::Kind::None && ev.count > 0;
      // 1. augmentation: the model sees transformed images; the keep set is the active patches' new places
      nn::TokenIndex keep = active;
      bool augmented = false;
      const bool quiet = skips_schedule_events<A> && (event_now || event_before);
      for (std::int64_t i = 0; i < b; ++i) {
        tf[static_cast<std::size_t>(i)] =
            quiet ? PatchTransform{} : sample_transform(augmentation_, t, i, opt_.seed, grid, static_cast<int>(p));
        if (!tf[static_cast<std::size_t>(i)].identity()) augmented = true;
      }
      const bool remap = !(keeps_full_keep_set<A> && active.count == n);
      check(!(augmented && reads_model_activations<R>), "Inverter::run: the prior reads the model's activations "
            "(BNPrior) and cannot be combined with an augmentation that transforms the images (jitter/flip): its "
            "gradient would be taken in the transformed frame; use NoAugmentation or JitterFlip{false, false}");
      if (augmented)
        for (std::int64_t i = 0; i < b; ++i) {
          apply_transform(tf[static_cast<std::size_t>(i)], x, xa, i, static_cast<int>(p), false);
          for (std::int64_t k = 0; remap && k < keep.count; ++k)
            keep.index[static_cast<std::size_t>(i * keep.count + k)] =
                transform_patch(tf[static_cast<std::size_t>(i)], active.at(i, k), grid);
        }
      const nn::TokenIndex& stepped = opt_.step_whole_canvas ? all : active;  // the pixels Adam steps
      // 2. the iteration body: forward on the active tokens, objective, input-only backward (back to the
      //    untransformed frame), prior, every term into the sink; then Adam on the stepped pixels and the clip
      TensorD dx;
      auto body = IterationBody{
          [&](LossSink<Device>& into) {
            auto logits = model_.forward(augmented ? xa : x, &keep);
            auto dlogits = TensorD::zeros(logits.shape());
            write_loss(objective_, logits, labels, dlogits, into);
            auto dxa = model_.backward(dlogits, Backward::InputOnly);
            if (augmented)
              for (std::int64_t i = 0; i < b; ++i)
                apply_transform(tf[static_cast<std::size_t>(i)], dxa, g, i, static_cast<int>(p), true);
            dx = augmented ? g : dxa;
            write_prior(prior_, x, dx, into, stepped, p);  // on the CPU, TV over the stepped patches only
          },
          [&](float l) {
            PixelOptimizer<Device>::check_loss(l, t, "Inverter::run");
            (detail::callback_evaluated(callbacks, l, x), ...);
          },
          [&](const auto& step) { pix.step(step, dx, stepped, p); }};
      const float loss = exec.run(body, keep.count, pix.adam().at(t), sink);
      PixelOptimizer<Device>::check_loss(loss, t, "Inverter::run");
      count_updates(stepped, res.update_counts);
      (detail::callback_stepped(callbacks, loss, x), ...);
      // 3. schedule: rank by this forward's CLS attention (keep order = active order); on a device backend the
      //    attention and the images come to the host only here. Images leave from the kept canvas.
      const TensorD& kept = image_canvas != nullptr ? *image_canvas : x;
      if (event_now) {
        const std::int64_t before = active.count;
        active = apply_event(ev, active, host_tensor(model_.last_cls_attention()), host_tensor(kept), labels, t, grid,
                             res);
        [[maybe_unused]] const EventInfo e{t, ev, before, active.count};
        (detail::callback_event(callbacks, e, res.images), ...);
      }
      event_before = event_now;
      IterationStats st{t, loss, keep.count,
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
      res.history.push_back(st);
      stop = (false | ... | detail::callback_iteration(callbacks, st));
      if (t == total || stop) {  // the trajectories in flight leave (at T, or where a callback stopped the run)
        res.stopped_early = t < total;
        emit_final(active, host_tensor(kept), labels, t, res);
      }
      if ((false || ... || detail::callback_wants_checkpoint(callbacks, t))) {
        const Tensor<Cpu> canvas = host_tensor(x);
        [[maybe_unused]] const CheckpointState cs{t, canvas, active, res.images};
        (((detail::callback_wants_checkpoint(callbacks, t)) ? detail::callback_checkpoint(callbacks, cs) : void()),
         ...);
      }
    }
    (detail::callback_end(callbacks, res), ...);
    return res;
  }

  // Turns the model's NaN check of its input off while it lives (when asked and the model has the switch).
  struct InputCheckOff {
    M& model;
    bool off;
    InputCheckOff(M& m, bool o) : model(m), off(o) {
      if constexpr (requires { model.set_check_inputs(false); })
        if (off) model.set_check_inputs(false);
    }
    ~InputCheckOff() {
      if constexpr (requires { model.set_check_inputs(true); })
        if (off) model.set_check_inputs(true);
    }
    InputCheckOff(const InputCheckOff&) = delete;
    InputCheckOff& operator=(const InputCheckOff&) = delete;
  };

  static void count_updates(const nn::TokenIndex& active, Tensor<Cpu>& counts) {
    const std::int64_t n = counts.dim(1);
    for (std::int64_t bk = 0; bk < active.batch * active.count; ++bk)
      counts[(bk / active.count) * n + active.index[static_cast<std::size_t>(bk)]] += 1.0f;
  }

  SparseImage make_image(const Tensor<Cpu>& x, std::int64_t i, const std::vector<std::int32_t>& patches, int label,
                         int t) const {
    const std::int64_t per = x.numel() / x.dim(0);
    SparseImage s{Tensor<Cpu>::empty(Shape{x.dim(1), x.dim(2), x.dim(3)}),
                  Tensor<Cpu>::zeros(Shape{model_.num_patches()}), label, t};
    std::copy(x.data() + i * per, x.data() + (i + 1) * per, s.pixels.data());
    for (auto q : patches) s.mask[q] = 1.0f;
    return s;
  }

  // The probe of the forward that ranks: per-head CLS attention of any block, fetched from the model only when a
  // selector asks (nullptr when the model has no cls_attention_per_head).
  std::optional<AttentionProbe> make_probe(std::int64_t k) const {
    if constexpr (requires { model_.cls_attention_per_head(0); model_.config().heads; model_.config().depth; }) {
      return AttentionProbe(model_.config().heads, model_.config().depth, k,
                            [this](int block) { return model_.cls_attention_per_head(block); });
    } else {
      (void)k;
      return std::nullopt;
    }
  }

  // The selector's ranking of image i must be a permutation of its active patches: throws naming the selector's
  // type, the iteration, the image and the rule broken.
  static void check_ranking(const std::vector<std::int32_t>& ranked, std::span<const std::int32_t> act, int t,
                            std::int64_t i) {
    const auto where = [&] { return "Inverter: selector " + policy_name<S>() + " at iteration " + std::to_string(t) +
                                    ", image " + std::to_string(i) + ": "; };
    check(ranked.size() == act.size(), where(), "returned ", ranked.size(), " patches for ", act.size(),
          " active (a ranking is a permutation of the active patches)");
    std::vector<std::int32_t> sorted_active(act.begin(), act.end()), sorted(ranked);
    std::sort(sorted_active.begin(), sorted_active.end());
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t j = 0; j < sorted.size(); ++j) {
      check(j == 0 || sorted[j] != sorted[j - 1], where(), "returned patch ", sorted[j],
            " twice (a ranking is a permutation of the active patches: no duplicates)");
      check(std::binary_search(sorted_active.begin(), sorted_active.end(), sorted[j]), where(), "returned patch ",
            sorted[j], ", which is not active (a ranking is a permutation of the active patches)");
    }
  }

  nn::TokenIndex apply_event(const ScheduleEvent& ev, const nn::TokenIndex& active, const Tensor<Cpu>& attn,
                             const Tensor<Cpu>& x, const std::vector<int>& labels, int t, int grid, InversionResult& res) {
    const std::int64_t b = active.batch, k = active.count;
    const std::int64_t remove = std::min<std::int64_t>(ev.count, k - 1);  // at least one patch stays active
    check(attn.rank() == 2 && attn.dim(1) == k, "Inverter: CLS attention ", attn.shape().str(), " for ", k,
          " active patches");
    const std::optional<AttentionProbe> probe = make_probe(k);
    nn::TokenIndex next{b, k - remove, {}};
    for (std::int64_t i = 0; i < b; ++i) {
      const std::span<const std::int32_t> act{active.index.data() + i * k, static_cast<std::size_t>(k)};
      RankInput in{act, {attn.data() + i * k, static_cast<std::size_t>(k)}, grid, i, t, opt_.seed,
                   probe ? &*probe : nullptr};
      auto ranked = selector_.rank(in);
      check_ranking(ranked, act, t, i);
      std::vector<std::int32_t> gone, stay;
      if (ev.kind == ScheduleEvent::Kind::Detach) {  // the top-ranked leave as a sparse image
        gone.assign(ranked.begin(), ranked.begin() + remove);
        stay.assign(ranked.begin() + remove, ranked.end());
        res.images.push_back(make_image(x, i, gone, labels[static_cast<std::size_t>(i)], t));
      } else {  // prune: the lowest-ranked stop being inverted
        stay.assign(ranked.begin(), ranked.end() - remove);
      }
      // keep the surviving patches in their previous token order (stable, independent of the ranking)
      std::vector<std::int32_t> ordered;
      for (std::int64_t j = 0; j < k; ++j) {
        const auto q = active.at(i, j);
        if (std::find(stay.begin(), stay.end(), q) != stay.end()) ordered.push_back(q);
      }
      next.index.insert(next.index.end(), ordered.begin(), ordered.end());
    }
    return next;
  }

  void emit_final(const nn::TokenIndex& active, const Tensor<Cpu>& x, const std::vector<int>& labels, int t,
                  InversionResult& res) const {
    for (std::int64_t i = 0; i < active.batch; ++i) {
      std::vector<std::int32_t> patches(active.index.begin() + i * active.count,
                                        active.index.begin() + (i + 1) * active.count);
      res.images.push_back(make_image(x, i, patches, labels[static_cast<std::size_t>(i)], t));
    }
  }

  M& model_;
  O objective_;
  R prior_;
  S selector_;
  Sch schedule_;
  A augmentation_;
  InversionOptions opt_;
};

// The published methods (the policies' defaults hold the papers' hyperparameters).
template <class M>
using DMI = Inverter<M, ClassObjective, TV, HighAttention, Dense>;
template <class M>
using SMI = Inverter<M, ClassObjective, TV, HighAttention, ProgressivePrune>;
template <class M>
using PRI = Inverter<M, ClassObjective, TV, HighAttention, Rebirth>;

}  // namespace mint
