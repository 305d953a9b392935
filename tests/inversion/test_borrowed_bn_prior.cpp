// BorrowedBNPrior (mint/inversion/bn_prior.hpp): a borrowed CNN's BN-statistics prior on the images of another
// model's inversion (SMI's code's `bn` lever). Its pixel gradient against central differences through a
// normalisation map, that it is BNPrior when the borrowed CNN is the driven one, that weight 0 leaves an official
// SMI run bit for bit unchanged, and that in short official DMI, SMI and PRI runs on the embedded ViT teacher it
// lowers the embedded ResNet's BN loss of the images.
#include "test_util.hpp"

#include <cstring>
#include <string>
#include <vector>

#include "mint/inversion/bn_prior.hpp"
#include "mint/inversion/inverter.hpp"
#include "mint/inversion/presets.hpp"
#include "mint/models/init.hpp"
#include "mint/models/resnet.hpp"
#include "mint/models/vit.hpp"

using namespace mint;

namespace borrowed_bn_test {

// A tiny ResNet (width 2, 2 channels, 12 px) with non-trivial BN affine parameters and running statistics of a
// calibration batch (as tests/models/test_resnet.cpp's tiny model), in eval mode.
ResNet<> tiny_cnn(std::uint64_t seed) {
  ResNetConfig c;
  c.width = 2, c.img_size = 12, c.classes = 5, c.in_chans = 2;
  c.momentum = 1.0f;  // one training-mode pass sets the running statistics to that batch's statistics
  ResNet<> m(c);
  init_torchvision_like(m, seed);
  std::uint32_t s = 100;
  for (auto& [n, p] : m.parameters())
    if (p.value.rank() == 1) fill_uniform(p.value, seed, s++, 0.5f, 1.5f);
  m.train(true);
  m.forward(testing::uniform(Shape{4, 2, 12, 12}, seed + 1000, -1.5f, 1.5f));
  m.release_cache();
  m.eval();
  return m;
}

// The embedded models and their (shared) normalisation: models/fmnist_vit.json and models/fmnist_resnet.json.
const Normalization kFmnist{{0.286f}, {0.353f}};
ViT<> teacher() { return ViT<>::load(std::string(MINT_MODELS_DIR) + "/fmnist_vit.safetensors"); }
ResNet<> embedded_cnn() {
  auto m = ResNet<>::load(std::string(MINT_MODELS_DIR) + "/fmnist_resnet.safetensors");
  m.eval();
  return m;
}

// The official preset's options (presets.hpp) for a short run.
InversionOptions official(int iterations, std::uint64_t seed) {
  auto o = preset_options(PresetForm::Official, kFmnist);
  o.iterations = iterations, o.seed = seed;
  return o;
}

// The whole canvases of a result's images, [n, C, H, W].
Tensor<> canvases(const InversionResult& r) {
  const auto& p = r.images.at(0).pixels;
  auto out = Tensor<>::empty(Shape{static_cast<std::int64_t>(r.images.size()), p.dim(0), p.dim(1), p.dim(2)});
  for (std::size_t i = 0; i < r.images.size(); ++i)
    std::copy(r.images[i].pixels.data(), r.images[i].pixels.data() + p.numel(),
              out.data() + static_cast<std::int64_t>(i) * p.numel());
  return out;
}

bool same_bits(const Tensor<>& a, const Tensor<>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), sizeof(float) * a.numel()) == 0;
}

}  // namespace borrowed_bn_test

namespace bbt = borrowed_bn_test;  // no using-directive: the test files share translation units (unity build)

TEST_CASE("BorrowedBNPrior: pixel gradient through a normalisation map matches central differences",
          "[inversion][bn_prior]") {
  auto cnn = bbt::tiny_cnn(9);
  // the images live in another model's space (per channel), the CNN in the embedded models' (one entry, broadcast)
  const BorrowedBNPrior prior{&cnn, 0.5f, 10.0f, Normalization{{0.5f, 0.3f}, {0.25f, 0.4f}}, bbt::kFmnist};
  auto x = testing::uniform(Shape{3, 2, 12, 12}, 41);
  auto d = Tensor<>::zeros(x.shape());
  const float v = prior.add(x, d);
  REQUIRE(std::abs(v - prior.value_double(x)) <= 1e-6 * std::abs(v));  // add returns the value (float of the double)
  // The value is a double sum over float32 statistics of a float32 forward: the step 3e-3 is the one
  // tests/models/test_resnet.cpp found for BNPrior on this tiny net (larger steps cross ReLU kinks, smaller ones
  // drown in float32 rounding); the gradient here is scaled by std_images / std_cnn (0.71, 1.13) on the way back, so
  // the same per-coordinate tolerance (5e-4 absolute + 2 % relative) holds.
  testing::GradCheckOptions o;
  o.eps = 3e-3, o.tol = {5e-4, 2e-2};
  MINT_REQUIRE_CLOSE(testing::check_gradient([&] { return prior.value_double(x); }, x, d, "BorrowedBNPrior d images",
                                             o));
}

