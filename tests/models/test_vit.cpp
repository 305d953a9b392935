// ViT<Cpu>: whole-model gradient checks in both backward modes (plain and distilled, with and without a
// keep set), keep-set semantics, config inference and the errors of a bad checkpoint.
#include "test_util.hpp"

#include <array>
#include <map>

#include "models/vit_weights.hpp"
#include "mint/backend/cpu/parallel.hpp"
#include "mint/nn/image_priors.hpp"
#include "mint/nn/losses.hpp"

using namespace mint;
using testing::uniform;

namespace {
ViTConfig tiny_config(bool distilled) {
  ViTConfig c;
  c.img_size = 8, c.patch = 4, c.in_chans = 2, c.dim = 8, c.depth = 2, c.heads = 2, c.mlp_hidden = 12, c.classes = 3;
  c.distilled = distilled;
  return c;
}
}  // namespace

TEST_CASE("ViT backward: finite differences through the whole model, both modes", "[models][vit][gradcheck]") {
  for (bool distilled : {false, true})
    for (bool pruned : {false, true}) {
      CAPTURE(distilled, pruned);
      auto cfg = tiny_config(distilled);
      auto model = ViT<>::from_tensors(test::philox_vit_weights(cfg, 5), {.heads = 2});
      auto img = uniform(Shape{2, 2, 8, 8}, 17);
      nn::TokenIndex keep{2, 3, {3, 0, 2, 1, 2, 0}};
      const nn::TokenIndex* k = pruned ? &keep : nullptr;
      const std::vector<int> labels{2, 0};
      auto loss = [&] { return nn::cross_entropy(model.forward(img, k), labels) + nn::total_variation(img, 0.01f); };
      for (auto mode : {Backward::InputOnly, Backward::Full}) {
        model.zero_grad();
        auto logits = model.forward(img, k);
        auto dlogits = Tensor<>::zeros(logits.shape());
        nn::cross_entropy(logits, labels, &dlogits);
        auto dimg = model.backward(dlogits, mode);
        nn::total_variation(img, 0.01f, &dimg);
        testing::GradCheckOptions opt{.eps = 5e-3, .tol = {5e-4, 2e-2}, .max_coords = 128};
        MINT_REQUIRE_CLOSE(testing::check_gradient(loss, img, dimg, "vit d_images", opt));
        if (pruned) {  // patch 1 of image 0 was dropped: CE sends it nothing, only TV does
          auto ce_only = model.backward(dlogits, Backward::InputOnly);
          auto pat = nn::patchify(ce_only, 4);
          for (int e = 0; e < 32; ++e) REQUIRE(pat[(0 * 4 + 1) * 32 + e] == 0.0f);
        }
        if (mode == Backward::InputOnly) {
          for (auto& entry : model.parameters()) {  // not a structured binding: clang 14 cannot capture one
            const auto& p = entry.second;
            INFO(entry.first);
            REQUIRE((!p.grad.defined() || p.grad.numel() == 0 || [&] {
              for (std::int64_t i = 0; i < p.grad.numel(); ++i)
                if (p.grad[i] != 0.0f) return false;
              return true;
            }()));
          }
        } else {
          for (const char* name : {"blocks.0.attn.qkv.weight", "blocks.1.mlp.fc2.weight", "blocks.0.norm1.weight",
                                   "patch_embed.proj.weight", "pos_embed", "cls_token", "norm.bias", "head.weight"}) {
            auto& p = model.parameter(name);
            auto pl = [&] { return static_cast<double>(nn::cross_entropy(model.forward(img, k), labels)); };
            MINT_REQUIRE_CLOSE(testing::check_gradient(pl, p.value, p.grad, std::string("vit d ") + name, opt));
          }
          if (distilled) {
            auto& p = model.parameter("head_dist.weight");
            auto pl = [&] { return static_cast<double>(nn::cross_entropy(model.forward(img, k), labels)); };
            MINT_REQUIRE_CLOSE(testing::check_gradient(pl, p.value, p.grad, "vit d head_dist.weight", opt));
          }
        }
      }
    }
}

