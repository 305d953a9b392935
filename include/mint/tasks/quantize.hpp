// mint/tasks/quantize.hpp -- post-training uniform quantization of a ViT (SMI Sec. 4.3.1, Eq. 5), run as
// fake-quantized inference: every quantized value is quantized and dequantized in float32.
//
// Eq. 5 with bounds [lo, hi] = [T_min, T_max] and k bits:
//   S = (hi - lo) / (2^k - 1),   q = round((clip(x, lo, hi) - lo) / S) in {0 .. 2^k - 1},   x^ = lo + q S
// so |x^ - x| <= S / 2 for x in [lo, hi] (asymmetric: zero is not necessarily representable; round half to
// even, as torch.round). lo == hi maps everything to lo.
//
// Choices (the paper leaves them open; docs/tasks.md):
//   - Quantized layers: every linear layer -- the patch embedding (a linear map of each patch), and in each
//     block qkv, proj, fc1, fc2, then the head (and head_dist). QuantConfig can keep the patch embedding and
//     the head in float. Biases, LayerNorms, cls/dist tokens and position embeddings stay in float, and so do
//     the attention matmuls (q k^T, softmax, attn v) and GELU, which are not linear layers.
//   - Weights: bounds = min/max of the FP weights (Eq. 5), per output channel (each row of the [out, in]
//     weight, each output filter of the patch-embedding conv) by default, or per tensor.
//   - Activations: the INPUT of each quantized linear layer, one per-tensor range per layer, calibrated as
//     the min/max over all values seen when the FP model runs on the calibration images (SMI: "feed [the
//     inverted data] to the FP model ... set T_min and T_max as the minimum and maximum"). Sparse calibration
//     images feed only their kept patches, so dropped backgrounds never widen a range.
// The hooks are ViT's LinearInputHook (mint/models/vit.hpp): a RangeObserver records ranges, an
// ActivationQuantizer fake-quantizes each linear input in place before its GEMM.
//
// Beyond the paper: Eq. 5's min/max ranges are the calibration set's extreme values, which any 280 images (real,
// or noise clipped to the pixel range) reach alike, so min/max calibration cannot tell one set from another
// (docs/results.md, issue 20). Two range choices that depend on the distribution, not its extremes, are offered
// beside it, both from a second pass that histograms each site's values over its min/max range (2048 bins, as
// PyTorch's HistogramObserver and TensorRT's calibrators do):
//   - Percentile: clip a fraction `tail` of the values at each end (TensorRT's percentile calibration);
//   - Mse: the [lo, hi] on the bin grid minimising the expected squared error of Eq. 5 over the histogram,
//     clipping error of the values outside plus S^2 / 12 per value inside (uniform rounding error; PyTorch's
//     HistogramObserver minimises the same L2 error by a greedy search, this one searches every pair of edges).
// Percentile with tail 0 is min/max exactly.
#pragma once

#include <algorithm>
#include <cmath>
#include <compare>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mint/core/rng.hpp"
#include "mint/inversion/sparse_image.hpp"
#include "mint/models/vit.hpp"
#include "mint/tasks/distill.hpp"

namespace mint::tasks {

enum class Granularity { PerTensor, PerChannel };

// Eq. 5's scale S for k bits over [lo, hi].
inline float quant_step(float lo, float hi, int bits) {
  check(bits >= 1 && bits <= 16, "quantize: bits must be in 1..16, got ", bits);
  check(std::isfinite(lo) && std::isfinite(hi) && lo <= hi, "quantize: invalid range [", lo, ", ", hi, "]");
  return (hi - lo) / static_cast<float>((1 << bits) - 1);
}

// What quantization-aware training (mint/tasks/qat.hpp) needs of each quantized value for its backward: q - v
// in [-1/2, 1/2] for a value inside [lo, hi] (v = (x - lo) / S its unrounded level, q the level it got), or one
// of these two marks for a value clipped below lo or above hi.
inline constexpr float kClippedBelow = -2.0f, kClippedAbove = 2.0f;

// Eq. 5, quantize then dequantize: lo + S * round((clip(x, lo, hi) - lo) / S). code (optional, n values): each
// value's backward code (above), from the same arithmetic.
inline void fake_quantize(float* x, std::int64_t n, float lo, float hi, int bits, float* code = nullptr) {
  const float s = quant_step(lo, hi, bits);
  const float inv = s == 0.0f ? 0.0f : 1.0f / s, qmax = static_cast<float>((1 << bits) - 1);
  for (std::int64_t i = 0; i < n; ++i) {
    const float q = std::min(qmax, std::rint((std::clamp(x[i], lo, hi) - lo) * inv));
    if (code) code[i] = x[i] < lo ? kClippedBelow : x[i] > hi ? kClippedAbove : q - (x[i] - lo) * inv;
    x[i] = lo + q * s;
  }
}
inline float fake_quantize(float x, float lo, float hi, int bits) {
  fake_quantize(&x, 1, lo, hi, bits);
  return x;
}

// A min/max range; empty until it has seen a value.
struct QuantRange {
  float lo = std::numeric_limits<float>::infinity(), hi = -std::numeric_limits<float>::infinity();
  [[nodiscard]] bool empty() const { return lo > hi; }
  void update(const float* x, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) lo = std::min(lo, x[i]), hi = std::max(hi, x[i]);
  }
};

