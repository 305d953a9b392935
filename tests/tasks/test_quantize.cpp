// tasks/quantize.hpp: SMI Eq. 5 quantize-dequantize (error bounds, clipping, levels), per-channel and
// per-tensor weights, calibration through ViT's linear-input hook (sparse images: kept patches only), and the
// embedded teacher fake-quantized to W8/A8 and W4/A8 on 1000 real Fashion-MNIST test images; the histogram
// calibration and its percentile and MSE ranges.
#include "test_util.hpp"
#include "tasks/teacher_fixture.hpp"

#include <cmath>
#include <filesystem>
#include <set>
#include <vector>

#include "mint/core/rng.hpp"
#include "mint/models/vit.hpp"
#include "mint/tasks/evaluate.hpp"
#include "mint/tasks/quantize.hpp"
#include "mint/tasks/synthesis.hpp"

using namespace mint;
using namespace mint::tasks;

TEST_CASE("Eq. 5 fake quantization: |x^ - x| <= S/2 inside [lo, hi], clipping outside, 2^k levels", "[quantize]") {
  for (int bits : {2, 4, 8}) {
    CAPTURE(bits);
    const float lo = -1.3f, hi = 2.1f, s = quant_step(lo, hi, bits);
    REQUIRE(s == Approx((hi - lo) / ((1 << bits) - 1)));
    auto x = testing::uniform(Shape{20000}, 3, lo, hi);
    auto q = x.clone();
    fake_quantize(q.data(), q.numel(), lo, hi, bits);
    std::set<float> levels;
    double worst = 0.0;
    for (std::int64_t i = 0; i < x.numel(); ++i) {
      worst = std::max(worst, std::abs(static_cast<double>(q[i]) - x[i]));
      levels.insert(q[i]);
      // the dequantized value is lo + q S with an integer q in 0 .. 2^k - 1
      const double level = (static_cast<double>(q[i]) - lo) / s;
      REQUIRE(std::abs(level - std::round(level)) < 1e-3);
      REQUIRE(std::round(level) >= 0);
      REQUIRE(std::round(level) <= (1 << bits) - 1);
    }
    CAPTURE(worst, s);
    REQUIRE(worst <= 0.5 * s * (1 + 1e-5) + 1e-6);
    REQUIRE(worst >= 0.4 * s);  // the bound is reached (the test would not notice a finer grid otherwise)
    REQUIRE(static_cast<int>(levels.size()) == (1 << bits));
    // outside the range: clipped to the end levels
    REQUIRE(fake_quantize(-50.0f, lo, hi, bits) == lo);
    REQUIRE(fake_quantize(50.0f, lo, hi, bits) == Approx(hi).margin(1e-6));
  }
  REQUIRE(fake_quantize(3.0f, 0.5f, 0.5f, 8) == 0.5f);  // lo == hi
  REQUIRE_THROWS_WITH(quant_step(1.0f, 0.0f, 8), Catch::Contains("invalid range"));
  REQUIRE_THROWS_WITH(quant_step(0.0f, 1.0f, 0), Catch::Contains("bits"));
}

TEST_CASE("weights: per-channel bounds are each row's min/max, per-channel error <= per-tensor error",
          "[quantize]") {
  auto w = testing::uniform(Shape{6, 10}, 4);
  for (std::int64_t i = 0; i < 10; ++i) w[i] *= 8.0f;  // one wide row: per-tensor steps get coarse for all
  auto pc = w.clone(), pt = w.clone();
  fake_quantize_weight(pc, 4, Granularity::PerChannel);
  fake_quantize_weight(pt, 4, Granularity::PerTensor);
  double err_pc = 0.0, err_pt = 0.0;
  QuantRange all;
  all.update(w.data(), w.numel());
  for (std::int64_t r = 0; r < 6; ++r) {
    QuantRange row;
    row.update(w.data() + r * 10, 10);
    const float s = quant_step(row.lo, row.hi, 4);
    for (std::int64_t j = 0; j < 10; ++j) {
      const std::int64_t i = r * 10 + j;
      REQUIRE(std::abs(pc[i] - w[i]) <= 0.5f * s * (1 + 1e-5f) + 1e-6f);
      REQUIRE(std::abs(pt[i] - w[i]) <= 0.5f * quant_step(all.lo, all.hi, 4) * (1 + 1e-5f) + 1e-6f);
      err_pc += std::abs(pc[i] - w[i]);
      err_pt += std::abs(pt[i] - w[i]);
    }
    // a row's min and max are exactly representable under its own bounds
    REQUIRE(*std::min_element(pc.data() + r * 10, pc.data() + r * 10 + 10) == row.lo);
  }
  CAPTURE(err_pc, err_pt);
  REQUIRE(err_pc < 0.5 * err_pt);
}

