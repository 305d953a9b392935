// The Inverter engine on the small fixture ViT: DMI lowers the loss and reaches the target class; SMI's active
// counts follow its schedule and its mask is the kept set; PRI yields v images with disjoint masks covering
// every patch, detached at k*floor(T/v); frozen patches stop changing; the dataset file round-trips.
#include "test_util.hpp"

#include <fstream>
#include <iterator>
#include <set>

#include "mint/inversion/inverter.hpp"
#include "mint/models/vit.hpp"

using namespace mint;

namespace {
ViT<> small_model() { return ViT<>::load(std::string(MINT_FIXTURE_DIR) + "/small_vit.safetensors"); }
InversionOptions opts(int iterations) {
  InversionOptions o;
  o.iterations = iterations;
  o.lr = 0.1f;
  o.seed = 3;
  o.pixel_lo = -3.0f, o.pixel_hi = 3.0f;
  return o;
}
int argmax_row(const Tensor<>& z, std::int64_t i) {
  const auto c = z.dim(1);
  return static_cast<int>(std::max_element(z.data() + i * c, z.data() + (i + 1) * c) - (z.data() + i * c));
}
}  // namespace

TEST_CASE("DMI lowers the loss and the model predicts the target class", "[inversion][inverter]") {
  auto model = small_model();
  DMI<ViT<>> inv(model, {}, {}, {}, {}, {}, opts(60));
  const std::vector<int> labels{0, 3, 7, 9};
  auto res = inv.run(labels);
  REQUIRE(res.history.size() == 60);
  REQUIRE(res.history.back().loss < 0.5f * res.history.front().loss);
  REQUIRE(res.images.size() == 4);
  auto batch = Tensor<>::empty(Shape{4, 1, 28, 28});
  for (int i = 0; i < 4; ++i) {
    REQUIRE(res.images[i].label == labels[i]);
    REQUIRE(res.images[i].iteration == 60);
    for (int q = 0; q < 49; ++q) REQUIRE(res.images[i].mask[q] == 1.0f);  // dense: every patch
    std::copy(res.images[i].pixels.data(), res.images[i].pixels.data() + 784, batch.data() + i * 784);
    for (int q = 0; q < 49; ++q) REQUIRE(res.update_counts[i * 49 + q] == 60.0f);
  }
  auto logits = model.forward(batch);
  for (int i = 0; i < 4; ++i) REQUIRE(argmax_row(logits, i) == labels[i]);
  for (std::int64_t i = 0; i < batch.numel(); ++i) REQUIRE(std::abs(batch[i]) <= 3.0f);  // clipped
}

TEST_CASE("SMI prunes on schedule, the mask is the kept set, pruned patches stop changing", "[inversion][inverter]") {
  auto model = small_model();
  SMI<ViT<>> inv(model, {}, {}, {}, ProgressivePrune{{5, 10, 15, 20}, 0.3f}, {}, opts(30));
  auto res = inv.run({1, 2});
  // 49 -> 34 -> 23 -> 16 -> 11, in the forward of the iteration after each event
  REQUIRE(res.history[4].active == 49);
  REQUIRE(res.history[5].active == 34);
  REQUIRE(res.history[10].active == 23);
  REQUIRE(res.history[15].active == 16);
  REQUIRE(res.history[29].active == 11);
  REQUIRE(res.images.size() == 2);
  for (int i = 0; i < 2; ++i) {
    int kept = 0;
    for (int q = 0; q < 49; ++q) {
      const float c = res.update_counts[i * 49 + q];
      if (res.images[i].mask[q] == 1.0f) {
        ++kept;
        REQUIRE(c == 30.0f);  // kept patches were updated in every iteration
      } else {
        REQUIRE((c == 5.0f || c == 10.0f || c == 15.0f || c == 20.0f));  // pruned right after an event
      }
    }
    REQUIRE(kept == 11);
  }
}

