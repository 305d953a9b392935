// DCI (mint/tasks/dci.hpp): inversion modules mirror the target's blocks (shapes), their backward and the
// cycle-consistency term are checked against finite differences, progressive training lowers L_k, modules
// round-trip through safetensors, teacher agreement, and bad input fails with a clear message.
// All on a tiny random ResNet (width 4, one BasicBlock per layer, 16 x 16 input): seconds, no data files.
#include "test_util.hpp"

#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <set>
#include <utility>
#include <string>
#include <vector>

#include "mint/models/init.hpp"
#include "mint/models/resnet.hpp"
#include "mint/tasks/dci.hpp"

using namespace mint;
using Catch::Matchers::Contains;

namespace {
ResNetConfig tiny_config() {
  ResNetConfig c;
  c.width = 4;
  c.img_size = 16;
  c.blocks = {1, 1, 1, 1};
  return c;
}
ResNet<> tiny_target() {
  ResNet<> m(tiny_config());
  init_torchvision_like(m, 11);
  // one training-mode pass on noise gives the BN layers non-trivial running statistics
  m.train(true);
  m.forward(testing::uniform(Shape{8, 1, 16, 16}, 3));
  m.eval();
  return m;
}
// Smooth images (sums of a few low-frequency waves): something a small inverse network can learn to reproduce.
Tensor<Cpu> smooth_images(std::int64_t n, std::uint64_t seed) {
  auto c = testing::uniform(Shape{n, 4}, seed, -1.0f, 1.0f);
  auto x = Tensor<Cpu>::empty(Shape{n, 1, 16, 16});
  for (std::int64_t i = 0; i < n; ++i)
    for (int h = 0; h < 16; ++h)
      for (int w = 0; w < 16; ++w)
        x[((i * 16) + h) * 16 + w] = c[i * 4] * std::sin(0.3f * h + c[i * 4 + 1]) + c[i * 4 + 2] * std::cos(0.25f * w + c[i * 4 + 3]);
  return x;
}
// Per-coordinate central differences that skip coordinates where a ReLU kink lies within +-eps. Through these
// ReLU nets any usable float32 step crosses kinks at some coordinates (tests/models/test_resnet.cpp met the same:
// 4e-3 fails there, 3e-4 drowns in rounding). A crossed kink shows as a second difference |L+ - 2 L0 + L-|
// comparable to the first |L+ - L-| (for a smooth loss their ratio is ~f'' eps / f' ~ 1e-3), so coordinates
// whose second difference exceeds 1% of the first (+ 1e-5, the rounding noise below) are skipped. Shared
// parameters (a BN bias moves hundreds of units) are skipped most often; the callers require that most
// coordinates overall were checked. The rest must agree within atol 2e-3 + rtol 2e-2, the project's finite-
// difference tolerance (docs/architecture.md): the loss sums ~500 float32 outputs of size ~1, whose rounding
// (~6e-8 each, and every output moves when batch statistics do) gives ~1.5e-6 of noise in each loss value,
// ~7e-4 after dividing by 2 eps = 2e-3 (measured: 6.5e-4 on one coordinate with -O2 -march=native).
// Returns {checked, skipped}.
std::pair<int, int> check_coords(const std::function<double()>& loss, Tensor<Cpu>& x, const Tensor<Cpu>& analytic,
                  const std::string& what, double eps = 1e-3) {
  REQUIRE(analytic.shape() == x.shape());
  const std::int64_t n = x.numel(), m = std::min<std::int64_t>(n, 24);
  int skipped = 0;
  for (std::int64_t c = 0; c < m; ++c) {
    const std::int64_t i = m == n ? c : static_cast<std::int64_t>(philox_uniform(17, 3, static_cast<std::uint64_t>(c)) * n) % n;
    const float orig = x[i];
    const double l0 = loss();
    x[i] = static_cast<float>(orig + eps);
    const double lp = loss();
    x[i] = static_cast<float>(orig - eps);
    const double lm = loss();
    x[i] = orig;
    if (std::abs(lp - 2 * l0 + lm) > 0.01 * std::abs(lp - lm) + 1e-5) {
      ++skipped;
      continue;
    }
    const double fd = (lp - lm) / (2 * eps), an = analytic[i];
    INFO(what << " coordinate " << i << ": analytic " << an << " finite differences " << fd);
    REQUIRE(std::abs(fd - an) <= 2e-3 + 2e-2 * std::abs(an));
  }
  return {static_cast<int>(m) - skipped, skipped};
}
}  // namespace

