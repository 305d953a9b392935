// mint/inversion/callbacks.hpp -- what a run reports to, and what can end it early (ensmallen's callbacks/ idea:
// the optimiser calls every callback it was handed at fixed points of the loop; a callback is any object with some
// of the hooks below, so a new one is a struct, and an unused hook costs nothing).
//
// Hooks (each optional; the engine calls those a callback has, in the order the callbacks were passed):
//   begin(const RunInfo&)                    once, before the first iteration
//   on_iteration(const IterationStats&)      after every iteration; returning true ends the run there (early stop:
//                                            the trajectories in flight leave as images of that iteration)
//   operator()(const IterationStats&)        the same, for a plain function or lambda (a progress display)
//   on_event(const EventInfo&, images)       after a schedule event, with every image made so far
//   wants_checkpoint(int t) + checkpoint(const CheckpointState&)
//                                            a host copy of the canvas and the active set after iteration t, only
//                                            at the iterations the callback asks for (a device run pays the copy
//                                            there only)
//   evaluated(float loss, const Tensor<D>& canvas)
//                                            after the loss is computed, before the step (not called when the
//                                            iterations run as a CUDA graph: RunInfo::cuda_graph)
//   stepped(float loss, const Tensor<D>& canvas)
//                                            after the step and the clip, before a schedule event
//   image_canvas() -> const Tensor<D>*       the canvas images leave from at events and at the end (best-image
//                                            keeping); nullptr: the live canvas. At most one callback may give one.
//   end(const InversionResult&)              once, after the last iteration
// D is the model's backend (Cpu, or Cuda: the canvas stays on the GPU).
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "mint/inversion/concepts.hpp"
#include "mint/inversion/cost.hpp"
#include "mint/inversion/sparse_image.hpp"

namespace mint {

// Which canvas an image is taken from when it leaves the run (at a detachment or at T): KeepBest's choice, and
// InversionOptions::kept_image's, which the engine runs as a KeepBest.
enum class KeptImage {
  Last,           // the canvas as it is then (SMI's code in effect: its best_inputs aliases the optimised tensor)
  Best,           // the canvas the lowest loss of the stage was computed on (before that iteration's step)
  BestAfterStep,  // DeepInversion's deepinversion.py: best_inputs = inputs.data.clone() after the step and clip
};
// A stage is the span since the previous schedule event (or the start): losses across an event are of different
// active sets and are not compared (docs/inversion.md, "Best-image keeping").

struct InversionResult {
  std::vector<SparseImage> images;  // in order of creation (PRI: by detachment point, then image)
  Tensor<Cpu> update_counts;        // [B, N]: Adam updates each patch received
  std::vector<IterationStats> history;
  bool interrupted = false;         // InversionOptions::stop ended the run after history.size() iterations
  bool stopped_early = false;       // a callback ended it: the trajectories in flight left at that iteration
};

// A schedule event as it happened.
struct EventInfo {
  int iteration = 0;
  ScheduleEvent event;
  std::int64_t active_before = 0, active_after = 0;  // active patches per image
};

// The state after an iteration, for a checkpoint: the whole canvas on the host, the active patches, the images
// made so far.
struct CheckpointState {
  int iteration = 0;
  const Tensor<Cpu>& canvas;                 // [B, C, H, W]
  const nn::TokenIndex& active;
  const std::vector<SparseImage>& images;
};

// A plain function of the statistics (what run(labels, on_iteration) always took).
using IterationCallback = std::function<void(const IterationStats&)>;

namespace detail {
template <class C>
bool callback_live(const C& c) {
  if constexpr (requires { static_cast<bool>(c); }) return static_cast<bool>(c);  // an empty std::function: none
  return true;
}
template <class C>
void callback_begin(C& c, const RunInfo& info) {
  if constexpr (requires { c.begin(info); }) c.begin(info);
}
// true: the callback asks the run to stop after this iteration.
template <class C>
bool callback_iteration(C& c, const IterationStats& s) {
  if constexpr (requires { { c.on_iteration(s) } -> std::convertible_to<bool>; }) {
    return static_cast<bool>(c.on_iteration(s));
  } else if constexpr (requires { c.on_iteration(s); }) {
    c.on_iteration(s);
  } else if constexpr (std::is_invocable_v<C&, const IterationStats&>) {
    if (callback_live(c)) c(s);
  }
  return false;
}
template <class C>
void callback_event(C& c, const EventInfo& e, const std::vector<SparseImage>& images) {
  if constexpr (requires { c.on_event(e, images); }) c.on_event(e, images);
}
template <class C>
bool callback_wants_checkpoint(const C& c, int t) {
  if constexpr (requires { { c.wants_checkpoint(t) } -> std::convertible_to<bool>; }) return c.wants_checkpoint(t);
  return false;
}
template <class C>
void callback_checkpoint(C& c, const CheckpointState& st) {
  if constexpr (requires { c.checkpoint(st); }) c.checkpoint(st);
}
template <class C, class T>
void callback_evaluated(C& c, float loss, const T& canvas) {
  if constexpr (requires { c.evaluated(loss, canvas); }) c.evaluated(loss, canvas);
}
template <class C, class T>
void callback_stepped(C& c, float loss, const T& canvas) {
  if constexpr (requires { c.stepped(loss, canvas); }) c.stepped(loss, canvas);
}
// The canvas callback c gives images from (nullptr: none), counted in `givers` when it gives one.
template <class T, class C>
const T* callback_image_canvas(const C& c, int& givers) {
  if constexpr (requires { { c.image_canvas() } -> std::convertible_to<const T*>; }) {
    const T* p = c.image_canvas();
    if (p != nullptr) ++givers;
    return p;
  }
  return nullptr;
}
template <class C>
void callback_end(C& c, const InversionResult& r) {
  if constexpr (requires { c.end(r); }) c.end(r);
}
}  // namespace detail

// Early stop at the minimum loss (ensmallen's EarlyStopAtMinLoss): ends the run once the loss has not improved
// on its best by more than min_delta for `patience` iterations. A schedule event starts a new comparison (the
// active set, and with it the loss, changes there).
// requires: patience >= 1 (checked in begin()).
struct EarlyStop {
  int patience = 100;
  float min_delta = 0.0f;
  void begin(const RunInfo&) {
    check(patience >= 1, "EarlyStop: patience ", patience, " must be >= 1");
    best_ = std::numeric_limits<float>::infinity(), since_ = 0, active_ = -1;
  }
  bool on_iteration(const IterationStats& s) {
    if (s.active != active_) best_ = std::numeric_limits<float>::infinity(), since_ = 0, active_ = s.active;
    if (s.loss < best_ - min_delta) {
      best_ = s.loss, since_ = 0;
      return false;
    }
    return ++since_ >= patience;
  }

