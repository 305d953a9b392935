// mint/inversion/inverter.hpp -- Inverter<Model, Objective, Regularizer, Selector, Schedule, Augmentation>:
// the model-inversion engine (DESIGN.md "data flow of one inversion").
//
// Each iteration: (augment) -> forward on the active patches only -> objective + prior -> input-only backward
// -> Adam on the active pixels only -> clip to the valid pixel range -> at a schedule event, rank the active
// patches by the latest forward's CLS attention and prune (SMI) or detach (PRI) them. Dropped and detached
// patches are never fed to the model again, so every later iteration costs less.
//
// The engine runs on the model's backend (model_device_t<M>): for ViT<Cuda> the images, Adam moments, loss and
// prior stay on the GPU (include mint/inversion/inverter_cuda.cuh), and only the CLS attention and the images
// are copied to the host at schedule events. Augmentation runs on the CPU backend only.
#pragma once
#define MINT_INVERSION_INVERTER_HPP_INCLUDED 1

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <type_traits>
#include <vector>

#include "mint/backend/cpu/parallel.hpp"
#include "mint/backend/functors.hpp"
#include "mint/core/rng.hpp"
#include "mint/core/normalization.hpp"
#include "mint/inversion/augmentation.hpp"
#include "mint/inversion/clip_range.hpp"
#include "mint/inversion/concepts.hpp"
#include "mint/inversion/objectives.hpp"
#include "mint/inversion/regularizers.hpp"
#include "mint/inversion/schedules.hpp"
#include "mint/inversion/selectors.hpp"
#include "mint/inversion/sparse_image.hpp"

namespace mint {

// Which canvas an image is taken from when it leaves the run (at a detachment or at T).
enum class KeptImage {
  Last,           // the canvas as it is then (SMI's code in effect: its best_inputs aliases the optimised tensor)
  Best,           // the canvas the lowest loss of the stage was computed on (before that iteration's step)
  BestAfterStep,  // DeepInversion's deepinversion.py: best_inputs = inputs.data.clone() after the step and clip
};
// A stage is the span since the previous schedule event (or the start): losses across an event are of different
// active sets and are not compared (docs/inversion.md, "Best-image keeping").

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
  KeptImage kept_image = KeptImage::Last;

  // The range the engine clips channel c of a C-channel model to.
  [[nodiscard]] ClipRange clip_range(std::int64_t channels) const {
    return normalization ? ClipRange::of(*normalization, channels) : ClipRange::uniform(channels, pixel_lo, pixel_hi);
  }
  // Read at the top of every iteration (a CLI's SIGINT/SIGTERM handler sets it): once true, the run stops before
  // that iteration and returns what is finished, PRI's already-detached images, with `interrupted` set.
  const std::atomic<bool>* stop = nullptr;
};

// CUDA-graph capture of an iteration (InversionOptions::cuda_graph): the Cuda specialisation is in
// mint/inversion/inverter_cuda.cuh; other backends have none.
template <class Device>
class IterationGraph {
 public:
  static constexpr bool available = false;
};

// What one iteration did (for progress bars and cost accounting).
struct IterationStats {
  int iteration = 0;
  float loss = 0.0f;            // objective + prior
  std::int64_t active = 0;      // active patches per image during this iteration's forward
  double seconds = 0.0;         // wall time of the iteration
};

