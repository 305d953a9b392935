// The official-code policies and options one by one: JitterFlipOfficial (smi.py jitter_and_flip and
// jitter_and_flip_index), the per-channel ClipRange, initial images, Adam on the whole canvas, KeptImage
// (best-image keeping, DeepInversion's behaviour and mint's), and the presets' options.
#include "test_util.hpp"

#include "mint/inversion/presets.hpp"
#include "mint/models/vit.hpp"

using namespace mint;

namespace official_policies_test {
ViT<> policies_model() { return ViT<>::load(std::string(MINT_FIXTURE_DIR) + "/small_vit.safetensors"); }

// jitter_and_flip_index transcribed for one patch number (0-based, grid g, patch p), as Python computes it:
// off // p and off % p / p with Python's floor semantics, roll, one more when the fraction is >= 0.5, flip.
int smi_index(int q, int off1, int off2, bool flip, int p, int g) {
  auto py_floor = [](int a, int b) { return static_cast<int>(std::floor(static_cast<double>(a) / b)); };
  auto shift = [&](int off) {
    const int whole = py_floor(off, p);
    const double frac = static_cast<double>(off - whole * p) / p;
    return whole + (frac >= 0.5 ? 1 : 0);
  };
  const int r = ((q / g + shift(off1)) % g + g) % g;
  int c = ((q % g + shift(off2)) % g + g) % g;
  if (flip) c = g - 1 - c;
  return r * g + c;
}

InversionOptions policies_opts(int iterations) {
  InversionOptions o;
  o.iterations = iterations;
  o.seed = 5;
  o.pixel_lo = -3.0f, o.pixel_hi = 3.0f;
  return o;
}
}  // namespace official_policies_test


TEST_CASE("JitterFlipOfficial rolls pixels, then flips, and remaps patches by smi.py's rounding",
          "[inversion][official][augmentation]") {
  const int p = 4, g = 7;
  for (int off1 = -3; off1 <= 3; ++off1)
    for (int off2 = -3; off2 <= 3; ++off2)
      for (int flip = 0; flip < 2; ++flip) {
        JitterFlipOfficial a;
        a.draws = {{off1, off2, flip != 0}};
        const PatchTransform t = a.sample(1, 0, 0, g, p);
        for (int q = 0; q < g * g; ++q) {
          CAPTURE(off1, off2, flip, q);
          REQUIRE(transform_patch(t, q, g) == official_policies_test::smi_index(q, off1, off2, flip != 0, p, g));
        }
        // the pixels: torch.roll by (off1, off2), then torch.flip along W
        auto x = testing::uniform(Shape{1, 2, 28, 28}, 31), y = Tensor<>::empty(x.shape());
        apply_transform(t, x, y, 0, p, false);
        for (int ch = 0; ch < 2; ++ch)
          for (int i = 0; i < 28; ++i)
            for (int j = 0; j < 28; ++j) {
              const int i2 = ((i + off1) % 28 + 28) % 28;
              int j2 = ((j + off2) % 28 + 28) % 28;
              if (flip) j2 = 27 - j2;
              REQUIRE(y[(ch * 28 + i2) * 28 + j2] == x[(ch * 28 + i) * 28 + j]);
            }
        auto back = Tensor<>::empty(x.shape());
        apply_transform(t, y, back, 0, p, true);  // the inverse brings every pixel home
        MINT_REQUIRE_CLOSE(testing::compare(back, x, {0, 0}, "inverse transform"));
      }
  // half a patch rolls one more patch forward; just under half does not; -half rounds to no patch at all
  JitterFlipOfficial a;
  a.draws = {{2, -2, false}, {1, -3, false}};
  REQUIRE(a.sample(1, 0, 0, g, p).shift_y == 1);
  REQUIRE(a.sample(1, 0, 0, g, p).shift_x == 0);
  REQUIRE(a.sample(2, 0, 0, g, p).shift_y == 0);
  REQUIRE(a.sample(2, 0, 0, g, p).shift_x == -1);  // -3 // 4 = -1, fraction 1/4 < 0.5: no extra patch
  REQUIRE_THROWS_WITH(a.sample(3, 0, 0, g, p), Catch::Contains("2 draws given, none for iteration 3"));
}

