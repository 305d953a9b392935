// The engine's contracts with its policies (mint/inversion/inverter.hpp, concepts.hpp, loss_sink.hpp,
// callbacks.hpp): a selector reading per-head attention through the model's probe and a schedule with
// geometrically spaced detach points, each written from docs/policies.md ("Writing a policy") alone in under 20
// lines; a ranking that breaks the permutation rule is an error naming the selector; an objective without a sink
// form reports the same loss; a non-capturable policy is refused for a CUDA graph; callbacks stop, checkpoint and
// count; schedules see the previous iteration's statistics.
#include "test_util.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "mint/inversion/inverter.hpp"
#include "mint/inversion/presets.hpp"
#include "mint/models/vit.hpp"

using namespace mint;

namespace engine_policies_test {

ViT<> teacher() { return ViT<>::load(std::string(MINT_MODELS_DIR) + "/fmnist_vit.safetensors"); }

InversionOptions options(int iterations) {
  InversionOptions o;
  o.iterations = iterations;
  o.seed = 4;
  return o;
}

// From docs/policies.md: rank by the largest single head's CLS attention in the last block (not the mean).
struct MaxHeadSelector {
  int block = -1;
  std::vector<std::int32_t> rank(const RankInput& in) const {
    const auto heads = in.per_head(block);
    const std::size_t k = in.active.size(), h = heads.size() / k;
    std::vector<float> score(k, 0.0f);
    for (std::size_t i = 0; i < h; ++i)
      for (std::size_t j = 0; j < k; ++j) score[j] = std::max(score[j], heads[i * k + j]);
    std::vector<std::size_t> idx(k);
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return score[a] > score[b]; });
    std::vector<std::int32_t> out;
    for (auto i : idx) out.push_back(in.active[i]);
    return out;
  }
};

// From docs/policies.md: detach N / v patches at t_k = round(T * ratio^(v - k)), k = 1..v-1.
struct GeometricRebirth {
  int v = 4;
  float ratio = 0.5f;
  std::vector<int> points{};
  void begin(const RunInfo& run) {
    check(v >= 2 && v <= run.patches && ratio > 0.0f && ratio < 1.0f, "GeometricRebirth: v ", v, ", ratio ", ratio);
    points.clear();
    for (int k = 1; k < v; ++k)
      points.push_back(static_cast<int>(std::lround(run.iterations * std::pow(ratio, v - k))));
    per_ = run.patches / v;
  }
  ScheduleEvent event(const ScheduleInput& in) const {
    if (std::find(points.begin(), points.end(), in.t) != points.end()) return {ScheduleEvent::Kind::Detach, per_};
    return {};
  }
  int per_ = 0;
};

// Returns the head-averaged ranking with its first patch repeated in place of its last.
struct DuplicateSelector {
  std::vector<std::int32_t> rank(const RankInput& in) const {
    auto out = HighAttention{}.rank(in);
    out.back() = out.front();
    return out;
  }
};

// Records, at every ranking, the largest gap between the probe's per-head attention averaged over heads and the
// engine's head-averaged attention (the same numbers summed in the same head order: the gap is 0 up to float
// rounding of the two sums, at most a few ulp of values <= 1; 1e-6 is that bound).
struct ProbeCheckSelector {
  double* max_gap;
  int* calls;
  std::vector<std::int32_t> rank(const RankInput& in) const {
    const auto heads = in.per_head();
    const std::size_t k = in.active.size(), h = heads.size() / k;
    for (std::size_t j = 0; j < k; ++j) {
      double mean = 0.0;
      for (std::size_t i = 0; i < h; ++i) mean += heads[i * k + j] / static_cast<double>(h);
      *max_gap = std::max(*max_gap, std::abs(mean - in.attention[j]));
    }
    ++*calls;
    return HighAttention{}.rank(in);
  }
};

// An objective with only the plain form (returns its loss; no sink form): the engine adds the value.
struct PlainCrossEntropy {
  float loss(const Tensor<Cpu>& logits, const std::vector<int>& labels, Tensor<Cpu>& d) const {
    return nn::cross_entropy(logits, labels, &d);
  }
};

// A schedule that records the previous iteration's loss it is shown.
struct RecordingSchedule {
  std::vector<float>* seen;
  ScheduleEvent event(const ScheduleInput& in) const {
    seen->push_back(in.previous ? in.previous->loss : std::nanf(""));
    return {};
  }
};