TEST_CASE("DCI modules mirror the blocks: input = block output shape, output = block input shape", "[dci]") {
  auto target = tiny_target();
  auto x = testing::uniform(Shape{2, 1, 16, 16}, 4);
  std::vector<Shape> stage = {x.shape()};
  for (int k = 0; k < tasks::kDciDepths; ++k) stage.push_back(target.forward_to(x, static_cast<Stage>(k)).shape());
  // stage[k + 1] is block k's output: [2,4,16,16] [2,4,16,16] [2,8,8,8] [2,16,4,4] [2,32,2,2] [2,10]
  REQUIRE(stage[5] == Shape({2, 32, 2, 2}));
  REQUIRE(stage[6] == Shape({2, 10}));
  for (int k = 0; k < tasks::kDciDepths; ++k) {
    tasks::DciModule m(target.config(), k, 1);
    CAPTURE(k);
    REQUIRE(m.input_shape(2) == stage[static_cast<std::size_t>(k + 1)]);
    REQUIRE(m.output_shape(2) == stage[static_cast<std::size_t>(k)]);
    auto y = m.forward(testing::uniform(stage[static_cast<std::size_t>(k + 1)], 5));
    REQUIRE(y.shape() == stage[static_cast<std::size_t>(k)]);
  }
  // the default 28 x 28 target: 4 -> 7 -> 14 -> 28 needs output padding 0, 1, 1 in the transposed convs
  ResNetConfig big;
  for (int k = 0; k < tasks::kDciDepths; ++k) {
    tasks::DciModule m(big, k, 1);
    const auto out = m.forward(Tensor<Cpu>::zeros(m.input_shape(2)));
    REQUIRE(out.shape() == m.output_shape(2));
  }
  REQUIRE(tasks::DciModule(big, 4, 1).output_shape(1) == Shape({1, 64, 7, 7}));
  REQUIRE(tasks::DciModule(big, 2, 1).output_shape(1) == Shape({1, 16, 28, 28}));
}

TEST_CASE("DCI module backward matches finite differences (input and weights, training-mode BN)", "[dci][gradcheck]") {
  const auto cfg = tiny_config();
  // module 0 (stem mirror, conv bias), 2 (transposed conv + 1x1 transposed shortcut), 1 (identity shortcut),
  // 5 (the logits' mirror: linear + ReLU)
  for (int k : {0, 1, 2, 5})
  for (bool train : {true, false}) {
    CAPTURE(k, train);
    tasks::DciModule m(cfg, k, 7);
    m.train(train);
    auto z = testing::uniform(m.input_shape(2), 8);
    const auto r = testing::uniform(m.output_shape(2), 9);
    auto loss = [&] { return testing::dot(m.forward(z), r); };
    m.zero_grad();
    m.forward(z);
    auto dz = m.backward(r, Backward::Full);
    int checked = 0, skipped = 0;
    auto count = [&](std::pair<int, int> r) { checked += r.first, skipped += r.second; };
    count(check_coords(loss, z, dz, "d features"));
    for (auto& [name, p] : m.parameters()) {
      const auto g = p.grad.clone();
      count(check_coords(loss, p.value, g, name));
    }
    CAPTURE(checked, skipped);
    REQUIRE(skipped <= checked);
  }
}