// Fake-quantizes a weight in place with its own min/max bounds: per tensor, or per output channel (dim 0).
inline void fake_quantize_weight(Tensor<Cpu>& w, int bits, Granularity g) {
  check(w.rank() >= 1 && w.numel() > 0, "fake_quantize_weight: empty weight");
  const std::int64_t rows = g == Granularity::PerChannel ? w.dim(0) : 1, per = w.numel() / rows;
  for (std::int64_t r = 0; r < rows; ++r) {
    QuantRange q;
    q.update(w.data() + r * per, per);
    fake_quantize(w.data() + r * per, per, q.lo, q.hi, bits);
  }
}

// A quantization point: the input of one linear layer.
struct SiteKey {
  LinearSite site;
  int block;  // -1 for the patch embedding and the heads
  auto operator<=>(const SiteKey&) const = default;
};
using ActivationRanges = std::map<SiteKey, QuantRange>;

// The layer's timm name, e.g. "blocks.2.mlp.fc1", "patch_embed.proj", "head".
inline std::string site_name(const SiteKey& k) {
  const std::string b = "blocks." + std::to_string(k.block) + ".";
  switch (k.site) {
    case LinearSite::PatchEmbed: return "patch_embed.proj";
    case LinearSite::Qkv: return b + "attn.qkv";
    case LinearSite::Proj: return b + "attn.proj";
    case LinearSite::Fc1: return b + "mlp.fc1";
    case LinearSite::Fc2: return b + "mlp.fc2";
    case LinearSite::Head: return "head";
    case LinearSite::HeadDist: return "head_dist";
  }
  return "?";
}

// Records the min/max of every linear input it sees (over all forwards while it is set).
class RangeObserver : public LinearInputHook<Cpu> {
 public:
  void on_linear_input(LinearSite site, int block, Tensor<Cpu>& x) override {
    ranges_[SiteKey{site, block}].update(x.data(), x.numel());
  }
  [[nodiscard]] const ActivationRanges& ranges() const { return ranges_; }

 private:
  ActivationRanges ranges_;
};

// Fake-quantizes every linear input in place with its calibrated range. Sites outside `quantized` pass through.
class ActivationQuantizer : public LinearInputHook<Cpu> {
 public:
  ActivationQuantizer(ActivationRanges ranges, int bits, std::function<bool(const SiteKey&)> quantized = {})
      : ranges_(std::move(ranges)), bits_(bits), quantized_(std::move(quantized)) {
    quant_step(0.0f, 1.0f, bits);  // validates bits
  }
  void on_linear_input(LinearSite site, int block, Tensor<Cpu>& x) override {
    const SiteKey k{site, block};
    if (quantized_ && !quantized_(k)) return;
    auto it = ranges_.find(k);
    check(it != ranges_.end() && !it->second.empty(), "ActivationQuantizer: no calibrated range for the input of '",
          site_name(k), "' (calibrate on the same architecture first)");
    fake_quantize(x.data(), x.numel(), it->second.lo, it->second.hi, bits_);
  }
  [[nodiscard]] const ActivationRanges& ranges() const { return ranges_; }

 private:
  ActivationRanges ranges_;
  int bits_;
  std::function<bool(const SiteKey&)> quantized_;
};