TEST_CASE("ViT keep set: all patches in order equals no keep set, CLS attention follows keep order", "[models][vit]") {
  auto cfg = tiny_config(false);
  auto model = ViT<>::from_tensors(test::philox_vit_weights(cfg, 6), {.heads = 2});
  auto img = uniform(Shape{2, 2, 8, 8}, 18);
  auto full = model.forward(img);
  auto attn_full = model.last_cls_attention().clone();
  REQUIRE(attn_full.shape() == Shape{2, 4});
  auto same = model.forward(img, &(const nn::TokenIndex&)nn::TokenIndex::all(2, 4));
  MINT_REQUIRE_CLOSE(testing::compare(same, full, {0, 0}, "logits with keep = all"));
  // a permuted keep set of all patches: attention is permutation-equivariant, logits unchanged
  nn::TokenIndex perm{2, 4, {3, 1, 0, 2, 2, 3, 1, 0}};
  auto logits = model.forward(img, &perm);
  MINT_REQUIRE_CLOSE(testing::compare(logits, full, {1e-5, 1e-5}, "logits with a permuted keep set"));
  const auto& attn = model.last_cls_attention();
  for (int b = 0; b < 2; ++b)
    for (int k = 0; k < 4; ++k) REQUIRE(attn[b * 4 + k] == Approx(attn_full[b * 4 + perm.at(b, k)]).margin(1e-6));
}

TEST_CASE("ViT release_cache frees what forward saved, and the next forward works as before", "[models][vit]") {
  auto cfg = tiny_config(false);
  auto model = ViT<>::from_tensors(test::philox_vit_weights(cfg, 6), {.heads = 2});
  auto img = uniform(Shape{2, 2, 8, 8}, 18);
  const auto before = model.forward(img).clone();
  const std::size_t held = cpu::live_bytes();
  model.release_cache();
  REQUIRE(cpu::live_bytes() < held);  // the saved activations are gone
  REQUIRE_THROWS_WITH(model.last_cls_attention(), Catch::Contains("no forward pass yet"));
  MINT_REQUIRE_CLOSE(testing::compare(model.forward(img), before, {0, 0}, "logits after release_cache"));
}

// scripts/test.sh runs tests with nproc/2 OpenMP threads (1 on CI), so this case runs the parallel paths of
// every op in the model (parallel_for, Eigen's GEMM) explicitly. Logits and d/d images are bit-identical: each
// element is computed by one thread in the same order whatever the team size. A weight gradient sums over the
// B*T rows, which Eigen's parallel GEMM may block differently with 2 threads: float32 reassociation of ~400
// terms, with cancellation, measured 8e-8 absolute on gradients up to ~1e-2, hence atol 1e-6 for it.
TEST_CASE("ViT forward and both backward modes give the same bits on 1 and 2 threads", "[models][vit][threads]") {
  ViTConfig cfg;
  cfg.img_size = 32, cfg.patch = 4, cfg.in_chans = 3, cfg.dim = 48, cfg.depth = 2, cfg.heads = 3, cfg.mlp_hidden = 96;
  cfg.classes = 10;
  auto img = uniform(Shape{6, 3, 32, 32}, 19);
  std::vector<int> labels{0, 1, 2, 3, 4, 5};
  nn::TokenIndex keep{6, 40, {}};
  for (std::int32_t i = 0; i < 6; ++i)
    for (std::int32_t k = 0; k < 40; ++k) keep.index.push_back((k * 3 + i) % 64);  // distinct: gcd(3, 64) = 1
  auto run = [&](int threads, const nn::TokenIndex* kp, Backward mode) {
    const int saved = cpu::num_threads();
    cpu::set_num_threads(threads);
    auto model = ViT<>::from_tensors(test::philox_vit_weights(cfg, 8), {.heads = 3});
    auto logits = model.forward(img, kp);
    auto d = Tensor<>::zeros(logits.shape());
    nn::cross_entropy(logits, labels, &d);
    auto dx = model.backward(d, mode);
    std::vector<Tensor<>> out{logits, dx};
    if (mode == Backward::Full) out.push_back(model.parameters().at("blocks.0.attn.qkv.weight").grad);
    cpu::set_num_threads(saved);
    return out;
  };
  for (auto mode : {Backward::InputOnly, Backward::Full})
    for (const nn::TokenIndex* kp : std::array<const nn::TokenIndex*, 2>{nullptr, &keep}) {
      auto one = run(1, kp, mode), two = run(2, kp, mode);
      for (std::size_t i = 0; i < one.size(); ++i)
        MINT_REQUIRE_CLOSE(testing::compare(two[i], one[i], {i < 2 ? 0.0 : 1e-6, 0.0},
                                            "output " + std::to_string(i) + ", 2 vs 1 thread"));
    }
}

