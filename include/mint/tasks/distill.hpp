// mint/tasks/distill.hpp -- data-free knowledge distillation (SMI Eq. 6, PRI Sec. 5 / App. D): a student ViT
// learns from synthetic images only, by the KL divergence between the teacher's and its own logits at a
// temperature tau (nn::kl_div_temperature: tau^2 * KL, batch mean).
//
// Sparse images feed both models only their kept patches, gathered exactly as during inversion
// (ViT::forward(images, &keep)). A TokenIndex needs the same kept count K for every image of a forward, so
// each step's batch is split by K into groups: one forward/backward per group, the gradients accumulated with
// weight (group size / batch size), then ONE optimiser step. The step's loss and gradient are therefore the
// batch mean over all its images, whatever the mix of K (PRI's v sparse images per trajectory have two
// distinct counts, e.g. 12 and 13 for v = 4 on 49 patches). A group whose images keep all N patches runs
// without a keep set (the same logits, see the tests).
//
// The protocols:
//   distill_offline:     a fixed synthetic data set (load_synthetic_dataset), shuffled each epoch, batches of
//                        DistillOptions::batch images (the last one of an epoch may be smaller).
//   distill_linear_probe: distill_offline with only the head trainable, computed on cached backbone features
//                        (the same result, no backbone pass per step).
//   distill_alternating: a callable produces the next synthetic batch (e.g. one inversion run); one
//                        distillation step is taken on it and it is dropped, so every synthetic image is used
//                        exactly once (PRI App. D). The inverter stays in mint/inversion; tasks only calls back.
//   distill_linear_probe_pool: SMI's official loop (test_kt.py): a pool that grows by a synthesis batch per step,
//                        one head-only step per growth on a sample of the pool so far.
//
// Optimiser: optim::SGD, by default PRI App. D's lr 0.1, momentum 0.9, weight decay 1e-4 (all parameters), no
// schedule. DistillOptions::trainable freezes parameters (e.g. the head only = SMI's linear probing).
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mint/core/rng.hpp"
#include "mint/inversion/sparse_image.hpp"
#include "mint/models/init.hpp"
#include "mint/models/vit.hpp"
#include "mint/nn/linear.hpp"
#include "mint/nn/losses.hpp"
#include "mint/nn/softmax.hpp"
#include "mint/nn/tokens.hpp"
#include "mint/optim/sgd.hpp"
#include "mint/tasks/evaluate.hpp"

