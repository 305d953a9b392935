// ViT<Cpu> against PyTorch: logits, input gradient of CE + lambda * TV (SMI Eq. 1-2), last-block CLS
// attention, and (small model) every weight gradient, each with and without a keep set. The references are
// written by tests/fixtures/make_fixtures.py (Debian python3-torch; see tests/fixtures/README.md).
//
// Tolerances (|a - r| <= atol + rtol * |r|, atol relative to the largest reference value of the tensor): the
// references are float64 math on the same float32 weights and inputs, so the error measured here is mint's
// float32 error alone. PyTorch's own float32 pass uses at most 8% of these tolerances (README); the rest is
// room for a different summation order (blocked GEMMs, reductions). For DeiT-Tiny the d_images tolerance is
// still ~1/1000 of the TV part's rms, so a wrong prior or a broken backward fails.
#include "test_util.hpp"

#include <algorithm>
#include <cmath>

#include "models/vit_weights.hpp"
#include "mint/io/safetensors.hpp"
#include "mint/nn/image_priors.hpp"
#include "mint/nn/losses.hpp"

using namespace mint;

namespace {
constexpr float kLambdaTv = 1e-4f;  // the fixture's lambda (SMI's reference value)

const io::SafetensorsFile& parity() {
  static const auto f = io::load_safetensors(std::string(MINT_FIXTURE_DIR) + "/vit_parity.safetensors");
  return f;
}

testing::Tolerance rel_to_max(const Tensor<>& ref, double amax, double rtol) {
  double m = 0;
  for (std::int64_t i = 0; i < ref.numel(); ++i) m = std::max(m, static_cast<double>(std::abs(ref[i])));
  return {amax * m, rtol};
}

std::vector<int> ints(const Tensor<>& t) {
  std::vector<int> v(static_cast<std::size_t>(t.numel()));
  for (std::int64_t i = 0; i < t.numel(); ++i) v[static_cast<std::size_t>(i)] = static_cast<int>(t[i]);
  return v;
}

nn::TokenIndex keep_of(const Tensor<>& k) {
  nn::TokenIndex idx{k.dim(0), k.dim(1), {}};
  for (int v : ints(k)) idx.index.push_back(v);
  return idx;
}

// Runs one model on its fixture; `grads` also checks the Full-mode weight gradients (small model, keep set).
void check_model(ViT<>& model, const Tensor<>& images, const std::string& m, bool grads) {
  const auto& f = parity();
  const auto labels = ints(f.at(m + ".labels"));
  const auto keep = keep_of(f.at(m + ".keep"));
  for (std::string s : {"full", "keep"}) {
    const std::string p = m + "." + s + ".";
    INFO(p);
    const nn::TokenIndex* k = s == "keep" ? &keep : nullptr;
    const auto mode = grads && s == "keep" ? Backward::Full : Backward::InputOnly;
    model.zero_grad();
    auto logits = model.forward(images, k);
    MINT_REQUIRE_CLOSE(testing::compare(logits, f.at(p + "logits"), rel_to_max(f.at(p + "logits"), 1e-5, 1e-4), p + "logits"));
    const auto& ref_attn = f.at(p + "cls_attn");
    MINT_REQUIRE_CLOSE(testing::compare(model.last_cls_attention(), ref_attn, rel_to_max(ref_attn, 1e-5, 1e-4), p + "cls_attn"));
    auto dlogits = Tensor<>::zeros(logits.shape());
    const double ce = nn::cross_entropy(logits, labels, &dlogits);
    auto dimages = model.backward(dlogits, mode);
    const double tv = nn::total_variation(images, kLambdaTv, &dimages);
    const auto tv_img = nn::total_variation_per_image(images);
    for (std::size_t b = 0; b < tv_img.size(); ++b) REQUIRE(tv_img[b] == Approx(f.at(p + "tv")[static_cast<std::int64_t>(b)]).epsilon(2e-5));
    double ce_ref = 0;
    for (std::int64_t b = 0; b < f.at(p + "ce").numel(); ++b) ce_ref += f.at(p + "ce")[b];
    REQUIRE(ce == Approx(ce_ref / static_cast<double>(f.at(p + "ce").numel())).epsilon(2e-5));
    REQUIRE(ce + tv == Approx(f.at(p + "loss")[0]).epsilon(2e-5));
    MINT_REQUIRE_CLOSE(testing::compare(dimages, f.at(p + "dimages"), rel_to_max(f.at(p + "dimages"), 2e-5, 1e-4), p + "dimages"));
    if (mode == Backward::Full) {
      for (auto& [name, prm] : model.parameters()) {
        const auto& ref = f.at(p + "grad." + name);
        MINT_REQUIRE_CLOSE(testing::compare(prm.grad, ref, rel_to_max(ref, 1e-5, 1e-4), p + "grad." + name));
      }
    }
  }
}

ViTConfig config(int img, int patch, int chans, int dim, int depth, int heads, int classes, bool distilled) {
  ViTConfig c;
  c.img_size = img, c.patch = patch, c.in_chans = chans, c.dim = dim, c.depth = depth, c.heads = heads;
  c.mlp_hidden = 4 * dim, c.classes = classes, c.distilled = distilled;
  return c;
}

Tensor<> philox_images(std::int64_t b, const ViTConfig& c, std::uint64_t seed) {
  auto t = Tensor<>::empty(Shape{b, c.in_chans, c.img_size, c.img_size});
  fill_uniform(t, seed, 0, -1.0f, 1.0f);
  return t;
}
}  // namespace

TEST_CASE("PyTorch parity: small 28x28 ViT loaded from a timm-named safetensors file", "[models][vit][parity]") {
  auto model = ViT<>::load(std::string(MINT_FIXTURE_DIR) + "/small_vit.safetensors");  // heads from metadata
  REQUIRE(model.config().heads == 4);
  REQUIRE(model.config().num_patches() == 49);
  check_model(model, parity().at("small.images"), "small", /*grads=*/true);
}

TEST_CASE("PyTorch parity: small distilled DeiT (dist_token, head_dist)", "[models][vit][parity]") {
  const auto cfg = config(28, 4, 1, 64, 4, 4, 10, true);
  auto model = ViT<>::from_tensors(test::philox_vit_weights(cfg, 11), {.heads = 4});
  check_model(model, philox_images(3, cfg, 12), "small_distilled", false);
}

TEST_CASE("PyTorch parity: DeiT-Tiny shape (224 px, patch 16, dim 192, depth 12, 3 heads, 1000 classes)",
          "[models][vit][parity]") {
  const auto cfg = config(224, 16, 3, 192, 12, 3, 1000, false);
  // no head count given: (dim 192, depth 12) is found in the table of timm architectures
  auto model = ViT<>::from_tensors(test::philox_vit_weights(cfg, 1234));
  REQUIRE(model.config().heads == 3);
  check_model(model, philox_images(1, cfg, 1235), "deit_tiny", false);
}
