// mint/inversion/inverter.hpp -- Inverter<Model, Objective, Regularizer, Selector, Schedule, Augmentation>:
// the model-inversion engine (DESIGN.md "data flow of one inversion").
//
// Each iteration: (augment) -> forward on the active patches only -> objective + prior -> input-only backward
// -> Adam on the active pixels only -> clip to the valid pixel range -> at a schedule event, rank the active
// patches by the latest forward's CLS attention and prune (SMI) or detach (PRI) them. Dropped and detached
// patches are never fed to the model again, so every later iteration costs less.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <vector>

#include "mint/backend/functors.hpp"
#include "mint/core/rng.hpp"
#include "mint/inversion/augmentation.hpp"
#include "mint/inversion/concepts.hpp"
#include "mint/inversion/objectives.hpp"
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
};

// What one iteration did (for progress bars and cost accounting).
struct IterationStats {
  int iteration = 0;
  float loss = 0.0f;            // objective + prior
  std::int64_t active = 0;      // active patches per image during this iteration's forward
  double seconds = 0.0;         // wall time of the iteration
};

struct InversionResult {
  std::vector<SparseImage> images;  // in order of creation (PRI: by detachment point, then image)
  Tensor<Cpu> update_counts;        // [B, N]: Adam updates each patch received
  std::vector<IterationStats> history;
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

  // Inverts one batch: labels.size() images, each a trajectory that yields one image (DMI, SMI) or v images
  // (PRI). `on_iteration` (optional) is called after every iteration with its statistics.
  InversionResult run(const std::vector<int>& labels, const std::function<void(const IterationStats&)>& on_iteration = {}) {
    const auto& cfg = model_.config();
    const std::int64_t b = static_cast<std::int64_t>(labels.size()), n = model_.num_patches(), p = model_.patch_size();
    const int grid = model_.grid(), total = opt_.iterations;
    check(b > 0, "Inverter::run: no labels");
    check(total >= 1, "Inverter::run: iterations must be >= 1, got ", total);
    const Shape shape{b, cfg.in_chans, cfg.img_size, cfg.img_size};
    auto x = Tensor<Cpu>::empty(shape);
    fill_normal(x, opt_.seed, 0, 0.0f, 1.0f);  // seeded Gaussian noise in normalised space
    for (std::int64_t i = 0; i < x.numel(); ++i) x[i] = std::clamp(x[i], opt_.pixel_lo, opt_.pixel_hi);
    auto m = Tensor<Cpu>::zeros(shape), v = Tensor<Cpu>::zeros(shape), xa = Tensor<Cpu>::empty(shape),
         g = Tensor<Cpu>::empty(shape);
    InversionResult res;
    res.update_counts = Tensor<Cpu>::zeros(Shape{b, n});
    nn::TokenIndex active = nn::TokenIndex::all(b, n);  // per image, in token order
    std::vector<PatchTransform> tf(static_cast<std::size_t>(b));

    for (int t = 1; t <= total; ++t) {
      const auto start = std::chrono::steady_clock::now();
      // 1. augmentation: the model sees transformed images; the keep set is the active patches' new places
      nn::TokenIndex keep = active;
      bool augmented = false;
      for (std::int64_t i = 0; i < b; ++i) {
        tf[static_cast<std::size_t>(i)] = augmentation_.sample(t, i, opt_.seed, grid);
        const auto& f = tf[static_cast<std::size_t>(i)];
        if (f.flip || f.shift_x || f.shift_y) augmented = true;
      }
      check(!(augmented && reads_model_activations<R>), "Inverter::run: the prior reads the model's activations "
            "(BNPrior) and cannot be combined with an augmentation that transforms the images (jitter/flip): its "
            "gradient would be taken in the transformed frame; use NoAugmentation or JitterFlip{false, false}");
      if (augmented)
        for (std::int64_t i = 0; i < b; ++i) {
          apply_transform(tf[static_cast<std::size_t>(i)], x, xa, i, static_cast<int>(p), false);
          for (std::int64_t k = 0; k < keep.count; ++k)
            keep.index[static_cast<std::size_t>(i * keep.count + k)] =
                transform_patch(tf[static_cast<std::size_t>(i)], active.at(i, k), grid);
        }
      // 2. forward on the active tokens, objective, input-only backward, prior
      auto logits = model_.forward(augmented ? xa : x, &keep);
      auto dlogits = Tensor<Cpu>::zeros(logits.shape());
      float loss = objective_.loss(logits, labels, dlogits);
      auto dxa = model_.backward(dlogits, Backward::InputOnly);
      if (augmented)
        for (std::int64_t i = 0; i < b; ++i) apply_transform(tf[static_cast<std::size_t>(i)], dxa, g, i, static_cast<int>(p), true);
      Tensor<Cpu>& dx = augmented ? g : dxa;
      loss += prior_.add(x, dx);
      check(std::isfinite(loss), "Inverter::run: the loss became ", loss, " at iteration ", t);
      // 3. Adam on the active pixels only, then clip them
      adam_step(x, dx, m, v, active, t, p, res.update_counts);
      // 4. schedule: rank by this forward's CLS attention (keep order = active order)
      const ScheduleEvent ev = schedule_.event(t, total, static_cast<int>(active.count), static_cast<int>(n));
      const auto& attn = model_.last_cls_attention();
      if (ev.kind != ScheduleEvent::Kind::None && ev.count > 0)
        active = apply_event(ev, active, attn, x, labels, t, grid, res);
      if (t == total) emit_final(active, x, labels, t, res);
      IterationStats st{t, loss, keep.count, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()};
      res.history.push_back(st);
      if (on_iteration) on_iteration(st);
    }
    return res;
  }

 private:
  void adam_step(Tensor<Cpu>& x, const Tensor<Cpu>& dx, Tensor<Cpu>& m, Tensor<Cpu>& v, const nn::TokenIndex& active,
                 int t, std::int64_t p, Tensor<Cpu>& counts) const {
    const fn::AdamStep step{opt_.lr, opt_.beta1, opt_.beta2, opt_.eps,
                            1.0f - static_cast<float>(std::pow(opt_.beta1, t)),
                            1.0f - static_cast<float>(std::pow(opt_.beta2, t))};
    const std::int64_t b = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3), gw = w / p, n = counts.dim(1);
    cpu::parallel_for(b * active.count, [&](std::int64_t bk) {
      const std::int64_t i = bk / active.count;
      const std::int32_t patch = active.index[static_cast<std::size_t>(bk)];
      const std::int64_t y0 = (patch / gw) * p, x0 = (patch % gw) * p;
      for (std::int64_t ch = 0; ch < c; ++ch)
        for (std::int64_t y = y0; y < y0 + p; ++y)
          for (std::int64_t xx = x0; xx < x0 + p; ++xx) {
            const std::int64_t o = ((i * c + ch) * h + y) * w + xx;
            step(x[o], dx[o], m[o], v[o]);
            x[o] = std::clamp(x[o], opt_.pixel_lo, opt_.pixel_hi);
          }
      counts[i * n + patch] += 1.0f;
    });
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