namespace mint::tasks {

// The patches an image keeps: the indices where mask > 0.5, ascending (row-major patch order, the token order
// of inversion). Throws if the mask keeps none.
inline std::vector<std::int32_t> kept_patches(const Tensor<Cpu>& mask) {
  std::vector<std::int32_t> k;
  for (std::int64_t i = 0; i < mask.numel(); ++i)
    if (mask[i] > 0.5f) k.push_back(static_cast<std::int32_t>(i));
  check(!k.empty(), "kept_patches: the mask keeps no patch");
  return k;
}

// Images of one kept count K, ready for ViT::forward(images, keep()).
struct SparseGroup {
  Tensor<Cpu> images;                  // [G, C, H, W]
  std::optional<nn::TokenIndex> index;  // nullopt when K = N (dense: forward without a keep set)
  std::vector<int> labels;             // the images' target classes
  std::vector<std::size_t> members;    // their positions in the input
  [[nodiscard]] const nn::TokenIndex* keep() const { return index ? &*index : nullptr; }
  [[nodiscard]] std::int64_t size() const { return static_cast<std::int64_t>(members.size()); }
};

// Splits `images` by kept count (groups in ascending K; input order kept inside a group). flip (optional, one
// entry per image): mirror that image horizontally, pixels and mask together (patch column c -> G-1-c), so
// the kept patches stay the same content. requires: all pixels [C, H, W] alike, H = W, masks [N] alike with
// N a square, H divisible by sqrt(N).
inline std::vector<SparseGroup> group_by_kept_count(std::span<const SparseImage> images,
                                                    const std::vector<char>* flip = nullptr) {
  check(!images.empty(), "group_by_kept_count: no images");
  check(!flip || flip->size() == images.size(), "group_by_kept_count: ", flip ? flip->size() : 0, " flip flags for ",
        images.size(), " images");
  const Shape px = images.front().pixels.shape();
  const std::int64_t n = images.front().mask.numel();
  check(px.rank() == 3 && px[1] == px[2], "group_by_kept_count: pixels ", px.str(), " must be [C, H, W] with H = W");
  std::int64_t g = 0;
  while (g * g < n) ++g;
  check(g * g == n && px[2] % g == 0, "group_by_kept_count: a mask of ", n, " patches does not tile ", px.str());
  const std::int64_t c = px[0], h = px[1], w = px[2], per = px.numel();
  std::map<std::int64_t, SparseGroup> by_k;
  std::vector<std::vector<std::int32_t>> kept(images.size());
  for (std::size_t i = 0; i < images.size(); ++i) {
    check_shape(images[i].pixels, px, "group_by_kept_count: image pixels");
    check_shape(images[i].mask, Shape{n}, "group_by_kept_count: image mask");
    kept[i] = kept_patches(images[i].mask);
    if (flip && (*flip)[i]) {
      for (auto& q : kept[i]) q = static_cast<std::int32_t>((q / g) * g + (g - 1 - q % g));
      std::sort(kept[i].begin(), kept[i].end());
    }
    by_k[static_cast<std::int64_t>(kept[i].size())].members.push_back(i);
  }
  std::vector<SparseGroup> out;
  for (auto& [k, grp] : by_k) {
    const std::int64_t m = grp.size();
    grp.images = Tensor<Cpu>::empty(Shape{m, c, h, w});
    if (k < n) grp.index = nn::TokenIndex{m, k, std::vector<std::int32_t>(static_cast<std::size_t>(m * k))};
    for (std::int64_t j = 0; j < m; ++j) {
      const std::size_t i = grp.members[static_cast<std::size_t>(j)];
      const float* src = images[i].pixels.data();
      float* dst = grp.images.data() + j * per;
      if (flip && (*flip)[i]) {
        for (std::int64_t r = 0; r < c * h; ++r)
          for (std::int64_t x = 0; x < w; ++x) dst[r * w + x] = src[r * w + (w - 1 - x)];
      } else {
        std::copy(src, src + per, dst);
      }
      grp.labels.push_back(images[i].label);
      if (grp.index) std::copy(kept[i].begin(), kept[i].end(), grp.index->index.begin() + j * k);
    }
    out.push_back(std::move(grp));
  }
  return out;
}

// The teacher's softmax probability of each image's label on its kept patches (the forward distillation and
// calibration run), and its top class, in chunks of 128 images grouped by kept count. requires: labels in
// [0, classes) (checked, naming the image). ensures: one entry per image, in input order; confidence in [0, 1].
struct TeacherPredictions {
  std::vector<double> confidence;
  std::vector<int> top;
};
inline TeacherPredictions teacher_predictions(ViT<>& teacher, std::span<const SparseImage> data) {
  TeacherPredictions out{std::vector<double>(data.size()), std::vector<int>(data.size())};
  for (std::size_t s = 0; s < data.size(); s += 128) {
    const auto chunk = data.subspan(s, std::min<std::size_t>(128, data.size() - s));
    for (const auto& g : group_by_kept_count(chunk)) {
      auto p = nn::softmax(teacher.forward(g.images, g.keep()));
      const std::int64_t k = p.dim(1);
      for (std::int64_t i = 0; i < g.size(); ++i) {
        const std::size_t at = s + g.members[static_cast<std::size_t>(i)];
        const int label = g.labels[static_cast<std::size_t>(i)];
        check(label >= 0 && label < k, "teacher_predictions: image ", at, " has label ", label, ", the teacher has ",
              k, " classes");
        const float* row = p.data() + i * k;
        out.confidence[at] = row[label];
        out.top[at] = static_cast<int>(std::max_element(row, row + k) - row);
      }
    }
  }
  return out;
}
inline std::vector<double> teacher_confidence(ViT<>& teacher, std::span<const SparseImage> data) {
  return teacher_predictions(teacher, data).confidence;
}

// Real labelled images as SparseImages keeping every patch (e.g. to run distillation on real data through
// the same API). `mask_patches` is the model's patch count N.
inline std::vector<SparseImage> dense_sparse_images(const LabeledImages& data, std::int64_t mask_patches,
                                                    std::int64_t first = 0, std::int64_t count = -1) {
  const std::int64_t m = data.size(), end = count < 0 ? m : std::min(m, first + count);
  check(first >= 0 && first <= m, "dense_sparse_images: first ", first, " outside 0..", m);
  const Shape& s = data.images.shape();
  const std::int64_t per = s.numel() / std::max<std::int64_t>(m, 1);
  std::vector<SparseImage> out;
  for (std::int64_t i = first; i < end; ++i) {
    SparseImage si;
    si.pixels = Tensor<Cpu>::empty(Shape{s[1], s[2], s[3]});
    std::copy(data.images.data() + i * per, data.images.data() + (i + 1) * per, si.pixels.data());
    si.mask = Tensor<Cpu>::full(Shape{mask_patches}, 1.0f);
    si.label = data.labels[static_cast<std::size_t>(i)];
    out.push_back(std::move(si));
  }
  return out;
}

struct DistillOptions {
  float temperature = 20.0f;  // SMI Sec. 5.2 (tau = 20)
  optim::SGDOptions sgd = {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 1e-4f};  // PRI App. D
  std::int64_t batch = 128;   // offline protocol: images per step (PRI App. D)
  bool flip = false;          // random horizontal flip of each image at each use (p = 1/2), teacher and student alike
  std::uint64_t seed = 0;     // shuffling and flips
  // Which student parameters train (by timm name); empty: all. [](auto& n) { return n.rfind("head", 0) == 0; }
  // is SMI's linear probing.
  std::function<bool(const std::string&)> trainable = {};
};

struct DistillStepStats {
  float loss = 0.0f;       // batch mean of tau^2 KL(teacher || student)
  std::int64_t images = 0;  // images in the step
  std::int64_t groups = 0;  // forwards (distinct kept counts)
};

namespace detail {
// The Philox stream of the per-image flip draws (Distiller and distill_linear_probe draw the same flips).
inline constexpr std::uint32_t kDistillFlipStream = 0x0d15'7111u;

// The pair and options every distillation entry point requires: the same images (size, channels, patch grid:
// keep sets must mean the same patches), the same number of classes, a positive temperature.
inline void check_distill_pair(const ViT<>& teacher, const ViT<>& student, const DistillOptions& opt,
                               const char* what) {
  const auto &t = teacher.config(), &s = student.config();
  check(t.img_size == s.img_size && t.in_chans == s.in_chans && t.patch == s.patch, what, ": teacher images ",
        t.in_chans, "x", t.img_size, " patch ", t.patch, " but student ", s.in_chans, "x", s.img_size, " patch ",
        s.patch, " (the keep sets must mean the same patches)");
  check(t.classes == s.classes, what, ": teacher has ", t.classes, " classes, student ", s.classes);
  check(opt.temperature > 0.0f, what, ": temperature must be > 0, got ", opt.temperature);
}

// The batch-mean KD loss's gradient, added into the student's Param::grad (Full backward): the batch split by
// kept count (and mirrored where flip says), one teacher and student forward and one student backward per group,
// each group weighted by its share of the batch. The distillation step of every protocol, and of
// quantization-aware training (mint/tasks/qat.hpp).
inline DistillStepStats kd_backward(ViT<>& teacher, ViT<>& student, std::span<const SparseImage> batch,
                                    const std::vector<char>* flip, float temperature) {
  const auto groups = group_by_kept_count(batch, flip);
  const double total = static_cast<double>(batch.size());
  DistillStepStats st;
  for (const auto& g : groups) {
    const float w = static_cast<float>(static_cast<double>(g.size()) / total);
    const auto t_logits = teacher.forward(g.images, g.keep());
    const auto s_logits = student.forward(g.images, g.keep());
    auto d = Tensor<Cpu>::zeros(s_logits.shape());
    st.loss += w * nn::kl_div_temperature(s_logits, t_logits, temperature, &d, w);
    student.backward(d, Backward::Full);
  }
  st.images = static_cast<std::int64_t>(batch.size());
  st.groups = static_cast<std::int64_t>(groups.size());
  return st;
}
}  // namespace detail

// One distillation step at a time on a teacher/student pair (both must outlive it).
class Distiller {
 public:
  // requires: teacher and student take the same images (size, channels, patch grid) and have the same number of
  //           classes; opt.temperature > 0.
  Distiller(ViT<>& teacher, ViT<>& student, DistillOptions opt = {})
      : teacher_(teacher), student_(student), opt_(std::move(opt)), sgd_(opt_.sgd) {
    detail::check_distill_pair(teacher, student, opt_, "Distiller");
  }