// The test cases live in the namespace too: the test files share translation units (unity build), and another
// file's `using` of its own teacher() would make an unqualified call ambiguous at global scope.

TEST_CASE("engine: a per-head selector from docs/policies.md runs, and the probe agrees with the mean attention",
          "[inversion][engine]") {
  auto model = teacher();
  Inverter<ViT<>, ClassObjective, TV, MaxHeadSelector, Rebirth> inv(model, {}, {}, {}, Rebirth{4}, {}, options(8));
  const auto res = inv.run({1, 2});
  REQUIRE(res.images.size() == 8);
  for (const auto& s : res.images) REQUIRE(s.mask.numel() == 49);
  double gap = 0.0;
  int calls = 0;
  Inverter<ViT<>, ClassObjective, TV, ProbeCheckSelector, Rebirth> check_inv(model, {}, {},
                                                                             ProbeCheckSelector{&gap, &calls},
                                                                             Rebirth{4}, {}, options(8));
  (void)check_inv.run({1, 2});
  REQUIRE(calls == 2 * 3);  // 2 images, 3 detachments
  REQUIRE(gap <= 1e-6);
  // a block past the model's depth is an error naming it
  Inverter<ViT<>, ClassObjective, TV, MaxHeadSelector, Rebirth> bad(model, {}, {}, MaxHeadSelector{7}, Rebirth{4}, {},
                                                                    options(8));
  REQUIRE_THROWS_WITH(bad.run({1}), Catch::Contains("AttentionProbe: block 7"));
}

TEST_CASE("engine: a geometric detach schedule from docs/policies.md detaches at its points",
          "[inversion][engine]") {
  auto model = teacher();
  using Geometric = Inverter<ViT<>, ClassObjective, TV, HighAttention, GeometricRebirth>;
  Geometric inv(model, {}, {}, {}, GeometricRebirth{.v = 4, .ratio = 0.5f}, {}, options(16));
  const auto res = inv.run({5});
  std::vector<int> at;
  for (const auto& s : res.images) at.push_back(s.iteration);
  REQUIRE(at == std::vector<int>{2, 4, 8, 16});  // 16 * 0.5^3, 0.5^2, 0.5, then the last image at T
  GeometricRebirth bad{.v = 1, .ratio = 0.5f};
  Geometric refused(model, {}, {}, {}, bad, {}, options(4));
  REQUIRE_THROWS_WITH(refused.run({5}), Catch::Contains("GeometricRebirth: v 1"));
}

TEST_CASE("engine: a selector returning a duplicate fails naming the selector, the iteration and the rule",
          "[inversion][engine]") {
  auto model = teacher();
  Inverter<ViT<>, ClassObjective, TV, DuplicateSelector, Rebirth> inv(model, {}, {}, {}, Rebirth{2}, {}, options(6));
  REQUIRE_THROWS_WITH(inv.run({0}), Catch::Contains("selector engine_policies_test::DuplicateSelector") &&
                                        Catch::Contains("at iteration 3") && Catch::Contains("twice") &&
                                        Catch::Contains("permutation"));
}

TEST_CASE("engine: an objective without a sink form reports the same loss, and is refused for a CUDA graph",
          "[inversion][engine]") {
  auto model = teacher();
  DMI<ViT<>> builtin(model, {}, {}, {}, {}, {}, options(3));
  Inverter<ViT<>, PlainCrossEntropy, TV> plain(model, {}, {}, {}, {}, {}, options(3));
  const auto a = builtin.run({3}), b = plain.run({3});
  REQUIRE(a.history.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) REQUIRE(a.history[i].loss == b.history[i].loss);  // the same float sums
  auto o = options(3);
  o.cuda_graph = true;
  Inverter<ViT<>, PlainCrossEntropy, TV> graph(model, {}, {}, {}, {}, {}, o);
  REQUIRE_THROWS_WITH(graph.run({3}), Catch::Contains("objective engine_policies_test::PlainCrossEntropy") &&
                                          Catch::Contains("cannot be captured"));
  Inverter<ViT<>, ClassObjective, TVOfficial> official(model, {}, {}, {}, {}, {}, o);
  REQUIRE_THROWS_WITH(official.run({3}), Catch::Contains("the prior") && Catch::Contains("TVOfficial"));
}

