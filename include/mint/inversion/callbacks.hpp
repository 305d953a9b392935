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
//   end(const InversionResult&)              once, after the last iteration
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