TEST_CASE("ViT loading: config inference, heads, and errors naming the key", "[models][vit][io]") {
  auto cfg = tiny_config(true);
  auto w = test::philox_vit_weights(cfg, 7);
  auto m = ViT<>::from_tensors(w, {.heads = 2});
  REQUIRE(m.config().distilled);
  REQUIRE(m.config().img_size == 8);
  REQUIRE(m.config().mlp_hidden == 12);
  REQUIRE(m.config().classes == 3);
  // dim 8 / depth 2 is no timm architecture: the head count must be given
  REQUIRE_THROWS_WITH(ViT<>::from_tensors(w), Catch::Contains("number of attention heads"));
  REQUIRE(ViT<>::from_tensors(w, {}, {{"mint.num_heads", "4"}}).config().heads == 4);
  REQUIRE_THROWS_WITH(ViT<>::from_tensors(w, {.arch = "deit_tiny_patch16_224"}), Catch::Contains("dim 192"));
  REQUIRE_THROWS_WITH(ViT<>::from_tensors(w, {.arch = "deit_nano"}), Catch::Contains("unknown ViT architecture"));
  REQUIRE_THROWS_WITH(ViT<>::from_tensors(w, {.heads = 3}), Catch::Contains("not divisible by 3 heads"));

  auto missing = w;
  missing.erase("blocks.1.mlp.fc2.bias");
  REQUIRE_THROWS_WITH(ViT<>::from_tensors(missing, {.heads = 2}), Catch::Contains("missing key 'blocks.1.mlp.fc2.bias'"));
  auto bad = w;
  bad["blocks.0.attn.qkv.weight"] = Tensor<>::zeros(Shape{24, 9});
  REQUIRE_THROWS_WITH(ViT<>::from_tensors(bad, {.heads = 2}),
                      Catch::Contains("blocks.0.attn.qkv.weight") && Catch::Contains("[24, 9]") && Catch::Contains("[24, 8]"));
  auto extra = w;
  extra["blocks.0.ls1.gamma"] = Tensor<>::zeros(Shape{8});
  REQUIRE_THROWS_WITH(ViT<>::from_tensors(extra, {.heads = 2}), Catch::Contains("unexpected key") && Catch::Contains("ls1.gamma"));
  auto nan = w;
  nan["head.bias"] = nan["head.bias"].clone();
  nan["head.bias"][1] = std::numeric_limits<float>::quiet_NaN();
  REQUIRE_THROWS_WITH(ViT<>::from_tensors(nan, {.heads = 2}), Catch::Contains("head.bias") && Catch::Contains("non-finite"));
}