// One site's values, histogrammed over a fixed range (that of a min/max pass over the same values): `bins` equal
// bins over [range.lo, range.hi], bin b = [lo + b w, lo + (b + 1) w). A value outside the range (none, when the
// range came from the same forwards) counts in the end bin.
struct ValueHistogram {
  QuantRange range;
  std::vector<double> counts;
  ValueHistogram() = default;
  ValueHistogram(QuantRange r, int bins) : range(r), counts(static_cast<std::size_t>(bins), 0.0) {
    check(!r.empty() && bins >= 1, "ValueHistogram: need a non-empty range and bins >= 1");
  }
  [[nodiscard]] int bins() const { return static_cast<int>(counts.size()); }
  [[nodiscard]] double width() const { return (static_cast<double>(range.hi) - range.lo) / bins(); }
  [[nodiscard]] double edge(int b) const { return b == bins() ? range.hi : range.lo + b * width(); }
  [[nodiscard]] double centre(int b) const { return range.lo + (b + 0.5) * width(); }
  void add(const float* x, std::int64_t n) {
    const double w = width(), inv = w > 0 ? 1.0 / w : 0.0;
    const int last = bins() - 1;
    for (std::int64_t i = 0; i < n; ++i)
      counts[static_cast<std::size_t>(std::clamp(static_cast<int>((x[i] - range.lo) * inv), 0, last))] += 1.0;
  }
};
using ActivationHistograms = std::map<SiteKey, ValueHistogram>;

// How an activation range is chosen from a site's values (see the header comment).
enum class RangeMethod { MinMax, Percentile, Mse };
inline const char* range_method_name(RangeMethod m) {
  switch (m) {
    case RangeMethod::MinMax: return "minmax";
    case RangeMethod::Percentile: return "percentile";
    case RangeMethod::Mse: return "mse";
  }
  return "?";
}

// Clips a fraction `tail` of the values at each end: lo is the lower edge of the first bin where the count from
// below exceeds tail * total, hi the upper edge of the last bin where the count from above does. tail = 0 gives
// the histogram's own range, min/max exactly.
inline QuantRange percentile_range(const ValueHistogram& h, double tail) {
  check(tail >= 0.0 && tail < 0.5, "percentile_range: tail must be in [0, 0.5), got ", tail);
  double total = 0.0;
  for (double c : h.counts) total += c;
  check(total > 0.0, "percentile_range: empty histogram");
  const double cut = tail * total;
  int lo = 0, hi = h.bins() - 1;
  for (double below = 0.0; lo < h.bins() - 1 && (below += h.counts[static_cast<std::size_t>(lo)]) <= cut;) ++lo;
  for (double above = 0.0; hi > lo && (above += h.counts[static_cast<std::size_t>(hi)]) <= cut;) --hi;
  return {static_cast<float>(h.edge(lo)), static_cast<float>(h.edge(hi + 1))};
}

// The range [edge(i), edge(j)], i < j, minimising Eq. 5's expected squared error over the histogram with k bits:
// sum over bins below i of c (centre - lo)^2, over bins from j of c (centre - hi)^2, plus (values inside) S^2 / 12.
// Each pair is O(1) from prefix sums of c, c x and c x^2; all (bins + 1) bins / 2 pairs are tried.
inline QuantRange mse_range(const ValueHistogram& h, int bits) {
  quant_step(0.0f, 1.0f, bits);  // validates bits
  const int n = h.bins();
  std::vector<double> c(n + 1, 0.0), cx(n + 1, 0.0), cxx(n + 1, 0.0);
  for (int b = 0; b < n; ++b) {
    const double k = h.counts[static_cast<std::size_t>(b)], x = h.centre(b);
    c[b + 1] = c[b] + k, cx[b + 1] = cx[b] + k * x, cxx[b + 1] = cxx[b] + k * x * x;
  }
  check(c[n] > 0.0, "mse_range: empty histogram");
  if (h.width() == 0.0) return h.range;
  const double levels = static_cast<double>((1 << bits) - 1);
  double best = std::numeric_limits<double>::infinity();
  int bi = 0, bj = n;
  for (int i = 0; i < n; ++i) {
    const double lo = h.edge(i);
    const double below = cxx[i] - 2.0 * lo * cx[i] + lo * lo * c[i];  // bins 0 .. i-1 clipped up to lo
    for (int j = n; j > i; --j) {
      const double hi = h.edge(j), s = (hi - lo) / levels;
      const double above = (cxx[n] - cxx[j]) - 2.0 * hi * (cx[n] - cx[j]) + hi * hi * (c[n] - c[j]);
      const double err = below + above + (c[j] - c[i]) * s * s / 12.0;
      if (err < best) best = err, bi = i, bj = j;
    }
  }
  return {static_cast<float>(h.edge(bi)), static_cast<float>(h.edge(bj))};
}