TEST_CASE("JitterFlipOfficial draws one transform per batch within int(H/8) pixels", "[inversion][official]") {
  const JitterFlipOfficial a;
  int flips = 0, seen_max = 0;
  for (int t = 1; t <= 400; ++t) {
    const JitterDraw d = a.draw(t, 9, 28);
    REQUIRE(std::abs(d.dy) <= 3);
    REQUIRE(std::abs(d.dx) <= 3);
    seen_max = std::max({seen_max, std::abs(d.dy), std::abs(d.dx)});
    flips += d.flip ? 1 : 0;
    const PatchTransform t0 = a.sample(t, 0, 9, 7, 4), t1 = a.sample(t, 5, 9, 7, 4);
    REQUIRE((t0.roll_y == t1.roll_y && t0.roll_x == t1.roll_x && t0.flip == t1.flip));  // batch-wide
  }
  REQUIRE(seen_max == 3);  // randint's bounds are inclusive
  REQUIRE(flips > 150);
  REQUIRE(flips < 250);
}

TEST_CASE("the official jitter skips the ranking iteration of a prune and the one after it",
          "[inversion][official][augmentation]") {
  // every draw flips and rolls; a run whose draws are zero exactly in the iterations that must be skipped (4 and 5
  // around the prune after 4, 8 and 9 around the one after 8) is the same run, bit for bit
  auto model = official_policies_test::policies_model();
  JitterFlipOfficial jit;
  jit.draws.assign(12, JitterDraw{1, 2, true});
  InversionOptions o = official_policies_test::policies_opts(12);
  auto with = Inverter<ViT<>, ClassObjective, TV, HighAttention, ProgressivePrune, JitterFlipOfficial>(
                  model, {}, {}, {}, ProgressivePrune{{4, 8}, 0.3f}, jit, o)
                  .run({1, 2});
  auto without = SMI<ViT<>>(model, {}, {}, {}, ProgressivePrune{{4, 8}, 0.3f}, {}, o).run({1, 2});
  REQUIRE(with.history[0].loss != without.history[0].loss);  // iteration 1 is jittered
  JitterFlipOfficial zero_there = jit;
  for (int t : {4, 5, 8, 9}) zero_there.draws[static_cast<std::size_t>(t - 1)] = JitterDraw{};
  auto same = Inverter<ViT<>, ClassObjective, TV, HighAttention, ProgressivePrune, JitterFlipOfficial>(
                  model, {}, {}, {}, ProgressivePrune{{4, 8}, 0.3f}, zero_there, o)
                  .run({1, 2});
  for (int t = 0; t < 12; ++t) REQUIRE(same.history[t].loss == with.history[t].loss);
  JitterFlipOfficial other_there = jit;
  other_there.draws[3] = JitterDraw{0, 0, false};
  other_there.draws[2] = JitterDraw{0, 0, false};  // iteration 3 is jittered: changing it changes the run
  auto differs = Inverter<ViT<>, ClassObjective, TV, HighAttention, ProgressivePrune, JitterFlipOfficial>(
                     model, {}, {}, {}, ProgressivePrune{{4, 8}, 0.3f}, other_there, o)
                     .run({1, 2});
  REQUIRE(differs.history[2].loss != with.history[2].loss);
  REQUIRE(with.history[4].active == 34);
}