TEST_CASE("DCI L_k with the cycle term: gradients of every trainable module match finite differences", "[dci][gradcheck]") {
  auto target = tiny_target();
  tasks::DCI dci(target, 5);
  const auto x = smooth_images(4, 6);
  const int k = 2;
  for (float cycle : {0.0f, 1.0f}) {
    CAPTURE(cycle);
    for (int i = 0; i <= k; ++i) dci.module(i).zero_grad();
    const auto L = dci.loss_and_backward(x, k, 0, cycle);
    if (cycle > 0) REQUIRE(L.cycle > 0.0);
    REQUIRE(L.total == Approx(L.recon + cycle * L.cycle));
    // the loss evaluations below accumulate into module k's gradients: compare against copies taken now
    std::vector<std::map<std::string, Tensor<Cpu>>> grads(static_cast<std::size_t>(k + 1));
    for (int i = 0; i <= k; ++i)
      for (auto& [n, p] : dci.module(i).parameters()) grads[static_cast<std::size_t>(i)][n] = p.grad.clone();
    auto loss = [&] { return dci.loss_and_backward(x, k, k, cycle).total; };
    int checked = 0, skipped = 0;
    for (int i = 0; i <= k; ++i)
      for (auto& [n, p] : dci.module(i).parameters()) {
        // conv weights and biases only: a BN affine parameter moves every unit of its channel, and through the
        // chain of ReLUs its differences cross kinks on both sides that the second-difference test cannot see
        // (cancellation); the module-level test above checks the BN parameters of each module
        if (n.find(".bn.") != std::string::npos) continue;
        const auto r = check_coords(loss, p.value, grads[static_cast<std::size_t>(i)][n], "module " + std::to_string(i) + " " + n);
        checked += r.first, skipped += r.second;
      }
    CAPTURE(checked, skipped);
    REQUIRE(skipped <= checked);
  }
  // frozen modules get no gradient: first = k leaves modules 0..k-1 untouched
  tasks::DCI dci2(target, 5);
  dci2.loss_and_backward(x, k, k, 1.0f);
  for (auto& [n, p] : dci2.module(0).parameters()) REQUIRE_FALSE(p.grad.defined());
  for (auto& [n, p] : dci2.module(k).parameters()) REQUIRE(p.grad.defined());
}

TEST_CASE("DCI batches: disjoint within an epoch, (M/b) b distinct images per epoch, reshuffled each epoch", "[dci]") {
  // M = 23 images, image i filled with the value i (so a batch names its images); b = 5: 4 steps per epoch
  // covering 20 distinct images, the other 3 left out that epoch
  const std::int64_t m = 23, b = 5, per_epoch = m / b;
  auto data = Tensor<Cpu>::empty(Shape{m, 1, 2, 3});
  for (std::int64_t i = 0; i < data.numel(); ++i) data[i] = static_cast<float>(i / 6);
  auto ids = [&](const Tensor<Cpu>& x) {
    REQUIRE(x.shape() == Shape{b, 1, 2, 3});
    std::vector<int> out;
    for (std::int64_t k = 0; k < b; ++k) {
      for (std::int64_t j = 1; j < 6; ++j) REQUIRE(x[k * 6 + j] == x[k * 6]);  // whole images are copied
      out.push_back(static_cast<int>(x[k * 6]));
    }
    return out;
  };
  tasks::DciBatchSampler sampler(data, b, 7, 1);
  std::vector<std::vector<int>> epochs;
  for (std::int64_t e = 0; e < 3; ++e) {
    std::vector<int> seen;
    for (std::int64_t s = e * per_epoch; s < (e + 1) * per_epoch; ++s) {
      const auto batch = ids(sampler.batch(s));
      REQUIRE(ids(tasks::DCI::sample_batch(data, b, 7, 1, s)) == batch);  // the one-shot form: the same batch
      seen.insert(seen.end(), batch.begin(), batch.end());
    }
    // consecutive steps are disjoint and the epoch has (M/b) b distinct images
    REQUIRE(std::set<int>(seen.begin(), seen.end()).size() == static_cast<std::size_t>(per_epoch * b));
    epochs.push_back(seen);
  }
  REQUIRE(epochs[0] != epochs[1]);
  REQUIRE(epochs[1] != epochs[2]);
  // going back to an earlier epoch recomputes its permutation: the same batch as before
  std::vector<int> again;
  for (std::int64_t s = 0; s < per_epoch; ++s) {
    const auto batch = ids(sampler.batch(s));
    again.insert(again.end(), batch.begin(), batch.end());
  }
  REQUIRE(again == epochs[0]);
  // another stream (stage or phase) draws another order
  tasks::DciBatchSampler other(data, b, 7, 2);
  REQUIRE(ids(other.batch(0)) != std::vector<int>(epochs[0].begin(), epochs[0].begin() + b));
  REQUIRE_THROWS_WITH(tasks::DciBatchSampler(data, m + 1, 7, 1), Contains("batch 24 from 23 images"));
  REQUIRE_THROWS_WITH(sampler.batch(-1), Contains("step -1 < 0"));
}