TEST_CASE("ViT forward rejects wrong image shapes and NaN pixels", "[models][vit]") {
  auto model = ViT<>::from_tensors(test::philox_vit_weights(tiny_config(false), 8), {.heads = 2});
  REQUIRE_THROWS_WITH(model.forward(uniform(Shape{2, 3, 8, 8}, 1)), Catch::Contains("[2, 3, 8, 8]") && Catch::Contains("[B, 2, 8, 8]"));
  auto img = uniform(Shape{1, 2, 8, 8}, 2);
  img[77] = std::numeric_limits<float>::quiet_NaN();
  REQUIRE_THROWS_WITH(model.forward(img), Catch::Contains("non-finite") && Catch::Contains("index 77"));
  REQUIRE_THROWS_WITH(model.backward(Tensor<>::zeros(Shape{1, 3}), Backward::InputOnly), Catch::Contains("forward"));
}

TEST_CASE("ViT save and load round trip through safetensors", "[models][vit][io]") {
  auto cfg = tiny_config(false);
  auto model = ViT<>::from_tensors(test::philox_vit_weights(cfg, 9), {.heads = 2});
  testing::TempFile file(".safetensors");
  model.save(file.str());
  auto back = ViT<>::load(file.str());  // heads from the "mint.num_heads" metadata
  REQUIRE(back.config().heads == 2);
  auto img = uniform(Shape{1, 2, 8, 8}, 3);
  MINT_REQUIRE_CLOSE(testing::compare(back.forward(img), model.forward(img), {0, 0}, "logits after round trip"));
}

namespace {
// Records the sites it sees (and the sizes), optionally overwriting one site's input.
struct SiteLog : LinearInputHook<> {
  std::vector<std::pair<LinearSite, int>> seen;
  std::vector<std::int64_t> numel;
  bool zero_fc2_of_block0 = false;
  void on_linear_input(LinearSite s, int block, Tensor<>& x) override {
    seen.emplace_back(s, block);
    numel.push_back(x.numel());
    if (zero_fc2_of_block0 && s == LinearSite::Fc2 && block == 0) x.fill(0.0f);
  }
};
}  // namespace

TEST_CASE("ViT linear-input hook: a read-only hook changes nothing, sites in order, edits reach the layer",
          "[models][vit][hook]") {
  for (bool distilled : {false, true}) {
    CAPTURE(distilled);
    auto cfg = tiny_config(distilled);
    auto model = ViT<>::from_tensors(test::philox_vit_weights(cfg, 7), {.heads = 2});
    auto img = uniform(Shape{2, 2, 8, 8}, 19);
    nn::TokenIndex keep{2, 3, {3, 0, 2, 1, 2, 0}};
    auto run = [&](const nn::TokenIndex* k, Tensor<>* dimg) {
      model.zero_grad();
      auto logits = model.forward(img, k);
      auto d = Tensor<>::zeros(logits.shape());
      nn::cross_entropy(logits, {2, 0}, &d);
      *dimg = model.backward(d, Backward::Full);
      return logits;
    };
    Tensor<> d0, d1;
    auto l0 = run(&keep, &d0);
    const auto g0 = model.parameter("blocks.0.mlp.fc2.weight").grad.clone();
    SiteLog log;
    model.set_linear_input_hook(&log);
    REQUIRE(model.linear_input_hook() == &log);
    auto l1 = run(&keep, &d1);
    MINT_REQUIRE_CLOSE(testing::compare(l1, l0, {0, 0}, "logits with a read-only hook"));
    MINT_REQUIRE_CLOSE(testing::compare(d1, d0, {0, 0}, "d_images with a read-only hook"));
    MINT_REQUIRE_CLOSE(testing::compare(model.parameter("blocks.0.mlp.fc2.weight").grad, g0, {0, 0}, "fc2 grad"));
    // patch embedding, 4 sites per block, then the head(s)
    std::vector<std::pair<LinearSite, int>> want{{LinearSite::PatchEmbed, -1}};
    for (int b = 0; b < cfg.depth; ++b)
      for (auto s : {LinearSite::Qkv, LinearSite::Proj, LinearSite::Fc1, LinearSite::Fc2}) want.emplace_back(s, b);
    want.emplace_back(LinearSite::Head, -1);
    if (distilled) want.emplace_back(LinearSite::HeadDist, -1);
    REQUIRE(log.seen == want);
    REQUIRE(log.numel.front() == 2 * 3 * 2 * 4 * 4);  // the kept patches only: B * K * C * p * p
    // an edit in place is what the layer computes with
    log.zero_fc2_of_block0 = true;
    auto l2 = run(&keep, &d1);
    REQUIRE(testing::compare(l2, l0, {1e-6, 0}, "edited").max_abs > 1e-4);
    model.set_linear_input_hook(nullptr);
    auto l3 = run(&keep, &d1);
    MINT_REQUIRE_CLOSE(testing::compare(l3, l0, {0, 0}, "logits after removing the hook"));
    // the hook survives a move
    model.set_linear_input_hook(&log);
    ViT<> moved = std::move(model);
    REQUIRE(moved.linear_input_hook() == &log);
  }
}