  // requires: batch non-empty, every image valid for the models (see group_by_kept_count).
  // ensures:  one optimiser step on the batch-mean KD loss; returns it.
  DistillStepStats step(std::span<const SparseImage> batch) {
    std::vector<char> flips;
    if (opt_.flip) {
      flips.resize(batch.size());
      for (auto& f : flips) f = philox_uniform(opt_.seed, detail::kDistillFlipStream, flip_counter_++) < 0.5f;
    }
    student_.zero_grad();
    auto st = detail::kd_backward(teacher_, student_, batch, opt_.flip ? &flips : nullptr, opt_.temperature);
    check(std::isfinite(st.loss), "Distiller: the KD loss is ", st.loss, " at step ", steps_, "; lower the lr");
    if (opt_.trainable)
      for (auto& [name, p] : student_.parameters())
        if (!opt_.trainable(name)) p.grad = Tensor<Cpu>{};  // SGD skips a parameter without a gradient
    sgd_.step(student_.parameters());
    ++steps_;
    return st;
  }

  [[nodiscard]] optim::SGD<>& optimizer() { return sgd_; }
  [[nodiscard]] std::int64_t steps() const { return steps_; }
  [[nodiscard]] const DistillOptions& options() const { return opt_; }

 private:
  ViT<>& teacher_;
  ViT<>& student_;
  DistillOptions opt_;
  optim::SGD<> sgd_;
  std::int64_t steps_ = 0;
  std::uint64_t flip_counter_ = 0;
};

struct DistillLog {
  std::vector<float> loss;     // per step
  std::int64_t images = 0;     // synthetic images consumed (with repetition)
  double seconds = 0.0;        // wall time of the steps (and, alternating, of producing the batches)
};
using StepCallback = std::function<void(std::int64_t step, const DistillStepStats&)>;

namespace detail {
// A seeded permutation of 0..n-1 (Fisher-Yates on 64 Philox bits per swap).
inline std::vector<std::size_t> permutation(std::size_t n, std::uint64_t seed, std::uint32_t stream) {
  std::vector<std::size_t> p(n);
  std::iota(p.begin(), p.end(), std::size_t{0});
  for (std::size_t i = n; i-- > 1;) {
    const auto w = philox_block(seed, stream, static_cast<std::uint64_t>(i));
    const std::uint64_t r = (static_cast<std::uint64_t>(w.w[0]) << 32) | w.w[1];
    std::swap(p[i], p[static_cast<std::size_t>(r % (i + 1))]);
  }
  return p;
}

// `epochs` passes over `data`, epoch e shuffled by Philox (seed, stream_base + e), in batches of `batch` images
// (the last of an epoch possibly smaller); step(batch) -> DistillStepStats runs each. The loop of every offline
// protocol (distill_offline, quantization_aware_training); returns their log.
template <class Step>
DistillLog shuffled_epochs(std::span<const SparseImage> data, std::int64_t epochs, std::int64_t batch,
                           std::uint64_t seed, std::uint32_t stream_base, Step&& step) {
  const auto t0 = std::chrono::steady_clock::now();
  DistillLog log;
  std::vector<SparseImage> images;
  const auto per = static_cast<std::size_t>(batch);
  for (std::int64_t e = 0; e < epochs; ++e) {
    const auto perm = permutation(data.size(), seed, stream_base + static_cast<std::uint32_t>(e));
    for (std::size_t s = 0; s < perm.size(); s += per) {
      images.clear();
      for (std::size_t j = s; j < std::min(perm.size(), s + per); ++j) images.push_back(data[perm[j]]);
      const DistillStepStats st = step(std::span<const SparseImage>(images));
      log.loss.push_back(st.loss);
      log.images += st.images;
    }
  }
  log.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return log;
}
}  // namespace detail

// Offline protocol: `epochs` passes over `data`, each shuffled (Philox, opt.seed, stream 2^20 + epoch), in
// steps of opt.batch images. on_step (optional) is called after every step.
inline DistillLog distill_offline(ViT<>& teacher, ViT<>& student, std::span<const SparseImage> data,
                                  std::int64_t epochs, const DistillOptions& opt = {}, const StepCallback& on_step = {}) {
  check(!data.empty() && epochs >= 0 && opt.batch > 0, "distill_offline: need images, epochs >= 0, batch > 0 (got ",
        data.size(), ", ", epochs, ", ", opt.batch, ")");
  Distiller d(teacher, student, opt);
  return detail::shuffled_epochs(data, epochs, opt.batch, opt.seed, 1u << 20, [&](std::span<const SparseImage> b) {
    const auto st = d.step(b);
    if (on_step) on_step(d.steps() - 1, st);
    return st;
  });
}

// Alternating protocol: `steps` times, next_batch() produces a synthetic batch (any size, any mix of kept
// counts), one distillation step is taken on it, and it is dropped.
inline DistillLog distill_alternating(ViT<>& teacher, ViT<>& student,
                                      const std::function<std::vector<SparseImage>()>& next_batch, std::int64_t steps,
                                      const DistillOptions& opt = {}, const StepCallback& on_step = {}) {
  check(static_cast<bool>(next_batch) && steps >= 0, "distill_alternating: need a batch producer and steps >= 0");
  const auto t0 = std::chrono::steady_clock::now();
  Distiller d(teacher, student, opt);
  DistillLog log;
  for (std::int64_t s = 0; s < steps; ++s) {
    const auto batch = next_batch();
    check(!batch.empty(), "distill_alternating: the producer returned an empty batch at step ", s);
    const auto st = d.step(batch);
    log.loss.push_back(st.loss);
    log.images += st.images;
    if (on_step) on_step(s, st);
  }
  log.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return log;
}

// A copy of `model` whose head is the identity [dim, dim] with bias 0: its "logits" are the pre-head
// representation (the final LayerNorm of the CLS token), i.e. the features a linear probe sees.
// requires: a model without a distillation head.
inline ViT<> with_identity_head(const ViT<>& model) {
  check(!model.config().distilled, "with_identity_head: a distilled model has two heads; not supported");
  auto sd = model.state_dict();
  const std::int64_t d = model.config().dim;
  auto eye = Tensor<Cpu>::zeros(Shape{d, d});
  for (std::int64_t i = 0; i < d; ++i) eye[i * d + i] = 1.0f;
  sd["head.weight"] = eye;
  sd["head.bias"] = Tensor<Cpu>::zeros(Shape{d});
  ViTLoadOptions o;
  o.heads = model.config().heads, o.eps = model.config().eps;
  return ViT<>::from_tensors(sd, o, {}, "with_identity_head");
}

// `model` on every image, kept patches only (each image mirrored, pixels and mask, when flip): [M, outputs],
// rows in input order. requires: images valid for group_by_kept_count; batch > 0.
inline Tensor<Cpu> outputs_of(ViT<>& model, std::span<const SparseImage> data, bool flip = false,
                              std::int64_t batch = 256) {
  check(!data.empty() && batch > 0, "outputs_of: need images and batch > 0");
  Tensor<Cpu> out;
  const std::vector<char> all(static_cast<std::size_t>(batch), 1);
  for (std::size_t s = 0; s < data.size(); s += static_cast<std::size_t>(batch)) {
    const std::size_t b = std::min<std::size_t>(static_cast<std::size_t>(batch), data.size() - s);
    const std::vector<char> flips(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(b));
    for (const auto& g : group_by_kept_count(data.subspan(s, b), flip ? &flips : nullptr)) {
      const auto z = model.forward(g.images, g.keep());
      if (!out.defined()) out = Tensor<Cpu>::zeros(Shape{static_cast<std::int64_t>(data.size()), z.dim(1)});
      for (std::int64_t i = 0; i < g.size(); ++i)
        std::copy(z.data() + i * z.dim(1), z.data() + (i + 1) * z.dim(1),
                  out.data() + static_cast<std::int64_t>(s + g.members[static_cast<std::size_t>(i)]) * z.dim(1));
    }
  }
  return out;
}

namespace detail {
// The loop of the linear-probe protocols: head-only SGD steps on cached features. The backbone is frozen, so an
// image's features (with_identity_head(student)) and the teacher's logits are the same at every use: they are
// computed once per image and flip state. next(step, indices) fills the step's image indices (into data) and
// returns false when there are no more steps. Each use of an image draws its flip (opt.flip) from one Philox
// counter, in order of use. Loss tau^2 KL(teacher || student) (batch mean), opt.sgd on head.weight and
// head.bias, which are updated in place in `student`; on_step (optional) is called after every step.
template <class Next>
DistillLog probe_steps(ViT<>& teacher, ViT<>& student, std::span<const SparseImage> data, const DistillOptions& opt,
                       Next&& next, const StepCallback& on_step, const char* what) {
  detail::check_distill_pair(teacher, student, opt, what);
  const auto t0 = std::chrono::steady_clock::now();
  auto extractor = with_identity_head(student);
  const Tensor<Cpu> f[2] = {outputs_of(extractor, data, false), opt.flip ? outputs_of(extractor, data, true) : Tensor<Cpu>{}};
  const Tensor<Cpu> t[2] = {outputs_of(teacher, data, false), opt.flip ? outputs_of(teacher, data, true) : Tensor<Cpu>{}};
  std::map<std::string, Param<Cpu>> head{{"head.weight", {student.parameters().at("head.weight").value, {}}},
                                         {"head.bias", {student.parameters().at("head.bias").value, {}}}};
  auto& w = head.at("head.weight").value;  // shares storage with the student's head: updated in place
  auto& bias = head.at("head.bias").value;
  const std::int64_t d = f[0].dim(1), k = w.dim(0);
  optim::SGD<> sgd(opt.sgd);
  std::uint64_t flip_counter = 0;
  DistillLog log;
  std::vector<std::size_t> idx;
  for (std::int64_t step = 0; next(step, idx); ++step) {
    const auto b = static_cast<std::int64_t>(idx.size());
    check(b > 0, what, ": step ", step, " has no images");
    auto fb = Tensor<Cpu>::empty(Shape{b, d}), tb = Tensor<Cpu>::empty(Shape{b, k});
    for (std::int64_t i = 0; i < b; ++i) {
      const auto j = static_cast<std::int64_t>(idx[static_cast<std::size_t>(i)]);
      const int fl = opt.flip && philox_uniform(opt.seed, detail::kDistillFlipStream, flip_counter++) < 0.5f ? 1 : 0;
      std::copy(f[fl].data() + j * d, f[fl].data() + (j + 1) * d, fb.data() + i * d);
      std::copy(t[fl].data() + j * k, t[fl].data() + (j + 1) * k, tb.data() + i * k);
    }
    const auto sb = nn::linear(fb, w, &bias);  // the student's head on the cached features
    auto ds = Tensor<Cpu>::zeros(sb.shape());
    const float loss = nn::kl_div_temperature(sb, tb, opt.temperature, &ds);
    check(std::isfinite(loss), what, ": the KD loss is ", loss, " at step ", step, "; lower the lr");
    auto gw = Tensor<Cpu>::zeros(w.shape()), gb = Tensor<Cpu>::zeros(bias.shape());
    nn::linear_backward(ds, fb, w, nullptr, &gw, &gb);
    head.at("head.weight").grad = gw, head.at("head.bias").grad = gb;
    sgd.step(head);
    log.loss.push_back(loss);
    log.images += b;
    if (on_step) on_step(step, DistillStepStats{loss, b, 1});
  }
  log.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return log;
}
}  // namespace detail

// Linear probing by distillation (SMI Sec. 5.2: only the head trains), computed on cached features
// (detail::probe_steps). The loop is distill_offline's with trainable = head: the same per-epoch permutation,
// the same per-image flip draws. The result equals distill_offline(teacher, student, data, epochs, opt with
// trainable = head) up to float summation order (a test checks it), at a fraction of the cost: no forward or
// backward through the backbone per step. opt.trainable is ignored.
// requires: as distill_offline; student without a distillation head.
inline DistillLog distill_linear_probe(ViT<>& teacher, ViT<>& student, std::span<const SparseImage> data,
                                       std::int64_t epochs, const DistillOptions& opt = {}) {
  check(!data.empty() && epochs >= 0 && opt.batch > 0, "distill_linear_probe: need images, epochs >= 0, batch > 0 (got ",
        data.size(), ", ", epochs, ", ", opt.batch, ")");
  const auto n = static_cast<std::int64_t>(data.size());
  std::int64_t e = -1, s0 = n;
  std::vector<std::size_t> perm;
  auto next = [&](std::int64_t, std::vector<std::size_t>& idx) {
    if (s0 >= n) {
      if (++e >= epochs) return false;
      perm = detail::permutation(static_cast<std::size_t>(n), opt.seed, (1u << 20) + static_cast<std::uint32_t>(e));
      s0 = 0;
    }
    const std::int64_t b = std::min<std::int64_t>(opt.batch, n - s0);
    idx.assign(perm.begin() + s0, perm.begin() + s0 + b);
    s0 += b;
    return true;
  };
  return detail::probe_steps(teacher, student, data, opt, next, {}, "distill_linear_probe");
}

// SMI's knowledge-transfer loop (official code, test_kt.py), with linear probing: `steps` times, the pool grows
// by one synthesis batch (here: to pool[0, ceil(n (s + 1) / steps)) at step s, so the whole pool at the last
// step), opt.batch images are sampled from the pool so far without replacement (Philox permutation of that
// prefix, stream 2^21 + s; all of it while it is smaller), and one head SGD step is taken (detail::probe_steps).
// test_kt.py's synthesis has no adversarial term (adv = 0), so it does not depend on the student, and this loop
// on a set inverted beforehand, in its inversion order, is the same protocol. on_step (optional) is called after
// every step (test_kt.py evaluates after each one and prints the best).
// requires: pool non-empty, steps >= 1, opt.batch >= 1; student without a distillation head.
inline DistillLog distill_linear_probe_pool(ViT<>& teacher, ViT<>& student, std::span<const SparseImage> pool,
                                            std::int64_t steps, const DistillOptions& opt = {},
                                            const StepCallback& on_step = {}) {
  check(!pool.empty() && steps >= 1 && opt.batch > 0, "distill_linear_probe_pool: need images, steps >= 1, batch > 0 (got ",
        pool.size(), ", ", steps, ", ", opt.batch, ")");
  const auto n = static_cast<std::int64_t>(pool.size());
  auto next = [&](std::int64_t s, std::vector<std::size_t>& idx) {
    if (s >= steps) return false;
    const std::int64_t have = (n * (s + 1) + steps - 1) / steps;
    const auto perm = detail::permutation(static_cast<std::size_t>(have), opt.seed, (1u << 21) + static_cast<std::uint32_t>(s));
    idx.assign(perm.begin(), perm.begin() + std::min<std::int64_t>(opt.batch, have));
    return true;
  };
  return detail::probe_steps(teacher, student, pool, opt, next, on_step, "distill_linear_probe_pool");
}

// A student trained from scratch: the given shape, init_timm_like(seed) (the teacher's init rule).
inline ViT<> make_student(const ViTConfig& cfg, std::uint64_t seed) {
  ViT<> m(cfg);
  init_timm_like(m, seed);
  return m;
}

// A student from a pre-trained backbone (ViT::load); with reinit_head its head is re-initialised (reinit_head()).
inline ViT<> load_student(const std::string& path, bool reinitialise_head, std::uint64_t seed = 0) {
  auto m = ViT<>::load(path);
  if (reinitialise_head) reinit_head(m, seed);
  return m;
}

}  // namespace mint::tasks