  // run state (begin() resets it; public so that EarlyStop{.patience = ...} stays an aggregate)
  float best_ = std::numeric_limits<float>::infinity();
  int since_ = 0;
  std::int64_t active_ = -1;
};

// Best-image keeping (DeepInversion's deepinversion.py and SMI's smi.py keep `best_inputs`): images leave a stage
// from the canvas of its lowest loss instead of the last one. `when` says which canvas a loss belongs to (KeptImage;
// Last keeps nothing). A schedule event starts a new stage. Device is the model's backend; the kept canvas is a
// copy on it (one clone per improvement).
// requires: not KeptImage::Best when the iterations run as a CUDA graph (checked in begin(): a graph exposes no
//           canvas between the loss and the step).
template <class Device = Cpu>
class KeepBest {
 public:
  KeptImage when;
  explicit KeepBest(KeptImage w = KeptImage::Best) : when(w) {}
  void begin(const RunInfo& info) {
    check(!(info.cuda_graph && when == KeptImage::Best), "KeepBest: KeptImage::Best needs the canvas before each "
          "step, which a CUDA-graph iteration does not expose; use BestAfterStep or no graph");
    loss_ = std::numeric_limits<float>::infinity();
    canvas_ = Tensor<Device>{};
  }
  void evaluated(float loss, const Tensor<Device>& canvas) {
    if (when == KeptImage::Best) offer(loss, canvas);
  }
  void stepped(float loss, const Tensor<Device>& canvas) {
    if (when == KeptImage::BestAfterStep) offer(loss, canvas);
  }
  void on_event(const EventInfo&, const std::vector<SparseImage>&) { loss_ = std::numeric_limits<float>::infinity(); }
  [[nodiscard]] const Tensor<Device>* image_canvas() const { return when == KeptImage::Last ? nullptr : &canvas_; }


 private:
  float loss_ = std::numeric_limits<float>::infinity();  // the stage's lowest loss so far
  Tensor<Device> canvas_;                                  // the canvas it belongs to
  void offer(float loss, const Tensor<Device>& canvas) {
    if (!(loss < loss_)) return;
    loss_ = loss;
    canvas_ = canvas.clone();
  }
};

// A checkpoint every `every` iterations (and after the last): `save` receives the state (mint-synthesize's
// resumable shards, or a user's snapshots). requires: every >= 1 (checked in begin()).
struct Checkpoint {
  int every = 100;
  std::function<void(const CheckpointState&)> save;
  void begin(const RunInfo& info) {
    check(every >= 1, "Checkpoint: every ", every, " must be >= 1");
    check(static_cast<bool>(save), "Checkpoint: no save function");
    total_ = info.iterations;
  }
  [[nodiscard]] bool wants_checkpoint(int t) const { return t % every == 0 || t == total_; }
  void checkpoint(const CheckpointState& st) { save(st); }

  int total_ = 0;  // run state (set by begin(); public so that Checkpoint{.every = ...} stays an aggregate)
};

// mint::CostMeter as a callback: begin(batch) at the start, every iteration's active count, end() at the end.
struct MeterCallback {
  CostMeter& meter;
  void begin(const RunInfo& info) { meter.begin(info.batch); }
  void on_iteration(const IterationStats& s) { meter(s); }
  void end(const InversionResult&) { meter.end(); }
};

}  // namespace mint