// Adam on the pixels of the active patches only, then clip channel ch to [range.lo[ch], range.hi[ch]] (the CPU
// kernel; the CUDA overload is in mint/inversion/inverter_cuda.cuh, found by argument-dependent lookup).
// requires: x, g, m, v [B, C, H, W]; active a keep set for (B, (H/p)*(W/p)); range.channels == C.
inline void masked_adam_step(const fn::AdamStep& step, Tensor<Cpu>& x, const Tensor<Cpu>& g, Tensor<Cpu>& m,
                             Tensor<Cpu>& v, const nn::TokenIndex& active, std::int64_t p, const ClipRange& range) {
  const std::int64_t c = x.dim(1), h = x.dim(2), w = x.dim(3), gw = w / p;
  check(range.channels == c, "masked_adam_step: a clip range for ", range.channels, " channels, images have ", c);
  cpu::parallel_for(active.batch * active.count, [&](std::int64_t bk) {
    const std::int64_t i = bk / active.count;
    const std::int32_t patch = active.index[static_cast<std::size_t>(bk)];
    const std::int64_t y0 = (patch / gw) * p, x0 = (patch % gw) * p;
    for (std::int64_t ch = 0; ch < c; ++ch) {
      const float lo = range.lo[ch], hi = range.hi[ch];
      for (std::int64_t y = y0; y < y0 + p; ++y)
        for (std::int64_t xx = x0; xx < x0 + p; ++xx) {
          const std::int64_t o = ((i * c + ch) * h + y) * w + xx;
          step(x[o], g[o], m[o], v[o]);
          x[o] = std::clamp(x[o], lo, hi);
        }
    }
  });
}
// The scalar range [lo, hi] for every channel.
template <class D>
void masked_adam_step(const fn::AdamStep& step, Tensor<D>& x, const Tensor<D>& g, Tensor<D>& m, Tensor<D>& v,
                      const nn::TokenIndex& active, std::int64_t p, float lo, float hi) {
  masked_adam_step(step, x, g, m, v, active, p, ClipRange::uniform(x.dim(1), lo, hi));
}

// A host tensor with t's values: t itself on the CPU backend (shared, no copy), a copy otherwise.
template <class D>
Tensor<Cpu> host_tensor(const Tensor<D>& t) {
  if constexpr (std::is_same_v<D, Cpu>) {
    return t;
  } else {
    return to_cpu(t);
  }
}

