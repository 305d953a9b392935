// tasks/train_augment.hpp: DeiT-style training augmentation. Mixup and cutmix checked pixel by pixel against their
// definitions (image i with image B-1-i), the soft targets against the smoothed one-hot formula, the choice between
// them and the Beta draws against their expected frequencies, random erasing as one rectangle of N(0, 1) noise per
// image, the same on one and two threads, and bad options refused.
#include "test_util.hpp"

#include <cmath>
#include <vector>

#include "mint/backend/cpu/parallel.hpp"
#include "mint/tasks/train_augment.hpp"

// Helpers and test cases in their own namespace: the unity build compiles several test files in one translation unit.
namespace train_augment_test {

using namespace mint;

constexpr std::int64_t kB = 6, kH = 12, kW = 10;

Tensor<Cpu> batch_of(std::uint64_t seed) {
  auto x = Tensor<Cpu>::empty(Shape{kB, 1, kH, kW});
  fill_normal(x, seed, 0, 0.0f, 1.0f);
  return x;
}

const std::vector<int> kLabels{0, 1, 2, 3, 4, 4};

// The expected soft target of image i for class c (smoothing s, 10 classes, weight lam on its own label).
float target_of(std::int64_t i, int c, float lam, float s) {
  const float off = s / 10, on = 1.0f - s + off;
  float t = off;
  if (c == kLabels[static_cast<std::size_t>(i)]) t += lam * (on - off);
  if (c == kLabels[static_cast<std::size_t>(kB - 1 - i)]) t += (1.0f - lam) * (on - off);
  return t;
}

void require_targets(const Tensor<Cpu>& t, float lam, float s) {
  REQUIRE(t.shape() == Shape{kB, 10});
  for (std::int64_t i = 0; i < kB; ++i) {
    double sum = 0.0;
    for (int c = 0; c < 10; ++c) {
      REQUIRE(t[i * 10 + c] == Approx(target_of(i, c, lam, s)).margin(1e-6));  // float sums of three terms
      sum += t[i * 10 + c];
    }
    REQUIRE(sum == Approx(1.0).margin(1e-5));
  }
}

TEST_CASE("mix_batch: mixup is lam x_i + (1 - lam) x_(B-1-i), targets mixed the same way", "[tasks][augment]") {
  const tasks::MixOptions o{.mixup_alpha = 0.8f, .smoothing = 0.1f};
  for (std::uint64_t step = 0; step < 5; ++step) {
    const auto orig = batch_of(step);
    auto x = orig.clone();
    tasks::MixInfo info;
    const auto t = tasks::mix_batch(x, kLabels, 10, o, 7, 3, step, &info);
    REQUIRE(info.kind == tasks::MixInfo::Kind::mixup);
    REQUIRE(info.lam >= 0.0f);
    REQUIRE(info.lam <= 1.0f);
    for (std::int64_t i = 0; i < kB; ++i)
      for (std::int64_t p = 0; p < kH * kW; ++p)  // the same float expression: exact
        REQUIRE(x[i * kH * kW + p] ==
                info.lam * orig[i * kH * kW + p] + (1.0f - info.lam) * orig[(kB - 1 - i) * kH * kW + p]);
    require_targets(t, info.lam, 0.1f);
  }
}

TEST_CASE("mix_batch: cutmix pastes the partner's box and lam is the kept area", "[tasks][augment]") {
  const tasks::MixOptions o{.cutmix_alpha = 1.0f};
  int clipped_or_empty = 0;
  for (std::uint64_t step = 0; step < 20; ++step) {
    const auto orig = batch_of(100 + step);
    auto x = orig.clone();
    tasks::MixInfo info;
    const auto t = tasks::mix_batch(x, kLabels, 10, o, 7, 3, step, &info);
    REQUIRE(info.kind == tasks::MixInfo::Kind::cutmix);
    REQUIRE(0 <= info.y0);
    REQUIRE(info.y0 <= info.y1);
    REQUIRE(info.y1 <= kH);
    REQUIRE(0 <= info.x0);
    REQUIRE(info.x0 <= info.x1);
    REQUIRE(info.x1 <= kW);
    const int box = (info.y1 - info.y0) * (info.x1 - info.x0);
    clipped_or_empty += box == 0;
    REQUIRE(info.lam == 1.0f - static_cast<float>(static_cast<double>(box) / (kH * kW)));
    for (std::int64_t i = 0; i < kB; ++i)
      for (std::int64_t y = 0; y < kH; ++y)
        for (std::int64_t c = 0; c < kW; ++c) {
          const bool in = y >= info.y0 && y < info.y1 && c >= info.x0 && c < info.x1;
          const std::int64_t src = in ? kB - 1 - i : i;
          REQUIRE(x[(i * kH + y) * kW + c] == orig[(src * kH + y) * kW + c]);
        }
    require_targets(t, info.lam, 0.0f);
  }
  REQUIRE(clipped_or_empty < 20);  // some steps pasted a non-empty box
}

TEST_CASE("mix_batch: switch and Beta draws at their expected frequencies, no mixing when off", "[tasks][augment]") {
  // 400 batches, switch 0.5: the count of cutmix batches is Binomial(400, 0.5), sd 10; +-45 is 4.5 sd.
  // Mixup's lam ~ Beta(0.8, 0.8): mean 0.5, sd 0.31; over ~200 draws the mean's sd is 0.022, +-0.1 is 4.5 sd.
  const tasks::MixOptions o{.mixup_alpha = 0.8f, .cutmix_alpha = 1.0f};
  int cut = 0, mix = 0;
  double lam_sum = 0.0;
  for (std::uint64_t step = 0; step < 400; ++step) {
    auto x = batch_of(1);
    tasks::MixInfo info;
    tasks::mix_batch(x, kLabels, 10, o, 11, 5, step, &info);
    if (info.kind == tasks::MixInfo::Kind::cutmix) ++cut;
    if (info.kind == tasks::MixInfo::Kind::mixup) ++mix, lam_sum += info.lam;
  }
  REQUIRE(cut + mix == 400);
  REQUIRE(std::abs(cut - 200) <= 45);
  REQUIRE(std::abs(lam_sum / mix - 0.5) < 0.1);

  // Same (seed, stream, step): the same batch; another step: another lam.
  auto a = batch_of(2), b = batch_of(2), c = batch_of(2);
  tasks::MixInfo ia, ib, ic;
  tasks::mix_batch(a, kLabels, 10, o, 11, 5, 9, &ia);
  tasks::mix_batch(b, kLabels, 10, o, 11, 5, 9, &ib);
  tasks::mix_batch(c, kLabels, 10, o, 11, 5, 10, &ic);
  REQUIRE(ia.lam == ib.lam);
  for (std::int64_t i = 0; i < a.numel(); ++i) REQUIRE(a[i] == b[i]);
  REQUIRE(ia.lam != ic.lam);

  // mix_prob 0 (or both alphas 0): the batch untouched, targets the smoothed one-hot.
  for (const auto& off : {tasks::MixOptions{.mixup_alpha = 0.8f, .mix_prob = 0.0f, .smoothing = 0.1f},
                          tasks::MixOptions{.smoothing = 0.1f}}) {
    const auto orig = batch_of(3);
    auto x = orig.clone();
    tasks::MixInfo info;
    const auto t = tasks::mix_batch(x, kLabels, 10, off, 11, 5, 0, &info);
    REQUIRE(info.kind == tasks::MixInfo::Kind::none);
    for (std::int64_t i = 0; i < x.numel(); ++i) REQUIRE(x[i] == orig[i]);
    require_targets(t, 1.0f, 0.1f);
    REQUIRE(t[0] == Approx(0.91f));  // 1 - 0.1 + 0.1 / 10 on the label
    REQUIRE(t[1] == Approx(0.01f));
  }
}

TEST_CASE("random_erase: one rectangle of N(0, 1) noise per erased image, thread-count independent",
          "[tasks][augment]") {
  constexpr std::int64_t n = 64, h = 28, w = 28;
  auto orig = Tensor<Cpu>::full(Shape{n, 1, h, w}, 5.0f);  // 5 is far outside what N(0, 1) noise lands on
  const tasks::EraseOptions o{.prob = 1.0f};
  const int threads = cpu::num_threads();
  cpu::set_num_threads(1);
  auto one = orig.clone();
  tasks::random_erase(one, o, 3, 9, 0);
  cpu::set_num_threads(2);
  auto two = orig.clone();
  tasks::random_erase(two, o, 3, 9, 0);
  cpu::set_num_threads(threads);
  for (std::int64_t i = 0; i < one.numel(); ++i) REQUIRE(one[i] == two[i]);

  int erased = 0;
  double sum = 0.0, sq = 0.0;
  std::int64_t count = 0;
  for (std::int64_t j = 0; j < n; ++j) {
    int y0 = h, y1 = -1, x0 = w, x1 = -1, changed = 0;
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int64_t x = 0; x < w; ++x) {
        const float v = one[(j * h + y) * w + x];
        if (v == 5.0f) continue;
        ++changed, sum += v, sq += static_cast<double>(v) * v, ++count;
        y0 = std::min<int>(y0, static_cast<int>(y)), y1 = std::max<int>(y1, static_cast<int>(y));
        x0 = std::min<int>(x0, static_cast<int>(x)), x1 = std::max<int>(x1, static_cast<int>(x));
      }
    if (changed == 0) continue;  // no box fitted in 10 attempts (possible, as in timm)
    ++erased;
    const int area = (y1 - y0 + 1) * (x1 - x0 + 1);
    REQUIRE(changed == area);  // a filled rectangle
    REQUIRE(y1 - y0 + 1 < h);
    REQUIRE(x1 - x0 + 1 < w);
    // Rounded sides of sqrt(area * aspect): the area is within the range up to a side's rounding on each side.
    const double a_max = h * w / 3.0, slack = 0.5 * (y1 - y0 + 1 + x1 - x0 + 1) + 0.25;
    REQUIRE(area <= a_max + slack);
    REQUIRE(area >= 0.02 * h * w - slack);
  }
  REQUIRE(erased >= 56);  // at prob 1 most images get a box (each attempt fits more often than not)
  const double mean = sum / static_cast<double>(count), var = sq / static_cast<double>(count) - mean * mean;
  REQUIRE(std::abs(mean) < 0.1);  // thousands of N(0, 1) draws: the mean's sd is below 0.03
  REQUIRE(std::abs(var - 1.0) < 0.15);