TEST_CASE("DCI progressive training lowers L_k, inversion is a forward pass, save/load round trip", "[dci]") {
  auto target = tiny_target();
  tasks::DCI dci(target, 1);
  const auto data = smooth_images(64, 12);
  const auto probe = smooth_images(16, 13);
  tasks::DciOptions opt;
  opt.batch = 16;
  opt.steps_alone = 40;
  opt.steps_finetune = 20;
  opt.lr = 3e-3f;
  for (int k = 0; k <= 1; ++k) {
    CAPTURE(k);
    auto eval_loss = [&] {
      auto xh = dci.invert(dci.features(probe, static_cast<Stage>(k)), static_cast<Stage>(k));
      double s = 0.0;
      for (std::int64_t i = 0; i < xh.numel(); ++i) s += (xh[i] - probe[i]) * (xh[i] - probe[i]);
      return s / static_cast<double>(xh.numel());
    };
    const double before = eval_loss();
    dci.train_stage(data, k, opt);
    const double after = eval_loss();
    CAPTURE(before, after);
    // held-out reconstruction error (eval-mode BN) falls by at least half in 40 + 20 Adam steps
    REQUIRE(after < 0.5 * before);
    REQUIRE(dci.trained_depth() == k);
  }
  testing::TempFile f(".safetensors");
  dci.save(f.path.string());
  tasks::DCI other(target, 99);
  other.load(f.path.string());
  REQUIRE(other.trained_depth() == 1);
  const auto z = dci.features(probe, Stage::Layer1);
  MINT_REQUIRE_CLOSE(testing::compare(other.invert(z, Stage::Layer1), dci.invert(z, Stage::Layer1), {0.0, 0.0}, "reloaded"));
}

TEST_CASE("Teacher agreement and recovery metrics", "[dci][metrics]") {
  auto target = tiny_target();
  auto x = testing::uniform(Shape{6, 1, 16, 16}, 21, -0.8f, 2.8f);
  std::vector<bool> per;
  REQUIRE(tasks::teacher_agreement(target, x, x, &per) == 1.0);
  REQUIRE(per.size() == 6);
  // a recovered batch that is the original in reverse order agrees exactly where the argmaxes coincide
  auto rev = Tensor<Cpu>::empty(x.shape());
  for (int i = 0; i < 6; ++i) std::copy(x.data() + (5 - i) * 256, x.data() + (6 - i) * 256, rev.data() + i * 256);
  auto logits = target.forward(x).clone();
  int expect = 0;
  auto am = [&](int i) { return std::max_element(logits.data() + i * 10, logits.data() + i * 10 + 10) - (logits.data() + i * 10); };
  for (int i = 0; i < 6; ++i) expect += am(i) == am(5 - i);
  REQUIRE(tasks::teacher_agreement(target, x, rev) == Approx(expect / 6.0));
  REQUIRE_THROWS_WITH(tasks::teacher_agreement(target, x, Tensor<Cpu>::zeros(Shape{5, 1, 16, 16})),
                      Contains("must be the same [B, C, H, W] shape"));

  // recovery_metrics compares in [0, 1] pixels after clipping: mean 0.5, std 0.25 maps x in [-0.8, 2.8] to
  // [0.3, 1.2], so a recovery equal to the original is perfect, and one that differs only above the clip
  // (pixels > 1 raised further) is perfect too, while the teacher sees the clipped recovery.
  const auto same = tasks::recovery_metrics(target, x, x, 0.5f, 0.25f);
  for (int i = 0; i < 6; ++i) {
    REQUIRE(std::isinf(same.psnr[static_cast<std::size_t>(i)]));
    REQUIRE(same.ssim[static_cast<std::size_t>(i)] == Approx(1.0).margin(1e-9));
  }
  auto above = x.clone();
  for (std::int64_t i = 0; i < above.numel(); ++i)
    if (above[i] > 2.0f) above[i] += 5.0f;  // 2.0 normalised = 1.0 in pixels: only clipped pixels change
  const auto clipped = tasks::recovery_metrics(target, x, above, 0.5f, 0.25f);
  REQUIRE(std::isinf(clipped.psnr[0]));
  // teacher agreement of the clipped recovery = agreement of the original with its own clipped version
  auto x_clip = x.clone();
  for (std::int64_t i = 0; i < x_clip.numel(); ++i) x_clip[i] = std::min(x_clip[i], 2.0f);
  REQUIRE(clipped.agreement() == Approx(tasks::teacher_agreement(target, x, x_clip)));
}