TEST_CASE("ClipRange clips each channel to its own range, on the CPU masked Adam step", "[inversion][clip]") {
  const Normalization imagenet{{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
  const ClipRange r = ClipRange::of(imagenet, 3);
  for (int c = 0; c < 3; ++c) {
    REQUIRE(r.lo[c] == imagenet.lo(c));
    REQUIRE(r.hi[c] == imagenet.hi(c));
  }
  // one Adam step with a huge lr pushes every pixel far out; each channel lands on its own bound
  auto x = Tensor<>::zeros(Shape{1, 3, 8, 8}), g = Tensor<>::full(Shape{1, 3, 8, 8}, -1.0f);
  auto m = Tensor<>::zeros(x.shape()), v = Tensor<>::zeros(x.shape());
  const fn::AdamStep step{100.0f, 0.5f, 0.99f, 1e-8f, 0.5f, 0.01f};
  masked_adam_step(step, x, g, m, v, nn::TokenIndex::all(1, 4), 4, r);
  for (int c = 0; c < 3; ++c)
    for (int e = 0; e < 64; ++e) REQUIRE(x[c * 64 + e] == imagenet.hi(c));
  // a one-channel normalisation broadcasts; a mismatch or too many channels is refused, naming the counts
  REQUIRE(ClipRange::of(Normalization{{0.5f}, {0.5f}}, 3).hi[2] == 1.0f);
  REQUIRE_THROWS_WITH(ClipRange::of(imagenet, 1), Catch::Contains("3 channels, the model 1"));
  REQUIRE_THROWS_WITH(ClipRange::uniform(17, 0.0f, 1.0f), Catch::Contains("17 channels"));
  REQUIRE_THROWS_WITH(masked_adam_step(step, x, g, m, v, nn::TokenIndex::all(1, 4), 4, ClipRange::uniform(1, 0, 1)),
                      Catch::Contains("clip range for 1 channels, images have 3"));
}

TEST_CASE("initial images are used as given, checked first, and clipping them is an option", "[inversion][init]") {
  auto model = official_policies_test::policies_model();
  InversionOptions o = official_policies_test::policies_opts(1);
  o.initial_images = Tensor<>::full(Shape{2, 1, 28, 28}, 5.0f);  // outside [-3, 3]
  o.clip_initial = false;
  o.lr = 0.0f;  // no step: the first loss is the loss of the given images
  auto res = DMI<ViT<>>(model, {}, {}, {}, {}, {}, o).run({3, 4});
  auto logits = model.forward(o.initial_images);
  auto dl = Tensor<>::zeros(logits.shape());
  const float ce = nn::cross_entropy(logits, {3, 4}, &dl);
  REQUIRE(res.history[0].loss == Approx(ce + nn::total_variation(o.initial_images, 1e-4f)).epsilon(1e-6));
  REQUIRE(res.images[0].pixels[0] == 3.0f);  // the step's clip still applies (lr 0: the pixel only clips)
  o.clip_initial = true;
  auto clipped = DMI<ViT<>>(model, {}, {}, {}, {}, {}, o).run({3, 4});
  const auto flat3 = Tensor<>::full(Shape{2, 1, 28, 28}, 3.0f);  // the given images clipped to [-3, 3]
  auto l3 = model.forward(flat3);
  auto d3 = Tensor<>::zeros(l3.shape());
  REQUIRE(clipped.history[0].loss ==
          Approx(nn::cross_entropy(l3, {3, 4}, &d3) + nn::total_variation(flat3, 1e-4f)).epsilon(1e-6));
  o.initial_images = Tensor<>::zeros(Shape{3, 1, 28, 28});
  REQUIRE_THROWS_WITH(DMI<ViT<>>(model, {}, {}, {}, {}, {}, o).run({3, 4}), Catch::Contains("initial_images"));
  o.initial_images = Tensor<>::zeros(Shape{2, 1, 28, 28});
  o.initial_images[7] = std::nanf("");
  REQUIRE_THROWS_WITH(DMI<ViT<>>(model, {}, {}, {}, {}, {}, o).run({3, 4}),
                      Catch::Contains("initial_images[7]") && Catch::Contains("not finite"));
}

TEST_CASE("step_whole_canvas moves pruned patches (smi.py's Adam on the whole tensor), the default freezes them",
          "[inversion][official]") {
  auto model = official_policies_test::policies_model();
  InversionOptions o = official_policies_test::policies_opts(12);
  auto frozen = SMI<ViT<>>(model, {}, {}, {}, ProgressivePrune{{3}, 0.5f}, {}, o).run({2});
  o.step_whole_canvas = true;
  auto moving = SMI<ViT<>>(model, {}, {}, {}, ProgressivePrune{{3}, 0.5f}, {}, o).run({2});
  int pruned = 0;
  for (int q = 0; q < 49; ++q) {
    if (moving.images[0].mask[q] != 0.0f) continue;
    ++pruned;
    REQUIRE(frozen.update_counts[q] == 3.0f);
    REQUIRE(moving.update_counts[q] == 12.0f);
  }
  REQUIRE(pruned == 25);
  // the frozen run's pruned pixels are those after iteration 3; the moving run's changed after that
  auto at3 =
      SMI<ViT<>>(model, {}, {}, {}, ProgressivePrune{{3}, 0.5f}, {}, official_policies_test::policies_opts(3)).run({2});
  bool changed = false;
  for (int q = 0; q < 49; ++q) {
    if (moving.images[0].mask[q] != 0.0f) continue;
    const int y0 = (q / 7) * 4, x0 = (q % 7) * 4;
    for (int y = y0; y < y0 + 4; ++y)
      for (int x = x0; x < x0 + 4; ++x) {
        REQUIRE(frozen.images[0].pixels[y * 28 + x] == at3.images[0].pixels[y * 28 + x]);
        changed = changed || moving.images[0].pixels[y * 28 + x] != at3.images[0].pixels[y * 28 + x];
      }
  }
  REQUIRE(changed);
}

TEST_CASE("KeptImage: Last, Best (the canvas of the lowest loss) and BestAfterStep (DeepInversion's clone)",
          "[inversion][best]") {
  auto model = official_policies_test::policies_model();
  InversionOptions o = official_policies_test::policies_opts(30);
  o.lr = 0.6f;  // a large step, so the loss is not monotone and the best iteration is not the last
  const std::vector<int> labels{1, 5};
  auto last = DMI<ViT<>>(model, {}, {}, {}, {}, {}, o).run(labels);
  std::size_t best_t = 0;  // 0-based: the loss of iteration best_t + 1, computed on the canvas after best_t steps
  for (std::size_t t = 1; t < last.history.size(); ++t)
    if (last.history[t].loss < last.history[best_t].loss) best_t = t;
  REQUIRE(best_t + 1 < last.history.size());
  auto pixels_after = [&](int steps) {  // the canvas after `steps` steps (a Last run of that length)
    InversionOptions s = o;
    s.iterations = steps;
    s.kept_image = KeptImage::Last;
    return DMI<ViT<>>(model, {}, {}, {}, {}, {}, s).run(labels).images;
  };
  o.kept_image = KeptImage::Best;
  auto best = DMI<ViT<>>(model, {}, {}, {}, {}, {}, o).run(labels);
  REQUIRE(best.history.size() == last.history.size());
  REQUIRE(best_t >= 1);  // (the first loss is of the initial noise; a step lowers it)
  const auto before = pixels_after(static_cast<int>(best_t));
  const auto after = pixels_after(static_cast<int>(best_t) + 1);
  o.kept_image = KeptImage::BestAfterStep;
  auto stepped = DMI<ViT<>>(model, {}, {}, {}, {}, {}, o).run(labels);
  for (int i = 0; i < 2; ++i) {
    MINT_REQUIRE_CLOSE(testing::compare(best.images[i].pixels, before[i].pixels, {0, 0}, "Best"));
    MINT_REQUIRE_CLOSE(testing::compare(stepped.images[i].pixels, after[i].pixels, {0, 0}, "BestAfterStep"));
  }
  // PRI: a detached image comes from the best canvas of its stage (the iterations since the previous event);
  // before the first detachment PRI is DMI, so the first stage's best is found in the DMI run
  o.kept_image = KeptImage::Best;
  const int v = 2, total = 30, t1 = total / v;
  auto pri = PRI<ViT<>>(model, {}, {}, {}, Rebirth{v}, {}, o).run(labels);
  std::size_t stage_best = 0;
  for (std::size_t t = 1; t < static_cast<std::size_t>(t1); ++t)
    if (pri.history[t].loss < pri.history[stage_best].loss) stage_best = t;
  REQUIRE(stage_best >= 1);
  const auto stage_canvas = pixels_after(static_cast<int>(stage_best));
  REQUIRE(pri.images[0].iteration == t1);
  MINT_REQUIRE_CLOSE(testing::compare(pri.images[0].pixels, stage_canvas[0].pixels, {0, 0}, "PRI stage best"));
}

TEST_CASE("presets: names, the official options, and run_official", "[inversion][presets]") {
  REQUIRE(preset_form("paper") == PresetForm::Paper);
  REQUIRE(preset_form("official") == PresetForm::Official);
  REQUIRE_THROWS_WITH(preset_form("smi"), Catch::Contains("'smi'") && Catch::Contains("paper or official"));
  const Normalization n{{0.286f}, {0.353f}};
  const InversionOptions paper = preset_options(PresetForm::Paper, n), off = preset_options(PresetForm::Official, n);
  REQUIRE((paper.iterations == 4000 && off.iterations == 4000 && off.lr == 0.25f && off.beta1 == 0.5f &&
           off.beta2 == 0.99f));
  REQUIRE((paper.clip_initial && !paper.step_whole_canvas && paper.kept_image == KeptImage::Last));
  REQUIRE((!off.clip_initial && off.step_whole_canvas && off.kept_image == KeptImage::Last));
  REQUIRE(off.clip_range(1).lo[0] == n.lo(0));
  REQUIRE_THROWS_WITH(preset_options(PresetForm::Official, Normalization{{0.5f}, {0.0f}}),
                      Catch::Contains("std[0]"));
  auto model = official_policies_test::policies_model();
  InversionOptions o = off;
  o.iterations = 8;
  const auto dmi = run_official(model, Dense{}, {1, 2}, o);
  const auto smi = run_official(model, ProgressivePrune{{3}, 0.3f}, {1, 2}, o);
  const auto pri = run_official(model, Rebirth{2}, {1, 2}, o);
  REQUIRE((dmi.images.size() == 2 && smi.images.size() == 2 && pri.images.size() == 4));
  REQUIRE(smi.history.back().active == 34);
}