  auto none = orig.clone();
  tasks::random_erase(none, tasks::EraseOptions{.prob = 0.0f}, 3, 9, 0);
  for (std::int64_t i = 0; i < none.numel(); ++i) REQUIRE(none[i] == 5.0f);
}

TEST_CASE("train_augment: bad options and batches are refused by name", "[tasks][augment]") {
  auto x = batch_of(4);
  REQUIRE_THROWS_WITH(tasks::random_erase(x, tasks::EraseOptions{.prob = 1.5f}, 0, 0, 0),
                      Catch::Contains("probability 1.5"));
  REQUIRE_THROWS_WITH(tasks::random_erase(x, tasks::EraseOptions{.prob = 0.5f, .min_area = 0.5f, .max_area = 0.2f}, 0,
                                          0, 0),
                      Catch::Contains("area range"));
  REQUIRE_THROWS_WITH(tasks::mix_batch(x, kLabels, 10, tasks::MixOptions{.smoothing = 1.0f}, 0, 0, 0),
                      Catch::Contains("label smoothing"));
  REQUIRE_THROWS_WITH(tasks::mix_batch(x, kLabels, 10, tasks::MixOptions{.mixup_alpha = -1.0f}, 0, 0, 0),
                      Catch::Contains("mixup: alpha"));
  REQUIRE_THROWS_WITH(tasks::mix_batch(x, {0, 1}, 10, tasks::MixOptions{}, 0, 0, 0), Catch::Contains("2 labels"));
  REQUIRE_THROWS_WITH(tasks::mix_batch(x, {0, 1, 2, 3, 4, 10}, 10, tasks::MixOptions{}, 0, 0, 0),
                      Catch::Contains("label 10"));
  auto flat = Tensor<Cpu>::zeros(Shape{6, 120});
  REQUIRE_THROWS_WITH(tasks::mix_batch(flat, kLabels, 10, tasks::MixOptions{}, 0, 0, 0),
                      Catch::Contains("[B, C, H, W]"));
}

}  // namespace train_augment_test