namespace vit_grad_hook_test {
// Nudges one value of one site's input in the forward, and records every site's input gradient in the backward.
struct GradProbe : LinearInputHook<> {
  std::pair<LinearSite, int> target{LinearSite::PatchEmbed, -1};
  std::int64_t index = 0;
  float nudge = 0.0f;
  bool zero_target_grad = false;
  std::vector<std::pair<LinearSite, int>> grad_order;
  std::map<std::pair<LinearSite, int>, Tensor<>> grads;
  void on_linear_input(LinearSite s, int block, Tensor<>& x) override {
    if (std::pair{s, block} == target) x[index] += nudge;
  }
  void on_linear_input_grad(LinearSite s, int block, Tensor<>& dx) override {
    grad_order.emplace_back(s, block);
    grads[{s, block}] = dx.clone();
    if (zero_target_grad && std::pair{s, block} == target) dx.fill(0.0f);
  }
};
}  // namespace vit_grad_hook_test

TEST_CASE("ViT linear-input gradient hook: each site sees d loss / d its hooked input (finite differences)",
          "[models][vit][hook][gradcheck]") {
  using vit_grad_hook_test::GradProbe;
  for (bool distilled : {false, true}) {
    CAPTURE(distilled);
    auto cfg = tiny_config(distilled);
    auto model = ViT<>::from_tensors(test::philox_vit_weights(cfg, 9), {.heads = 2});
    auto img = uniform(Shape{2, 2, 8, 8}, 23);
    nn::TokenIndex keep{2, 3, {3, 0, 2, 1, 2, 0}};
    const std::vector<int> labels{1, 2};
    GradProbe probe;
    model.set_linear_input_hook(&probe);
    auto backward = [&] {
      model.zero_grad();
      auto logits = model.forward(img, &keep);
      auto d = Tensor<>::zeros(logits.shape());
      nn::cross_entropy(logits, labels, &d);
      return model.backward(d, Backward::Full);
    };
    const auto dimg = backward();
    // in backward order: the head(s), blocks from the last (fc2, fc1, proj, qkv), the patch embedding
    std::vector<std::pair<LinearSite, int>> want{{LinearSite::Head, -1}};
    if (distilled) want.emplace_back(LinearSite::HeadDist, -1);
    for (int b = cfg.depth - 1; b >= 0; --b)
      for (auto s : {LinearSite::Fc2, LinearSite::Fc1, LinearSite::Proj, LinearSite::Qkv}) want.emplace_back(s, b);
    want.emplace_back(LinearSite::PatchEmbed, -1);
    REQUIRE(probe.grad_order == want);
    const auto grads = probe.grads;
    // float32 central differences with eps 1e-2 on a loss of order 1: truncation and rounding stay below 1e-3
    for (const auto& site : want) {
      const auto& g = grads.at(site);
      for (std::int64_t j : {std::int64_t{0}, g.numel() / 2, g.numel() - 1}) {
        CAPTURE(static_cast<int>(site.first), site.second, j);
        probe.target = site, probe.index = j;
        auto loss_at = [&](float h) {
          probe.nudge = h;
          return static_cast<double>(nn::cross_entropy(model.forward(img, &keep), labels));
        };
        const double fd = (loss_at(1e-2f) - loss_at(-1e-2f)) / 2e-2;
        probe.nudge = 0.0f;
        REQUIRE(std::abs(fd - g[j]) <= 1e-3 + 1e-2 * std::abs(fd));
      }
    }
    // an edit of the gradient in place is what flows further down
    probe.target = {LinearSite::Fc1, 0}, probe.index = 0, probe.zero_target_grad = true;  // index 0: in range
    const auto dimg_cut = backward();
    REQUIRE(testing::compare(dimg_cut, dimg, {1e-6, 0}, "d_images with fc1's input gradient cut").max_abs > 1e-5);
  }
}