TEST_CASE("BorrowedBNPrior on the driven CNN is BNPrior: the same value, gradient and inversion, bit for bit",
          "[inversion][bn_prior]") {
  auto cnn = bbt::tiny_cnn(5);
  auto x = testing::uniform(Shape{3, 2, 12, 12}, 7);
  const BNPrior own{&cnn, 0.05f, 10.0f};
  const BorrowedBNPrior borrowed{&cnn, 0.05f, 10.0f, {}, {}};
  cnn.forward(x);  // BNPrior reads the latest forward (the Inverter's order); BorrowedBNPrior runs its own
  auto d_own = Tensor<>::zeros(x.shape()), d_borrowed = Tensor<>::zeros(x.shape());
  const float v_own = own.add(x, d_own);
  const float v_borrowed = borrowed.add(x, d_borrowed);
  REQUIRE(v_own == v_borrowed);
  REQUIRE(bbt::same_bits(d_own, d_borrowed));
  // the same inside the engine: DeepInversion on the CNN (ResNetAdapter) with either prior gives the same images
  ResNetAdapter adapter(cnn);
  InversionOptions opt;
  opt.iterations = 6, opt.seed = 2, opt.lr = 0.1f;
  Inverter<ResNetAdapter, ClassObjective, Sum<BNPrior, TV>> a(adapter, {}, Sum<BNPrior, TV>(own, TV{1e-4f}), {}, {},
                                                               {}, opt);
  Inverter<ResNetAdapter, ClassObjective, Sum<BorrowedBNPrior, TV>> b(
      adapter, {}, Sum<BorrowedBNPrior, TV>(borrowed, TV{1e-4f}), {}, {}, {}, opt);
  const auto ra = a.run({0, 1, 2}), rb = b.run({0, 1, 2});
  REQUIRE(bbt::same_bits(bbt::canvases(ra), bbt::canvases(rb)));
  for (std::size_t t = 0; t < ra.history.size(); ++t) REQUIRE(ra.history[t].loss == rb.history[t].loss);
}

TEST_CASE("BorrowedBNPrior: weight 0 leaves an official SMI run bit for bit as it is without the term",
          "[inversion][bn_prior]") {
  auto vit = bbt::teacher();
  auto cnn = bbt::embedded_cnn();
  const auto opt = bbt::official(10, 4);
  const ProgressivePrune smi{{3, 6}, 0.3f};  // a sparse canvas: pruned patches, the whole canvas still stepped
  const std::vector<int> labels{1, 7, 9};
  const auto without = run_official(vit, smi, labels, opt, 1e-4f);
  const BorrowedBNPrior off{&cnn, 0.0f, 10.0f, bbt::kFmnist, bbt::kFmnist};
  const auto zero = run_official(vit, smi, labels, opt, 1e-4f, {}, off);
  REQUIRE(bbt::same_bits(bbt::canvases(without), bbt::canvases(zero)));
  REQUIRE(without.history.size() == zero.history.size());
  for (std::size_t t = 0; t < without.history.size(); ++t) REQUIRE(without.history[t].loss == zero.history[t].loss);
  for (std::size_t i = 0; i < without.images.size(); ++i)
    REQUIRE(bbt::same_bits(without.images[i].mask, zero.images[i].mask));
}

TEST_CASE("BorrowedBNPrior: official DMI, SMI and PRI on the ViT teacher lower the borrowed ResNet's BN loss",
          "[inversion][bn_prior][slow]") {
  auto vit = bbt::teacher();
  auto cnn = bbt::embedded_cnn();
  const auto opt = bbt::official(40, 1);
  const std::vector<int> labels{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  const BorrowedBNPrior bn{&cnn, 0.05f, 10.0f, bbt::kFmnist, bbt::kFmnist};
  const BorrowedBNPrior measure{&cnn, 1.0f, 10.0f, bbt::kFmnist, bbt::kFmnist};  // R_BN at weight 1 of a set
  // SMI prunes and PRI detaches patches: the CNN sees (and the prior steps) the whole canvas all the same
  for (const MethodSchedule& sch :
       {MethodSchedule{Dense{}}, MethodSchedule{ProgressivePrune{{10, 20}, 0.3f}}, MethodSchedule{Rebirth{2}}}) {
    const double off = measure.value_double(bbt::canvases(run_official(vit, sch, labels, opt, 1e-4f)));
    const double on = measure.value_double(bbt::canvases(run_official(vit, sch, labels, opt, 1e-4f, {}, bn)));
    CAPTURE(sch.index(), off, on);
    REQUIRE(on < off);
  }
}