namespace {
using test::teacher;
using test::test_images;
}  // namespace

TEST_CASE("calibration: one range per linear input, dense patch-embed range = pixel range, sparse images "
          "record their kept patches only", "[quantize][teacher]") {
  auto& m = teacher();
  const auto train = load_fashion_mnist(MINT_FASHION_MNIST_DIR, true, 32);
  const auto ranges = calibrate(m, train.images, 16);
  REQUIRE(m.linear_input_hook() == nullptr);  // restored
  REQUIRE(static_cast<int>(ranges.size()) == 4 * m.config().depth + 2);
  QuantRange px;
  px.update(train.images.data(), train.images.numel());
  const auto& pe = ranges.at(SiteKey{LinearSite::PatchEmbed, -1});
  REQUIRE(pe.lo == px.lo);
  REQUIRE(pe.hi == px.hi);
  for (const auto& [k, r] : ranges) {
    CAPTURE(site_name(k), r.lo, r.hi);
    REQUIRE(!r.empty());
    REQUIRE(r.lo < r.hi);
    if (k.site == LinearSite::Fc2) REQUIRE(r.lo >= -0.2f);  // GELU outputs are >= -0.17
  }
  // The same images as sparse images keeping only the 4 x 4 centre patches (rows/cols 2..5 of the 7 x 7 grid):
  // the patch-embedding range is the centre pixels' range, never wider than the dense one.
  auto sparse = dense_sparse_images(train, 49);
  QuantRange centre;
  for (auto& s : sparse) {
    s.mask.fill(0.0f);
    for (int r = 2; r < 6; ++r)
      for (int c = 2; c < 6; ++c) {
        s.mask[r * 7 + c] = 1.0f;
        for (int y = 0; y < 4; ++y) centre.update(s.pixels.data() + (r * 4 + y) * 28 + c * 4, 4);
      }
  }
  const auto sr = calibrate(m, std::span<const SparseImage>(sparse), 16);
  REQUIRE(sr.at(SiteKey{LinearSite::PatchEmbed, -1}).lo == centre.lo);
  REQUIRE(sr.at(SiteKey{LinearSite::PatchEmbed, -1}).hi == centre.hi);
  REQUIRE(centre.lo >= px.lo);
  REQUIRE(centre.hi <= px.hi);
}