TEST_CASE("ViT::to<Cpu> copies the weights into an independent model that computes the same logits", "[models][vit]") {
  const auto cfg = tiny_config(true);
  auto a = ViT<>::from_tensors(test::philox_vit_weights(cfg, 5), {.heads = cfg.heads});
  auto b = a.to<Cpu>();
  for (auto& [name, p] : a.parameters()) {
    REQUIRE(b.parameter(name).value.data() != p.value.data());
    MINT_REQUIRE_CLOSE(testing::compare(b.parameter(name).value, p.value, {0, 0}, name));
  }
  auto x = uniform(Shape{2, 2, 8, 8}, 94);
  MINT_REQUIRE_CLOSE(testing::compare(b.forward(x), a.forward(x), {0, 0}, "logits of the copy"));
}

// ---- issue 17: crafted checkpoints (each loaded, hung, crashed or allocated gigabytes before) ----------------

namespace vit_hostile_test {

// Zero-filled tensors of the shapes a model of `cfg` has (cfg need not be valid: dim 0 gives zero-element
// tensors), saved as a safetensors file.
std::map<std::string, Tensor<>> zero_weights(const ViTConfig& cfg) {
  std::map<std::string, Tensor<>> w;
  for (const auto& [name, shape] : ViT<>::parameter_shapes(cfg)) w[name] = Tensor<>::zeros(shape);
  return w;
}

// The bytes a load may hold in tensors at its peak: the reader's float32 copy of the file (1x its F32 data)
// and the model's own copy (1x), plus 64 KiB of slack for small tensors; anything built from inferred sizes
// (a model from zero-element tensors) would exceed it by orders of magnitude.
std::size_t load_budget(const std::string& path) {
  return 2 * static_cast<std::size_t>(std::filesystem::file_size(path)) + 64 * 1024;
}

}  // namespace vit_hostile_test

TEST_CASE("ViT refuses a checkpoint with dim 0 (it loaded, then forward divided by zero)", "[models][vit][hostile]") {
  auto cfg = tiny_config(false);
  cfg.dim = 0;
  auto w = vit_hostile_test::zero_weights(cfg);
  testing::TempFile file(".safetensors");
  io::save_safetensors(file.str(), w);
  REQUIRE_THROWS_WITH(ViT<>::load(file.str(), {.heads = 2}),
                      Catch::Contains(file.str()) && Catch::Contains("patch_embed.proj.weight") &&
                          Catch::Contains("dim = 0"));
  // The same file with 2^62 position rows of width 0: the grid search used to count up to sqrt(2^62) (and
  // overflow); now the zero width is refused first and the grid is a square root, not a loop.
  w["pos_embed"] = Tensor<>::zeros(Shape{1, std::int64_t{1} << 62, 0});
  io::save_safetensors(file.str(), w);
  REQUIRE_THROWS_WITH(ViT<>::load(file.str(), {.heads = 2}), Catch::Contains("dim = 0"));
}