TEST_CASE("PRI yields v images per trajectory with disjoint masks covering all patches", "[inversion][inverter]") {
  auto model = small_model();
  const int v = 4, total = 40;
  PRI<ViT<>> inv(model, {}, {}, {}, Rebirth{v}, {}, opts(total));
  auto res = inv.run({4, 8, 5});
  REQUIRE(res.images.size() == 3 * v);
  for (int i = 0; i < 3; ++i) {
    std::set<int> seen;
    int parts = 0;
    for (const auto& s : res.images) {
      if (s.label != std::vector<int>{4, 8, 5}[i]) continue;
      ++parts;
      int count = 0;
      for (int q = 0; q < 49; ++q)
        if (s.mask[q] == 1.0f) {
          REQUIRE(seen.insert(q).second);  // disjoint
          ++count;
          // a detached patch was updated exactly until its detachment iteration
          REQUIRE(res.update_counts[i * 49 + q] == static_cast<float>(s.iteration));
        }
      if (s.iteration < total) {
        REQUIRE(count == 49 / v);
        REQUIRE(s.iteration % (total / v) == 0);
      } else {
        REQUIRE(count == 49 - (v - 1) * (49 / v));
      }
    }
    REQUIRE(parts == v);
    REQUIRE(seen.size() == 49);
  }
}

TEST_CASE("a new variant is a few lines: Rebirth + LowAttention + L2 with jitter/flip", "[inversion][inverter]") {
  auto model = small_model();
  using RebirthLowL2 = Inverter<ViT<>, ClassObjective, Sum<TV, L2>, LowAttention, Rebirth, JitterFlip>;
  RebirthLowL2 inv(model, {}, Sum<TV, L2>{TV{1e-4f}, L2{1e-5f}}, {}, Rebirth{2}, {}, opts(20));
  auto res = inv.run({6});
  REQUIRE(res.images.size() == 2);
  REQUIRE(res.history.back().loss < res.history.front().loss);
}

TEST_CASE("synthetic dataset file round-trips, a malformed one is rejected", "[inversion][dataset]") {
  auto model = small_model();
  PRI<ViT<>> inv(model, {}, {}, {}, Rebirth{2}, {}, opts(6));
  auto res = inv.run({2, 7});
  testing::TempFile f(".safetensors");
  save_synthetic_dataset(f.str(), res.images, {{"method", "PRI"}});
  auto back = load_synthetic_dataset(f.str());
  REQUIRE(back.size() == res.images.size());
  for (std::size_t i = 0; i < back.size(); ++i) {
    REQUIRE(back[i].label == res.images[i].label);
    REQUIRE(back[i].iteration == res.images[i].iteration);
    MINT_REQUIRE_CLOSE(testing::compare(back[i].pixels, res.images[i].pixels, {0, 0}, "pixels"));
    MINT_REQUIRE_CLOSE(testing::compare(back[i].mask, res.images[i].mask, {0, 0}, "mask"));
  }
  io::save_safetensors(f.str(), {{"images", Tensor<>::zeros(Shape{2, 1, 4, 4})}, {"masks", Tensor<>::zeros(Shape{2, 1})},
                                 {"labels", Tensor<>::zeros(Shape{3})}, {"iterations", Tensor<>::zeros(Shape{2})}});
  REQUIRE_THROWS_WITH(load_synthetic_dataset(f.str()), Catch::Contains("3 labels"));
}

TEST_CASE("a whole run is reproducible from its seed: same bytes out (Random selector, jitter/flip)", "[inversion][inverter]") {
  auto model = small_model();
  using Method = Inverter<ViT<>, ClassObjective, TV, Random, Rebirth, JitterFlip>;
  auto run = [&](std::uint64_t seed) {
    auto o = opts(12);
    o.seed = seed;
    Method inv(model, {}, {}, {}, Rebirth{3}, {}, o);
    testing::TempFile f(".safetensors");
    save_synthetic_dataset(f.str(), inv.run({1, 5}).images);
    std::ifstream in(f.str(), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const auto a = run(11), b = run(11), c = run(12);
  REQUIRE(a.size() > 1000);
  REQUIRE(a == b);
  REQUIRE(a != c);
}

TEST_CASE("cuda_graph on a CPU model is refused with a clear error", "[inversion][inverter]") {
  auto model = small_model();
  auto o = opts(2);
  o.cuda_graph = true;
  DMI<ViT<>> inv(model, {}, {}, {}, {}, {}, o);
  REQUIRE_THROWS_WITH(inv.run({0}), Catch::Contains("cuda_graph needs a CUDA model") && Catch::Contains("cpu"));
}