// Every site's range by `method`: min/max (the histogram's range), percentile(tail) or mse(bits).
inline ActivationRanges choose_ranges(const ActivationHistograms& hs, RangeMethod method, int bits, double tail = 1e-4) {
  ActivationRanges r;
  for (const auto& [k, h] : hs)
    r[k] = method == RangeMethod::MinMax       ? h.range
           : method == RangeMethod::Percentile ? percentile_range(h, tail)
                                               : mse_range(h, bits);
  return r;
}

// Histograms every linear input it sees over the ranges of a min/max pass of the same forwards.
class HistogramObserver : public LinearInputHook<Cpu> {
 public:
  HistogramObserver(const ActivationRanges& ranges, int bins) {
    for (const auto& [k, r] : ranges) hist_.emplace(k, ValueHistogram(r, bins));
  }
  void on_linear_input(LinearSite site, int block, Tensor<Cpu>& x) override {
    const SiteKey k{site, block};
    auto it = hist_.find(k);
    check(it != hist_.end(), "HistogramObserver: the input of '", site_name(k), "' was not seen by the range pass");
    it->second.add(x.data(), x.numel());
  }
  [[nodiscard]] const ActivationHistograms& histograms() const { return hist_; }

 private:
  ActivationHistograms hist_;
};

namespace detail {
// A ViT with fp's weights, architecture and eps, sharing nothing with it.
inline ViT<> copy_of(const ViT<>& fp, const char* who) {
  ViTLoadOptions o;
  o.heads = fp.config().heads;
  o.eps = fp.config().eps;
  return ViT<>::from_tensors(fp.state_dict(), o, {}, who);
}
// Runs feed() with `hook` as the model's linear-input hook; the model's previous hook is restored.
template <class Feed>
void with_linear_input_hook(ViT<>& model, LinearInputHook<Cpu>& hook, Feed&& feed) {
  auto* previous = model.linear_input_hook();
  model.set_linear_input_hook(&hook);
  try {
    feed();
  } catch (...) {
    model.set_linear_input_hook(previous);
    throw;
  }
  model.set_linear_input_hook(previous);
}
inline void forward_sparse(ViT<>& model, std::span<const SparseImage> images, std::int64_t batch) {
  const auto step = static_cast<std::size_t>(batch);
  for (std::size_t s = 0; s < images.size(); s += step)
    for (const auto& g : group_by_kept_count(images.subspan(s, std::min(images.size() - s, step))))
      model.forward(g.images, g.keep());
}
// The forwards over calibration images, one per kind of image source. Sparse images feed only their kept patches
// (group_by_kept_count); a sharded folder (mint-synthesize) is streamed, one shard in memory at a time, each
// verified by its hash; dense images [M, C, H, W] feed all patches.
inline auto calibration_feed(ViT<>& model, std::span<const SparseImage> images, std::int64_t batch) {
  check(!images.empty() && batch > 0, "calibrate: need images and batch > 0");
  return [&model, images, batch] { forward_sparse(model, images, batch); };
}
inline auto calibration_feed(ViT<>& model, const SyntheticShardReader& shards, std::int64_t batch) {
  check(batch > 0, "calibrate: batch must be > 0, got ", batch);
  return [&model, &shards, batch] {
    for (std::size_t k = 0; k < shards.shards().size(); ++k) forward_sparse(model, shards.read(k), batch);
  };
}
inline auto calibration_feed(ViT<>& model, const Tensor<Cpu>& images, std::int64_t batch) {
  check(images.rank() == 4 && images.dim(0) > 0 && batch > 0, "calibrate: images ", images.shape().str(),
        " must be [M, C, H, W] with M > 0; batch > 0");
  return [&model, &images, batch] {
    const std::int64_t m = images.dim(0), per = images.numel() / m;
    for (std::int64_t s = 0; s < m; s += batch) {
      const std::int64_t b = std::min(batch, m - s);
      auto xb = Tensor<Cpu>::empty(Shape{b, images.dim(1), images.dim(2), images.dim(3)});
      std::copy(images.data() + s * per, images.data() + (s + b) * per, xb.data());
      model.forward(xb);
    }
  };
}
template <class Images>
concept CalibrationImages = requires(ViT<>& m, const Images& x) { calibration_feed(m, x, std::int64_t{1}); };
}  // namespace detail