TEST_CASE("ViT refuses zero-element tensors that imply huge sizes, before allocating them", "[models][vit][hostile]") {
  // Each key's zero-element tensor implied a size (classes, mlp_hidden) the model then allocated for real,
  // [2^24, 8] floats = 512 MiB, before comparing shapes. Now the shapes are compared first.
  const auto good = test::philox_vit_weights(tiny_config(false), 3);
  for (const auto& [key, bomb] : std::vector<std::pair<std::string, Shape>>{
           {"head.weight", Shape{std::int64_t{1} << 24, 0}},
           {"blocks.0.mlp.fc1.weight", Shape{std::int64_t{1} << 24, 0}}}) {
    CAPTURE(key);
    auto w = good;
    w[key] = Tensor<>::zeros(bomb);
    testing::TempFile file(".safetensors");
    io::save_safetensors(file.str(), w);
    const std::size_t live = cpu::live_bytes();
    cpu::reset_peak_bytes();
    // (the first mismatch in name order is the bias that shares the inferred size)
    REQUIRE_THROWS_WITH(ViT<>::load(file.str(), {.heads = 2}),
                        Catch::Contains(file.str()) && Catch::Contains("expects [16777216]"));
    CAPTURE(cpu::peak_bytes() - live, vit_hostile_test::load_budget(file.str()));
    REQUIRE(cpu::peak_bytes() - live <= vit_hostile_test::load_budget(file.str()));
  }
  // A patch of 2^30 pixels from a zero-element conv weight: g * patch overflowed int before in_chans was checked.
  auto w = good;
  w["patch_embed.proj.weight"] = Tensor<>::zeros(Shape{8, 0, std::int64_t{1} << 30, std::int64_t{1} << 30});
  REQUIRE_THROWS_WITH(ViT<>::from_tensors(w, {.heads = 2}), Catch::Contains("in_chans = 0"));
}

TEST_CASE("ViT refuses wrongly ranked tensors and malformed head-count metadata", "[models][vit][hostile]") {
  const auto good = test::philox_vit_weights(tiny_config(false), 4);
  auto w = good;
  w["head.weight"] = Tensor<>::zeros(Shape{});
  REQUIRE_THROWS_WITH(ViT<>::from_tensors(w, {.heads = 2}), Catch::Contains("'head.weight'") && Catch::Contains("[]"));
  w = good;
  w["pos_embed"] = Tensor<>::zeros(Shape{2, 5, 8});
  REQUIRE_THROWS_WITH(ViT<>::from_tensors(w, {.heads = 2}),
                      Catch::Contains("'pos_embed'") && Catch::Contains("[2, 5, 8]"));
  // std::stoi read "2abc" as 2 and threw std::out_of_range for "99999999999"; both are errors naming the value.
  for (const char* bad : {"2abc", "99999999999", "0", "-2", "16"})
    REQUIRE_THROWS_WITH(ViT<>::from_tensors(good, {}, {{"mint.num_heads", bad}}),
                        Catch::Contains("mint.num_heads") && Catch::Contains(bad));
}

TEST_CASE("ViTConfig::validate refuses dim 0, grids whose token count overflows, and a bad eps",
          "[models][vit][hostile]") {
  auto c = tiny_config(false);
  c.dim = 0;
  REQUIRE_THROWS_WITH(c.validate(), Catch::Contains("dim 0"));
  c = tiny_config(false);
  c.img_size = 1 << 30, c.patch = 1;  // grid 2^30: grid() * grid() overflowed int
  REQUIRE_THROWS_WITH(c.validate(), Catch::Contains("patch grid"));
  c = tiny_config(false);
  c.img_size = 2;  // smaller than one patch: grid 0
  REQUIRE_THROWS_WITH(c.validate(), Catch::Contains("multiple of patch"));
  c = tiny_config(false);
  c.dim = 1 << 30, c.heads = 1, c.mlp_hidden = 1 << 30, c.depth = 1 << 20;
  REQUIRE_THROWS_WITH(c.validate(), Catch::Contains("overflows int64"));
  c = tiny_config(false);
  c.eps = std::numeric_limits<float>::quiet_NaN();
  REQUIRE_THROWS_WITH(c.validate(), Catch::Contains("eps"));
  REQUIRE_NOTHROW(tiny_config(true).validate());
}