TEST_CASE("teacher W8/A8 and W4/A8 on 1000 real test images (calibrated on 32 real training images)",
          "[quantize][teacher][slow]") {
  auto& fp = teacher();
  const auto& test = test_images();
  const auto calib = load_fashion_mnist(MINT_FASHION_MNIST_DIR, true, 32);
  const auto ranges = calibrate(fp, calib.images);
  const double acc_fp = accuracy(fp, test).value();

  QuantizedViT w8(fp, {.weight_bits = 8, .act_bits = 8}, ranges);
  QuantizedViT w4(fp, {.weight_bits = 4, .act_bits = 8}, ranges);
  QuantizedViT w4t(fp, {.weight_bits = 4, .act_bits = 8, .weights = Granularity::PerTensor}, ranges);
  const double acc_w8 = accuracy(w8, test).value(), acc_w4 = accuracy(w4, test).value();
  const double acc_w4t = accuracy(w4t, test).value();
  // Gaussian-noise calibration (SMI Table 3's baseline)
  const auto noise_ranges = calibrate(fp, gaussian_images(32, fp.config(), 1));
  QuantizedViT w8n(fp, {.weight_bits = 8, .act_bits = 8}, noise_ranges);
  const double acc_w8n = accuracy(w8n, test).value();

  // mean |logit - FP logit| over the first 500 test images
  auto xb = Tensor<>::empty(Shape{500, 1, 28, 28});
  std::copy(test.images.data(), test.images.data() + xb.numel(), xb.data());
  const auto lf = fp.forward(xb).clone();
  auto dev = [&](QuantizedViT& q) {
    const auto l = q.forward(xb);
    double s = 0.0;
    for (std::int64_t i = 0; i < l.numel(); ++i) s += std::abs(l[i] - lf[i]);
    return s / static_cast<double>(l.numel());
  };
  const double dev_w8 = dev(w8), dev_w4 = dev(w4), dev_w4t = dev(w4t);
  WARN("FP " << acc_fp << "  W8/A8 " << acc_w8 << "  W4/A8 per-channel " << acc_w4 << "  W4/A8 per-tensor " << acc_w4t
             << "  W8/A8 noise-calibrated " << acc_w8n << "  mean |dlogit| W8 " << dev_w8 << " W4 " << dev_w4 << " W4 per-tensor " << dev_w4t);
  // The float model is untouched.
  REQUIRE(fp.linear_input_hook() == nullptr);
  REQUIRE(accuracy(fp, test).value() == acc_fp);
  // W8/A8 within 1 point of FP (measured: see docs/tasks.md); W4 perturbs more than W8.
  REQUIRE(std::abs(acc_w8 - acc_fp) <= 0.01);
  REQUIRE(dev_w4 > 2.0 * dev_w8);
  REQUIRE(acc_w4 <= acc_w8 + 0.005);
  REQUIRE(acc_w4 >= acc_fp - 0.10);
  REQUIRE(acc_w4t <= acc_w4 + 0.005);
  REQUIRE(dev_w4t > dev_w4);
}

TEST_CASE("ActivationQuantizer: a site without a range is an error naming the layer", "[quantize]") {
  ActivationRanges none;
  ActivationQuantizer q(none, 8);
  auto x = Tensor<>::zeros(Shape{2, 3});
  REQUIRE_THROWS_WITH(q.on_linear_input(LinearSite::Fc1, 2, x), Catch::Contains("blocks.2.mlp.fc1"));
}

TEST_CASE("calibration streams a sharded folder shard by shard and gets the ranges of the whole set",
          "[quantize][teacher]") {
  auto& m = teacher();
  const auto train = load_fashion_mnist(MINT_FASHION_MNIST_DIR, true, 24);
  auto sparse = dense_sparse_images(train, 49);
  for (std::size_t i = 0; i < sparse.size(); ++i)  // a different kept set per image: the ranges depend on it
    for (std::int64_t q = 0; q < 49; ++q) sparse[i].mask[q] = (q + static_cast<std::int64_t>(i)) % 3 == 0 ? 1.0f : 0.0f;
  testing::TempFile dir("_shards");
  std::filesystem::create_directories(dir.path);
  mint::tasks::ShardManifest man;
  man.options = {{"test", "calibration"}};
  man.plan = mint::tasks::SynthesisPlan::for_images(24, 1, 5, 10);  // 5 shards of 5, 5, 5, 5, 4 images
  for (std::int64_t j = 0; j < man.plan.batches(); ++j) {
    const std::vector<SparseImage> part(sparse.begin() + j * 5, sparse.begin() + std::min<std::int64_t>(24, j * 5 + 5));
    man.shards[j] = {mint::tasks::write_shard(dir.str(), j, 0, part), 0.0};
  }
  man.write(dir.str());
  const auto whole = calibrate(m, std::span<const SparseImage>(sparse), 16);
  const auto streamed = calibrate(m, SyntheticShardReader(dir.str()), 16);
  std::filesystem::remove_all(dir.path);
  REQUIRE(m.linear_input_hook() == nullptr);  // restored
  REQUIRE(streamed.size() == whole.size());
  // min/max do not depend on the order, but shards group the images into other forwards than 16 at a time, and
  // a forward's float rounding depends on which images share its GEMMs (Eigen's kernels for the remainder rows):
  // equal to float rounding, relative 1e-5 (a few ulps of values around 1). The patch embedding's input is the
  // pixels themselves: exact.
  const auto pe = SiteKey{LinearSite::PatchEmbed, -1};
  REQUIRE(streamed.at(pe).lo == whole.at(pe).lo);
  REQUIRE(streamed.at(pe).hi == whole.at(pe).hi);
  for (const auto& [k, r] : whole) {
    CAPTURE(site_name(k));
    REQUIRE(streamed.at(k).lo == Approx(r.lo).epsilon(1e-5).margin(1e-6));
    REQUIRE(streamed.at(k).hi == Approx(r.hi).epsilon(1e-5).margin(1e-6));
  }
}