// Runs `model` (in float, its own weights) on calibration images (sparse images, a sharded folder, or a dense
// [M, C, H, W] tensor) and returns the linear-input ranges: min/max over all values (Eq. 5). A sharded folder
// gets the ranges of the whole set loaded at once, up to float rounding (its forwards group the images
// differently).
template <detail::CalibrationImages Images>
ActivationRanges calibrate(ViT<>& model, const Images& images, std::int64_t batch = 32) {
  const auto feed = detail::calibration_feed(model, images, batch);
  RangeObserver obs;
  detail::with_linear_input_hook(model, obs, feed);
  return obs.ranges();
}
// Two passes over the same images: min/max, then every site's values histogrammed over its range, for
// choose_ranges (percentile and MSE ranges). Its ranges are calibrate()'s exactly (the same forwards).
template <detail::CalibrationImages Images>
ActivationHistograms calibrate_histograms(ViT<>& model, const Images& images, std::int64_t batch = 32,
                                          int bins = 2048) {
  check(bins >= 1 && bins <= (1 << 20), "calibrate_histograms: bins must be in 1..2^20, got ", bins);
  const auto feed = detail::calibration_feed(model, images, batch);
  RangeObserver obs;
  detail::with_linear_input_hook(model, obs, feed);
  HistogramObserver hist(obs.ranges(), bins);
  detail::with_linear_input_hook(model, hist, feed);
  return hist.histograms();
}

// M images of N(0, 1) noise in the normalised input space (SMI Table 3's "Gaussian noise" calibration).
inline Tensor<Cpu> gaussian_images(std::int64_t m, const ViTConfig& cfg, std::uint64_t seed) {
  auto t = Tensor<Cpu>::empty(Shape{m, cfg.in_chans, cfg.img_size, cfg.img_size});
  fill_normal(t, seed, 0, 0.0f, 1.0f);
  return t;
}

struct QuantConfig {
  int weight_bits = 8;                               // W4/A8: 4, W8/A8: 8
  int act_bits = 8;
  Granularity weights = Granularity::PerChannel;
  bool patch_embed = true;  // quantize the patch embedding's weight and input
  bool head = true;         // quantize the head's (and head_dist's) weight and input

  // Whether the input of linear layer `k` is quantized.
  [[nodiscard]] bool quantizes(const SiteKey& k) const {
    if (k.site == LinearSite::PatchEmbed) return patch_embed;
    if (k.site == LinearSite::Head || k.site == LinearSite::HeadDist) return head;
    return true;
  }
  // Whether the ViT parameter `name` (value `p`) is a quantized GEMM weight (LayerNorm weights are rank 1).
  [[nodiscard]] bool quantizes(const std::string& name, const Tensor<Cpu>& p) const {
    const bool gemm = name.ends_with(".weight") && p.rank() >= 2;
    const bool is_pe = name == "patch_embed.proj.weight", is_head = name.rfind("head", 0) == 0;
    return gemm && (!is_pe || patch_embed) && (!is_head || head);
  }
};

// A fake-quantized copy of a float ViT: weights quantized once at construction, linear inputs at every
// forward with the given calibrated ranges. Movable; the float model is not touched.
class QuantizedViT {
 public:
  QuantizedViT(const ViT<>& fp, const QuantConfig& qc, ActivationRanges ranges)
      : qc_(qc), model_(detail::copy_of(fp, "QuantizedViT")) {
    for (auto& [name, p] : model_.parameters())
      if (qc.quantizes(name, p.value)) fake_quantize_weight(p.value, qc.weight_bits, qc.weights);
    act_ = std::make_unique<ActivationQuantizer>(std::move(ranges), qc.act_bits,
                                                 [qc](const SiteKey& k) { return qc.quantizes(k); });
    model_.set_linear_input_hook(act_.get());
  }

  Tensor<Cpu> forward(const Tensor<Cpu>& images, const nn::TokenIndex* keep = nullptr) {
    return model_.forward(images, keep);
  }
  [[nodiscard]] ViT<>& model() { return model_; }
  [[nodiscard]] const QuantConfig& config() const { return qc_; }
  [[nodiscard]] const ActivationRanges& ranges() const { return act_->ranges(); }

 private:
  QuantConfig qc_;
  std::unique_ptr<ActivationQuantizer> act_;
  ViT<> model_;
};

}  // namespace mint::tasks