struct InversionResult {
  std::vector<SparseImage> images;  // in order of creation (PRI: by detachment point, then image)
  Tensor<Cpu> update_counts;        // [B, N]: Adam updates each patch received
  std::vector<IterationStats> history;
  bool interrupted = false;         // InversionOptions::stop ended the run after history.size() iterations
};

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
  static constexpr bool kCpu = std::is_same_v<Device, Cpu>;

  // Inverts one batch: labels.size() images, each a trajectory that yields one image (DMI, SMI) or v images
  // (PRI). `on_iteration` (optional) is called after every iteration with its statistics.
  InversionResult run(const std::vector<int>& labels, const std::function<void(const IterationStats&)>& on_iteration = {}) {
    const auto& cfg = model_.config();
    const std::int64_t b = static_cast<std::int64_t>(labels.size()), n = model_.num_patches(), p = model_.patch_size();
    const int grid = model_.grid(), total = opt_.iterations;
    check(b > 0, "Inverter::run: no labels");
    check(total >= 1, "Inverter::run: iterations must be >= 1, got ", total);
    const Shape shape{b, cfg.in_chans, cfg.img_size, cfg.img_size};
    const ClipRange range = opt_.clip_range(cfg.in_chans);
    check(!(opt_.cuda_graph && opt_.kept_image == KeptImage::Best), "Inverter::run: kept_image Best needs the "
          "canvas before each step, which a CUDA-graph iteration does not expose; use BestAfterStep or no graph");
    Tensor<Cpu> x0;
    if (opt_.initial_images.defined()) {  // given images, e.g. real ones or another run's (SMI's init_dataset idea)
      check_shape(opt_.initial_images, shape, "Inverter::run: InversionOptions::initial_images");
      x0 = opt_.initial_images.clone();
      for (std::int64_t i = 0; i < x0.numel(); ++i)
        check(std::isfinite(x0[i]), "Inverter::run: InversionOptions::initial_images[", i, "] = ", x0[i],
              " is not finite");
    } else {
      x0 = Tensor<Cpu>::empty(shape);
      fill_normal(x0, opt_.seed, 0, 0.0f, 1.0f);  // seeded Gaussian noise in normalised space (drawn on the host)
    }
    if (opt_.clip_initial) {
      const std::int64_t hw = shape[2] * shape[3];
      for (std::int64_t i = 0; i < x0.numel(); ++i) {
        const std::int64_t ch = (i / hw) % shape[1];
        x0[i] = std::clamp(x0[i], range.lo[ch], range.hi[ch]);
      }
    }
    TensorD x;
    if constexpr (kCpu) {
      x = x0;
    } else {
      x = to_backend<Device>(x0);
    }
    auto m = TensorD::zeros(shape), v = TensorD::zeros(shape);
    Tensor<Cpu> xa, g;  // augmentation buffers (CPU backend only)
    if constexpr (kCpu) {
      xa = Tensor<Cpu>::empty(shape);
      g = Tensor<Cpu>::empty(shape);
    }
    InversionResult res;
    res.update_counts = Tensor<Cpu>::zeros(Shape{b, n});
    nn::TokenIndex active = nn::TokenIndex::all(b, n);  // per image, in token order
    const nn::TokenIndex all = nn::TokenIndex::all(b, n);
    std::vector<PatchTransform> tf(static_cast<std::size_t>(b));
    check(!opt_.cuda_graph || IterationGraph<Device>::available, "Inverter::run: cuda_graph needs a CUDA model (",
          Device::name, " here; include mint/inversion/inverter_cuda.cuh)");
    IterationGraph<Device> graph;
    InputCheckOff input_check(model_, opt_.cuda_graph);  // a graph cannot contain the NaN check's read-back
    Best best;  // the best canvas of the current stage (KeptImage::Best / BestAfterStep)
    bool event_before = false;  // a schedule event happened after the previous iteration

    for (int t = 1; t <= total; ++t) {
      if (opt_.stop != nullptr && opt_.stop->load(std::memory_order_relaxed)) {
        res.interrupted = true;  // the trajectories in flight are unfinished: only detached images are kept
        break;
      }
      const auto start = std::chrono::steady_clock::now();
      // the schedule's event after this iteration (a pure function of t and the counts: decided here, applied below)
      const ScheduleEvent ev = schedule_.event(t, total, static_cast<int>(active.count), static_cast<int>(n));
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
      if constexpr (!kCpu)
        check(!augmented, "Inverter::run: augmentation runs on the CPU backend only (", Device::name, " model)");
      check(!(augmented && reads_model_activations<R>), "Inverter::run: the prior reads the model's activations "
            "(BNPrior) and cannot be combined with an augmentation that transforms the images (jitter/flip): its "
            "gradient would be taken in the transformed frame; use NoAugmentation or JitterFlip{false, false}");
      if constexpr (kCpu)
        if (augmented)
          for (std::int64_t i = 0; i < b; ++i) {
            apply_transform(tf[static_cast<std::size_t>(i)], x, xa, i, static_cast<int>(p), false);
            for (std::int64_t k = 0; remap && k < keep.count; ++k)
              keep.index[static_cast<std::size_t>(i * keep.count + k)] =
                  transform_patch(tf[static_cast<std::size_t>(i)], active.at(i, k), grid);
          }
      const nn::TokenIndex& stepped = opt_.step_whole_canvas ? all : active;  // the pixels Adam steps
      float loss = 0.0f;
      bool done = false;
      if constexpr (IterationGraph<Device>::available)
        if (opt_.cuda_graph) {  // steps 2 and 3 below, enqueued uncaptured, captured or replayed (one K per graph)
          loss = graph.run(keep.count, adam_params(t), [&] {
            auto logits = model_.forward(x, &keep);
            auto dlogits = TensorD::zeros(logits.shape());
            (void)objective_.loss(logits, labels, dlogits);  // deferred: adds into the graph's loss scalar
            auto dx = model_.backward(dlogits, Backward::InputOnly);
            (void)prior_.add(x, dx);
            masked_adam_step(graph, x, dx, m, v, stepped, p, range);
          });
          check(std::isfinite(loss), "Inverter::run: the loss became ", loss, " at iteration ", t);
          count_updates(stepped, res.update_counts);
          if (opt_.kept_image == KeptImage::BestAfterStep) best.offer(loss, x);
          done = true;
        }
      if (!done) {
        // 2. forward on the active tokens, objective, input-only backward, prior
        auto logits = model_.forward(augmented ? xa_of(xa, x) : x, &keep);
        auto dlogits = TensorD::zeros(logits.shape());
        loss = objective_.loss(logits, labels, dlogits);
        auto dxa = model_.backward(dlogits, Backward::InputOnly);
        if constexpr (kCpu)
          if (augmented)
            for (std::int64_t i = 0; i < b; ++i)
              apply_transform(tf[static_cast<std::size_t>(i)], dxa, g, i, static_cast<int>(p), true);
        TensorD& dx = augmented ? xa_of(g, dxa) : dxa;
        loss += prior_.add(x, dx);
        check(std::isfinite(loss), "Inverter::run: the loss became ", loss, " at iteration ", t);
        if (opt_.kept_image == KeptImage::Best) best.offer(loss, x);
        // 3. Adam on the active pixels only (or the whole canvas), then clip them
        masked_adam_step(adam_params(t), x, dx, m, v, stepped, p, range);  // ADL: the backend's
        count_updates(stepped, res.update_counts);
        if (opt_.kept_image == KeptImage::BestAfterStep) best.offer(loss, x);
      }
      // 4. schedule: rank by this forward's CLS attention (keep order = active order); on a device backend the
      //    attention and the images come to the host only here. Images leave from the kept canvas.
      const TensorD& kept = opt_.kept_image == KeptImage::Last ? x : best.x;
      if (event_now) {
        active = apply_event(ev, active, host_tensor(model_.last_cls_attention()), host_tensor(kept), labels, t, grid,
                             res);
        best.loss = std::numeric_limits<float>::infinity();  // a new stage
      }
      event_before = event_now;
      if (t == total) emit_final(active, host_tensor(kept), labels, t, res);
      IterationStats st{t, loss, keep.count, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
      res.history.push_back(st);
      if (on_iteration) on_iteration(st);
    }
    return res;
  }

 private:
  // The canvas of the lowest loss offered since the stage began (loss = +inf starts a stage).
  struct Best {
    float loss = std::numeric_limits<float>::infinity();
    TensorD x;
    void offer(float l, const TensorD& canvas) {
      if (!(l < loss)) return;
      loss = l;
      x = canvas.clone();
    }
  };

  // The augmented buffer on the CPU backend; on a device backend (no augmentation) the plain one.
  static TensorD& xa_of(Tensor<Cpu>& cpu_buffer, TensorD& plain) {
    if constexpr (kCpu) {
      (void)plain;
      return cpu_buffer;
    } else {
      (void)cpu_buffer;
      return plain;
    }
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

  // Adam's step at iteration t (bias corrections by the global step).
  [[nodiscard]] fn::AdamStep adam_params(int t) const {
    return {opt_.lr, opt_.beta1, opt_.beta2, opt_.eps, 1.0f - static_cast<float>(std::pow(opt_.beta1, t)),
            1.0f - static_cast<float>(std::pow(opt_.beta2, t))};
  }

  static void count_updates(const nn::TokenIndex& active, Tensor<Cpu>& counts) {
    const std::int64_t n = counts.dim(1);
    for (std::int64_t bk = 0; bk < active.batch * active.count; ++bk)
      counts[(bk / active.count) * n + active.index[static_cast<std::size_t>(bk)]] += 1.0f;
  }

  SparseImage make_image(const Tensor<Cpu>& x, std::int64_t i, const std::vector<std::int32_t>& patches, int label,
                         int t) const {
    const std::int64_t per = x.numel() / x.dim(0);
    SparseImage s{Tensor<Cpu>::empty(Shape{x.dim(1), x.dim(2), x.dim(3)}), Tensor<Cpu>::zeros(Shape{model_.num_patches()}),
                  label, t};
    std::copy(x.data() + i * per, x.data() + (i + 1) * per, s.pixels.data());
    for (auto q : patches) s.mask[q] = 1.0f;
    return s;
  }

  nn::TokenIndex apply_event(const ScheduleEvent& ev, const nn::TokenIndex& active, const Tensor<Cpu>& attn,
                             const Tensor<Cpu>& x, const std::vector<int>& labels, int t, int grid, InversionResult& res) {
    const std::int64_t b = active.batch, k = active.count;
    const std::int64_t remove = std::min<std::int64_t>(ev.count, k - 1);  // at least one patch stays active
    check(attn.rank() == 2 && attn.dim(1) == k, "Inverter: CLS attention ", attn.shape().str(), " for ", k, " active patches");
    nn::TokenIndex next{b, k - remove, {}};
    for (std::int64_t i = 0; i < b; ++i) {
      RankInput in{{active.index.data() + i * k, static_cast<std::size_t>(k)},
                   {attn.data() + i * k, static_cast<std::size_t>(k)}, grid, i, t, opt_.seed};
      auto ranked = selector_.rank(in);
      check(static_cast<std::int64_t>(ranked.size()) == k, "Inverter: selector returned ", ranked.size(),
            " patches for ", k, " active");
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
      std::vector<std::int32_t> patches(active.index.begin() + i * active.count, active.index.begin() + (i + 1) * active.count);
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