namespace {
// The mean squared error of Eq. 5 with k bits over [r.lo, r.hi], computed on the values themselves.
double true_mse(const std::vector<float>& x, QuantRange r, int bits) {
  double e = 0.0;
  for (float v : x) {
    const double d = static_cast<double>(fake_quantize(v, r.lo, r.hi, bits)) - v;
    e += d * d;
  }
  return e / static_cast<double>(x.size());
}
ValueHistogram histogram_of(const std::vector<float>& x, int bins) {
  QuantRange r;
  r.update(x.data(), static_cast<std::int64_t>(x.size()));
  ValueHistogram h(r, bins);
  h.add(x.data(), static_cast<std::int64_t>(x.size()));
  return h;
}
}  // namespace

TEST_CASE("range choice: percentile 0 is min/max exactly, percentile and MSE ranges drop a far outlier", "[quantize]") {
  // 20,000 values uniform in [0, 1] and one at 10: min/max spends 90 % of the levels on the empty (1, 10].
  auto u = testing::uniform(Shape{20000}, 11, 0.0f, 1.0f);
  std::vector<float> x(u.data(), u.data() + u.numel());
  x.push_back(10.0f);
  const auto h = histogram_of(x, 2048);
  double total = 0.0;
  for (double c : h.counts) total += c;
  REQUIRE(total == static_cast<double>(x.size()));
  const auto p0 = percentile_range(h, 0.0);
  REQUIRE(p0.lo == h.range.lo);
  REQUIRE(p0.hi == h.range.hi);
  REQUIRE(h.range.hi == 10.0f);
  // tail 1e-4 clips 2 values per end: the outlier goes; hi is the upper edge of the bin holding values near 1
  // (bins are 10 / 2048 wide), lo stays in the first bin
  const auto p = percentile_range(h, 1e-4);
  CAPTURE(p.lo, p.hi);
  REQUIRE(p.hi >= 0.99f);
  REQUIRE(p.hi <= 1.0f + 2.0f * static_cast<float>(h.width()));
  REQUIRE(p.lo == h.range.lo);
  // MSE weighs the outlier's clipping error (about 81) against the rounding error of 20,000 values: at 2 and 4
  // bits the range [0, 10] costs 20,001 S^2 / 12 = 18,500 and 740, so the outlier is clipped (at 4 bits hi
  // settles near 1.2, where d/dhi of 20,000 (hi / 15)^2 / 12 + (10 - hi)^2 vanishes); at 8 bits the rounding
  // costs about 2.6 and the range keeps the outlier nearly whole (hi clipped to 9.75: (0.25)^2 of clipping
  // against the rounding saved).
  for (int bits : {2, 4}) {
    CAPTURE(bits);
    const auto m = mse_range(h, bits);
    CAPTURE(m.lo, m.hi);
    REQUIRE(m.hi < 1.5f);
    REQUIRE(true_mse(x, m, bits) < 0.5 * true_mse(x, p0, bits));
  }
  const auto m8 = mse_range(h, 8);
  CAPTURE(m8.lo, m8.hi);
  REQUIRE(m8.hi > 9.0f);
  REQUIRE_THROWS_WITH(percentile_range(h, 0.5), Catch::Contains("tail must be in [0, 0.5)"));
  REQUIRE_THROWS_WITH(mse_range(h, 0), Catch::Contains("bits must be in 1..16"));
}

