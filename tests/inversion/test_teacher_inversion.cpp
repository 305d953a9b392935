// End to end on the embedded Fashion-MNIST teacher (models/fmnist_vit.safetensors): DMI reaches a mean target
// probability of at least 0.9 within its budget, and PRI's last image of each trajectory, fed to the teacher
// with only its kept patches, is classified as its target for most trajectories.
#include "test_util.hpp"

#include <cmath>

#include "mint/inversion/inverter.hpp"
#include "mint/models/vit.hpp"

using namespace mint;

namespace {
ViT<> teacher() { return ViT<>::load(std::string(MINT_MODELS_DIR) + "/fmnist_vit.safetensors"); }
InversionOptions options(int iterations) {
  InversionOptions o;
  o.iterations = iterations;
  o.seed = 1;
  o.pixel_lo = (0.0f - 0.2860f) / 0.3530f, o.pixel_hi = (1.0f - 0.2860f) / 0.3530f;  // the recipe's normalisation
  return o;
}
std::vector<int> all_classes() { return {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}; }
// softmax probability of `label` in row i of logits
double prob(const Tensor<>& z, std::int64_t i, int label) {
  const auto c = z.dim(1);
  double mx = -1e30, s = 0;
  for (std::int64_t j = 0; j < c; ++j) mx = std::max(mx, static_cast<double>(z[i * c + j]));
  for (std::int64_t j = 0; j < c; ++j) s += std::exp(z[i * c + j] - mx);
  return std::exp(z[i * c + label] - mx) / s;
}
}  // namespace

TEST_CASE("DMI on the teacher reaches a mean target probability >= 0.9 in 200 iterations",
          "[inversion][teacher][slow]") {
  auto model = teacher();
  DMI<ViT<>> dmi(model, {}, TV{1e-4f}, {}, {}, {}, options(200));
  auto res = dmi.run(all_classes());
  auto batch = Tensor<>::empty(Shape{10, 1, 28, 28});
  for (int i = 0; i < 10; ++i) std::copy(res.images[i].pixels.data(), res.images[i].pixels.data() + 784, batch.data() + i * 784);
  auto logits = model.forward(batch);
  double mean = 0;
  for (int i = 0; i < 10; ++i) mean += prob(logits, i, i) / 10;
  CAPTURE(mean);
  REQUIRE(mean >= 0.9);
}

TEST_CASE("PRI v=4 on the teacher: the last image of most trajectories is classified as its target",
          "[inversion][teacher][slow]") {
  auto model = teacher();
  PRI<ViT<>> pri(model, {}, TV{1e-4f}, {}, Rebirth{4}, {}, options(400));
  auto res = pri.run(all_classes());
  REQUIRE(res.images.size() == 40);
  int hits = 0;
  for (const auto& s : res.images) {
    if (s.iteration != 400) continue;  // the last image of its trajectory: 49 - 3 * 12 = 13 patches
    nn::TokenIndex keep{1, 0, {}};
    for (int q = 0; q < 49; ++q)
      if (s.mask[q] == 1.0f) keep.index.push_back(q);
    keep.count = static_cast<std::int64_t>(keep.index.size());
    REQUIRE(keep.count == 13);
    auto logits = model.forward(s.pixels.reshape(Shape{1, 1, 28, 28}), &keep);
    const float* r = logits.data();
    hits += static_cast<int>(std::max_element(r, r + 10) - r) == s.label;
  }
  CAPTURE(hits);
  REQUIRE(hits >= 8);  // the bar: at least 8 of the 10 trajectories
}