TEST_CASE("DCI bad input: unsupported split, wrong feature shape, stages out of order, wrong module file", "[dci]") {
  auto target = tiny_target();
  tasks::DCI dci(target, 1);
  REQUIRE_THROWS_WITH(dci.invert(Tensor<Cpu>::zeros(Shape{2, 10}), static_cast<Stage>(6)),
                      Contains("split point 6 is not supported"));
  REQUIRE_THROWS_WITH(dci.invert(Tensor<Cpu>::zeros(Shape{2, 9}), Stage::Logits),
                      Contains("input has shape [2, 9] but block 5 (logits) outputs [B, 10]"));
  REQUIRE_THROWS_WITH(dci.invert(Tensor<Cpu>::zeros(Shape{2, 8, 4, 4}), Stage::Layer2),
                      Contains("input has shape [2, 8, 4, 4] but block 2 (layer2) outputs [B, 8, 8, 8]"));
  REQUIRE_THROWS_WITH(dci.train_stage(smooth_images(8, 1), 2, {.batch = 4}), Contains("needs stages 0..1 trained first"));
  REQUIRE_THROWS_WITH(dci.train_stage(Tensor<Cpu>::zeros(Shape{8, 1, 28, 28}), 0, {.batch = 4}),
                      Contains("data has shape [8, 1, 28, 28] but the target expects [M, 1, 16, 16]"));
  REQUIRE_THROWS_WITH(dci.train_stage(smooth_images(8, 1), 0, {.batch = 1}), Contains("batch must be >= 2"));
  REQUIRE_THROWS_WITH(tasks::DciModule(tiny_config(), 6, 0), Contains("block index 6 out of range"));
  // modules trained for another architecture
  ResNetConfig other_cfg = tiny_config();
  other_cfg.width = 8;
  ResNet<> other(other_cfg);
  tasks::DCI dci_other(other, 1);
  testing::TempFile f(".safetensors");
  dci_other.save(f.path.string());
  REQUIRE_THROWS_WITH(dci.load(f.path.string()), Contains("was trained for ResNet width 8"));
}

// ---- issue 17: crafted module files (std::stoi exceptions, out-of-range depths, NaN weights, half-loaded modules)

TEST_CASE("DCI::load refuses a bad trained depth, NaN weights and a half-valid file, leaving the modules unchanged",
          "[dci][hostile]") {
  auto target = tiny_target();
  tasks::DCI saved(target, 1);
  testing::TempFile good(".safetensors"), bad(".safetensors");
  saved.save(good.str());
  const auto file = io::load_safetensors(good.str());
  tasks::DCI dci(target, 2);  // different weights from `saved`
  const auto probe = dci.features(testing::uniform(Shape{2, 1, 16, 16}, 5), Stage::Layer1);
  const auto reference = dci.invert(probe, Stage::Layer1).clone();
  auto unchanged = [&] {
    REQUIRE(dci.trained_depth() == -1);
    MINT_REQUIRE_CLOSE(testing::compare(dci.invert(probe, Stage::Layer1), reference, {0, 0}, "after a failed load"));
  };
  // std::stoi threw std::invalid_argument / out_of_range (not mint::Error) or accepted "3abc" and 7.
  for (const char* depth : {"abc", "3abc", "99999999999", "7", "-2"}) {
    CAPTURE(depth);
    auto meta = file.metadata;
    meta["mint.dci.trained_depth"] = depth;
    io::save_safetensors(bad.str(), file.tensors, meta);
    REQUIRE_THROWS_AS(dci.load(bad.str()), mint::Error);
    REQUIRE_THROWS_WITH(dci.load(bad.str()), Contains(bad.str()) && Contains("mint.dci.trained_depth"));
    unchanged();
  }
  // A NaN in the last module's tensors: before, the earlier modules were already overwritten when it threw (and
  // the NaN itself was accepted).
  auto tensors = file.tensors;
  auto& last = std::prev(tensors.end())->second;
  last = last.clone();
  last[0] = std::numeric_limits<float>::quiet_NaN();
  io::save_safetensors(bad.str(), tensors, file.metadata);
  REQUIRE_THROWS_WITH(dci.load(bad.str()), Contains(bad.str()) && Contains("non-finite"));
  unchanged();
  // A wrong shape in the last module: the same.
  tensors = file.tensors;
  std::prev(tensors.end())->second = Tensor<Cpu>::zeros(Shape{1});
  io::save_safetensors(bad.str(), tensors, file.metadata);
  REQUIRE_THROWS_WITH(dci.load(bad.str()), Contains("has shape [1]"));
  unchanged();
  REQUIRE_NOTHROW(dci.load(good.str()));
}