TEST_CASE("MSE range: its true Eq. 5 error is within 3 % of the best range of a brute-force grid", "[quantize]") {
  // A heavy-tailed sample (Gaussian plus a 2 % Laplace-like tail at 4x the scale), as linear inputs are. The
  // search sees only bin centres and models rounding as uniform (S^2 / 12), so it is not exactly the true
  // optimum: the stated slack, 3 %, covers both at 2048 bins (measured: the gap is under 1 % here).
  auto g = Tensor<Cpu>::empty(Shape{30000});
  fill_normal(g, 5, 0, 0.0f, 1.0f);
  std::vector<float> x(g.data(), g.data() + g.numel());
  for (std::size_t i = 0; i < x.size(); i += 50) x[i] *= 4.0f;
  const auto h = histogram_of(x, 2048);
  for (int bits : {2, 3, 4, 6}) {
    CAPTURE(bits);
    const auto m = mse_range(h, bits);
    const double chosen = true_mse(x, m, bits);
    double best = std::numeric_limits<double>::infinity();
    for (int i = 0; i <= 60; ++i)
      for (int j = 0; j <= 60; ++j) {
        const float lo = h.range.lo * static_cast<float>(i) / 60.0f, hi = h.range.hi * static_cast<float>(j) / 60.0f;
        if (hi > lo) best = std::min(best, true_mse(x, {lo, hi}, bits));
      }
    CAPTURE(m.lo, m.hi, chosen, best);
    REQUIRE(chosen <= 1.03 * best);
    REQUIRE(m.lo >= h.range.lo);
    REQUIRE(m.hi <= h.range.hi);
  }
}

TEST_CASE("calibrate_histograms: every value of every linear input counted, min/max ranges those of calibrate()",
          "[quantize][teacher]") {
  auto& m = teacher();
  const auto train = load_fashion_mnist(MINT_FASHION_MNIST_DIR, true, 24);
  const auto ranges = calibrate(m, train.images, 16);
  const auto hs = calibrate_histograms(m, train.images, 16, 512);
  REQUIRE(m.linear_input_hook() == nullptr);  // restored after both passes
  REQUIRE(hs.size() == ranges.size());
  const auto pe = hs.at(SiteKey{LinearSite::PatchEmbed, -1});
  double pe_total = 0.0;
  for (double c : pe.counts) pe_total += c;
  REQUIRE(pe_total == static_cast<double>(train.images.numel()));  // the patch embedding sees every pixel once
  for (int bits : {3, 8}) {
    const auto mm = choose_ranges(hs, RangeMethod::MinMax, bits), pc = choose_ranges(hs, RangeMethod::Percentile, bits, 0.0);
    const auto ms = choose_ranges(hs, RangeMethod::Mse, bits);
    for (const auto& [k, r] : ranges) {
      CAPTURE(site_name(k), bits);
      REQUIRE(hs.at(k).bins() == 512);
      REQUIRE(mm.at(k).lo == r.lo);  // the same forwards: bit-identical min/max
      REQUIRE(mm.at(k).hi == r.hi);
      REQUIRE(pc.at(k).lo == r.lo);
      REQUIRE(pc.at(k).hi == r.hi);
      REQUIRE(ms.at(k).lo >= r.lo);
      REQUIRE(ms.at(k).hi <= r.hi);
      REQUIRE(ms.at(k).lo < ms.at(k).hi);
    }
  }
  // fewer bits clip harder: the 3-bit MSE range of the widest site is inside its 8-bit one
  const auto m3 = choose_ranges(hs, RangeMethod::Mse, 3), m8 = choose_ranges(hs, RangeMethod::Mse, 8);
  SiteKey widest = ranges.begin()->first;
  for (const auto& [k, r] : ranges)
    if (r.hi - r.lo > ranges.at(widest).hi - ranges.at(widest).lo) widest = k;
  CAPTURE(site_name(widest));
  REQUIRE(m3.at(widest).hi - m3.at(widest).lo <= m8.at(widest).hi - m8.at(widest).lo);
}