TEST_CASE("engine: callbacks stop early, checkpoint where asked and meter every iteration",
          "[inversion][engine]") {
  auto model = teacher();
  PRI<ViT<>> pri(model, {}, {}, {}, Rebirth{4}, {}, options(12));
  int progress = 0;
  struct StopAt {
    int at;
    bool on_iteration(const IterationStats& s) const { return s.iteration == at; }
  };
  std::vector<int> saved;
  Checkpoint cp{.every = 4, .save = [&](const CheckpointState& st) {
                  saved.push_back(st.iteration);
                  REQUIRE(st.canvas.shape() == Shape{2, 1, 28, 28});
                }};
  CostMeter meter(model.config());
  const auto res = pri.run({0, 1}, [&](const IterationStats&) { ++progress; }, StopAt{7}, cp, MeterCallback{meter});
  REQUIRE(progress == 7);
  REQUIRE(res.stopped_early);
  REQUIRE(res.history.size() == 7);
  REQUIRE(saved == std::vector<int>{4});
  REQUIRE(meter.runs() == 1);
  REQUIRE(meter.iterations() == 7);
  // 2 trajectories: detachments at 3 and 6, then the patches in flight leave at 7
  REQUIRE(res.images.size() == 6);
  REQUIRE(res.images.back().iteration == 7);
  EarlyStop never{.patience = 1000};
  const auto full = pri.run({0, 1}, never);
  REQUIRE_FALSE(full.stopped_early);
  REQUIRE(full.history.size() == 12);
}

TEST_CASE("engine: a schedule sees the previous iteration's statistics", "[inversion][engine]") {
  auto model = teacher();
  std::vector<float> seen;
  Inverter<ViT<>, ClassObjective, TV, HighAttention, RecordingSchedule> inv(model, {}, {}, {},
                                                                            RecordingSchedule{&seen}, {}, options(4));
  const auto res = inv.run({2});
  REQUIRE(seen.size() == 4);
  REQUIRE(std::isnan(seen[0]));
  for (std::size_t t = 1; t < 4; ++t) REQUIRE(seen[t] == res.history[t - 1].loss);
}

// Best-image keeping is a callback (KeepBest); InversionOptions::kept_image is the engine running one. The
// two forms are the same code, so their images must agree bit for bit; two keepers are refused before any work.
TEST_CASE("engine: KeepBest as a callback equals InversionOptions::kept_image, and two keepers are refused",
          "[inversion][engine][best]") {
  auto model = teacher();
  InversionOptions o = options(12);
  o.lr = 0.6f;  // a large step: the loss is not monotone, so the best canvas is not the last one
  const std::vector<int> labels{0, 7};
  for (const KeptImage when : {KeptImage::Best, KeptImage::BestAfterStep}) {
    INFO("KeptImage " << static_cast<int>(when));
    InversionOptions by_option = o;
    by_option.kept_image = when;
    const auto a = PRI<ViT<>>(model, {}, {}, {}, Rebirth{3}, {}, by_option).run(labels);
    const auto b = PRI<ViT<>>(model, {}, {}, {}, Rebirth{3}, {}, o).run(labels, KeepBest<>{when});
    const auto last = PRI<ViT<>>(model, {}, {}, {}, Rebirth{3}, {}, o).run(labels);
    REQUIRE(a.images.size() == b.images.size());
    bool differs_from_last = false;
    for (std::size_t i = 0; i < a.images.size(); ++i) {
      MINT_REQUIRE_CLOSE(testing::compare(b.images[i].pixels, a.images[i].pixels, {0, 0}, "KeepBest vs option"));
      differs_from_last = differs_from_last ||
                          !testing::compare(a.images[i].pixels, last.images[i].pixels, {0, 0}, "vs Last").ok;
    }
    REQUIRE(differs_from_last);  // the keeper did keep another canvas (else this test could not fail)
  }
  InversionOptions both = o;
  both.kept_image = KeptImage::Best;
  int iterations = 0;
  DMI<ViT<>> dmi(model, {}, {}, {}, {}, {}, both);
  const auto count = [&](const IterationStats&) { ++iterations; };
  REQUIRE_THROWS_WITH(dmi.run(labels, KeepBest<>{KeptImage::BestAfterStep}, count),
                      Catch::Contains("2 callbacks keep the canvas images leave from"));
  REQUIRE(iterations == 0);
  // KeptImage::Last keeps nothing, so beside the option it is no second keeper
  REQUIRE(dmi.run(labels, KeepBest<>{KeptImage::Last}).images.size() == 2);
}

}  // namespace engine_policies_test
