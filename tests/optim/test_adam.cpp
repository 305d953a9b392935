// optim::Adam / optim::AdamW against torch.optim.Adam / AdamW's documented update rule, written out here in
// double; the timm weight-decay exclusions; per-parameter step counts; lr schedules; errors.
#include "test_util.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "mint/core/rng.hpp"
#include "mint/models/vit.hpp"
#include "mint/optim/adam.hpp"

using namespace mint;

namespace {

// torch.optim.Adam (decoupled = false) / torch.optim.AdamW (decoupled = true), one parameter, in double:
//   AdamW: p *= 1 - lr wd          Adam: g += wd p
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
struct RefParam {
  std::vector<double> p, m, v;
  int t = 0;
};

void ref_step(RefParam& r, const Tensor<>& grad, double lr, double wd, bool decoupled, const optim::AdamOptions& o) {
  ++r.t;
  const double b1 = o.beta1, b2 = o.beta2, eps = o.eps;
  for (std::size_t i = 0; i < r.p.size(); ++i) {
    double g = grad[static_cast<std::int64_t>(i)];
    if (decoupled)
      r.p[i] *= 1.0 - lr * wd;
    else
      g += wd * r.p[i];
    r.m[i] = b1 * r.m[i] + (1.0 - b1) * g;
    r.v[i] = b2 * r.v[i] + (1.0 - b2) * g * g;
    const double mhat = r.m[i] / (1.0 - std::pow(b1, r.t)), vhat = r.v[i] / (1.0 - std::pow(b2, r.t));
    r.p[i] -= lr * mhat / (std::sqrt(vhat) + eps);
  }
}

Tensor<> to_tensor(const std::vector<double>& x, const Shape& s) {
  auto t = Tensor<>::empty(s);
  for (std::int64_t i = 0; i < t.numel(); ++i) t[i] = static_cast<float>(x[static_cast<std::size_t>(i)]);
  return t;
}

// A tiny "model": a matrix, a bias, a norm weight and two token tensors, with Philox values.
std::map<std::string, Param<>> tiny_params() {
  const std::map<std::string, Shape> shapes{{"w", Shape{3, 4}},
                                            {"b", Shape{4}},
                                            {"norm.weight", Shape{4}},
                                            {"cls_token", Shape{1, 1, 4}},
                                            {"pos_embed", Shape{1, 3, 4}}};
  std::map<std::string, Param<>> ps;
  std::uint32_t stream = 0;
  for (const auto& [n, s] : shapes) {
    ps[n].value = Tensor<>::empty(s);
    fill_uniform(ps[n].value, 7, stream++, -1.0f, 1.0f);
  }
  return ps;
}

// Runs `steps` steps of the optimizer and of the double reference on the same gradient sequence (Philox
// normals of varying scale), with an lr change half-way and "pos_embed" getting no gradient at step 0.
// Returns the largest |mint - reference| over all parameters and checks each with `tol`.
template <class Opt>
double run_against_reference(bool decoupled, const optim::AdamOptions& o, bool timm_rule, int steps = 8) {
  auto ps = tiny_params();
  Opt opt(o, timm_rule ? optim::DecayRule<>(optim::timm_decays) : optim::DecayRule<>{});
  std::map<std::string, RefParam> ref;
  for (auto& [n, p] : ps) {
    auto& r = ref[n];
    for (std::int64_t i = 0; i < p.value.numel(); ++i) r.p.push_back(p.value[i]);
    r.m.assign(r.p.size(), 0.0);
    r.v.assign(r.p.size(), 0.0);
  }
  double worst = 0.0;
  for (int t = 0; t < steps; ++t) {
    if (t == steps / 2) opt.set_lr(o.lr * 0.25f);  // a schedule
    const double lr = opt.lr();
    std::uint32_t stream = 100;
    for (auto& [n, p] : ps) {
      ++stream;
      if (n == "pos_embed" && t == 0) {
        p.grad = Tensor<>{};  // no gradient yet: skipped, its step count lags by one
        continue;
      }
      p.grad = Tensor<>::empty(p.value.shape());
      const float scale = (t % 3 == 2) ? 1e-3f : 0.5f;  // small gradients too, where eps and bias matter
      fill_normal(p.grad, 1000 + static_cast<std::uint64_t>(t), stream, 0.0f, scale);
      const double wd = opt.decays(n, p.value) ? o.weight_decay : 0.0;
      ref_step(ref[n], p.grad, lr, wd, decoupled, o);
    }
    opt.step(ps);
    for (auto& [n, p] : ps) {
      const auto& r = ref[n];
      auto rt = to_tensor(r.p, p.value.shape());
      MINT_REQUIRE_CLOSE(testing::compare(p.value, rt, {2e-6, 2e-6}, std::string(Opt::name()) + " " + n + " step " +
                                                                         std::to_string(t)));
      if (opt.has_state(n)) REQUIRE(opt.state(n).steps == r.t);
      for (std::int64_t i = 0; i < p.value.numel(); ++i)
        worst = std::max(worst, std::abs(p.value[i] - r.p[static_cast<std::size_t>(i)]));
    }
  }
  REQUIRE(opt.state("pos_embed").steps == steps - 1);
  REQUIRE(opt.state("w").steps == steps);
  return worst;
}

}  // namespace

TEST_CASE("Adam matches torch.optim.Adam's update rule (double reference)", "[optim][adam]") {
  SECTION("no weight decay") { run_against_reference<optim::Adam<>>(false, {.lr = 0.01f}, false); }
  SECTION("L2 weight decay on every parameter") {
    run_against_reference<optim::Adam<>>(false, {.lr = 0.01f, .weight_decay = 0.1f}, false);
  }
  SECTION("L2 weight decay, timm exclusions, other betas and eps") {
    run_against_reference<optim::Adam<>>(false, {.lr = 0.03f, .beta1 = 0.8f, .beta2 = 0.99f, .eps = 1e-3f,
                                                 .weight_decay = 0.2f}, true);
  }
}

TEST_CASE("AdamW matches torch.optim.AdamW's update rule (double reference)", "[optim][adamw]") {
  SECTION("decoupled decay on every parameter") {
    run_against_reference<optim::AdamW<>>(true, {.lr = 0.01f, .weight_decay = 0.5f}, false);
  }
  SECTION("decoupled decay, timm exclusions") {
    run_against_reference<optim::AdamW<>>(true, {.lr = 0.02f, .weight_decay = 0.05f}, true);
  }
}

TEST_CASE("Adam: the first step moves every coordinate by lr against the gradient's sign", "[optim][adam]") {
  // m_hat = g and v_hat = g^2 at t = 1, so the step is lr * g / (|g| + eps).
  std::map<std::string, Param<>> ps;
  ps["x"].value = Tensor<>::from(Shape{4}, {1.0f, -2.0f, 0.5f, 3.0f});
  ps["x"].grad = Tensor<>::from(Shape{4}, {0.3f, -4.0f, 1e-2f, 0.0f});
  optim::Adam<> opt({.lr = 0.1f});
  opt.step(ps);
  const std::vector<float> want{0.9f, -1.9f, 0.4f, 3.0f};
  for (std::int64_t i = 0; i < 4; ++i) REQUIRE(ps["x"].value[i] == Approx(want[static_cast<std::size_t>(i)]).epsilon(1e-6));
}

TEST_CASE("Adam and AdamW differ (the reference test discriminates the two rules)", "[optim][adamw]") {
  // AdamW's decoupled decay is not Adam's L2: the same options give visibly different parameters.
  auto a = tiny_params(), b = tiny_params();
  optim::Adam<> adam({.lr = 0.01f, .weight_decay = 0.5f});
  optim::AdamW<> adamw({.lr = 0.01f, .weight_decay = 0.5f});
  for (int t = 0; t < 4; ++t) {
    for (auto* ps : {&a, &b})
      for (auto& [n, p] : *ps) {
        p.grad = Tensor<>::empty(p.value.shape());
        fill_normal(p.grad, 55 + static_cast<std::uint64_t>(t), 3, 0.0f, 0.5f);
      }
    adam.step(a);
    adamw.step(b);
  }
  double diff = 0.0;
  for (auto& [n, p] : a)
    for (std::int64_t i = 0; i < p.value.numel(); ++i) diff = std::max(diff, double(std::abs(p.value[i] - b[n].value[i])));
  REQUIRE(diff > 1e-3);  // 500x the reference tolerance
}

TEST_CASE("AdamW with timm_decays: biases, norms and tokens are not decayed", "[optim][adamw]") {
  ViTConfig c;
  c.img_size = 8, c.patch = 4, c.in_chans = 1, c.dim = 8, c.depth = 2, c.heads = 2, c.mlp_hidden = 12, c.classes = 3;
  c.distilled = true;  // has dist_token and head_dist too
  ViT<> model(c);
  std::uint32_t stream = 0;
  for (auto& [n, p] : model.parameters()) {
    fill_uniform(p.value, 3, stream++, 0.5f, 1.5f);
    p.grad = Tensor<>::zeros(p.value.shape());  // zero gradient: only weight decay moves a parameter
  }
  std::map<std::string, Tensor<>> before;
  for (auto& [n, p] : model.parameters()) before[n] = p.value.clone();

  const std::vector<std::string> decayed{"patch_embed.proj.weight", "blocks.0.attn.qkv.weight", "blocks.0.attn.proj.weight",
                                         "blocks.0.mlp.fc1.weight", "blocks.0.mlp.fc2.weight", "blocks.1.attn.qkv.weight",
                                         "blocks.1.attn.proj.weight", "blocks.1.mlp.fc1.weight", "blocks.1.mlp.fc2.weight",
                                         "head.weight", "head_dist.weight"};
  const float lr = 0.1f, wd = 0.5f;
  for (bool decoupled : {true, false}) {
    CAPTURE(decoupled);
    for (auto& [n, p] : model.parameters()) p.value = before[n].clone();
    if (decoupled) {
      optim::AdamW<> opt({.lr = lr, .weight_decay = wd}, optim::timm_decays);
      opt.step(model.parameters());
    } else {
      optim::Adam<> opt({.lr = lr, .weight_decay = wd}, optim::timm_decays);
      opt.step(model.parameters());
    }
    int n_decayed = 0;
    for (auto& [n, p] : model.parameters()) {
      INFO(n);
      const bool should = std::find(decayed.begin(), decayed.end(), n) != decayed.end();
      REQUIRE(optim::timm_decays(n, p.value) == should);
      n_decayed += should;
      for (std::int64_t i = 0; i < p.value.numel(); ++i) {
        if (!should) {
          REQUIRE(p.value[i] == before[n][i]);  // bit-identical: zero gradient, no decay
        } else if (decoupled) {
          REQUIRE(p.value[i] == Approx(before[n][i] * (1.0f - lr * wd)).epsilon(1e-6));
        } else {  // L2: g = wd p > 0, first step moves by lr against it
          REQUIRE(p.value[i] == Approx(before[n][i] - lr).epsilon(1e-5));
        }
      }
    }
    REQUIRE(n_decayed == static_cast<int>(decayed.size()));
  }
  // Without a rule every parameter decays (torch's default), biases included.
  for (auto& [n, p] : model.parameters()) p.value = before[n].clone();
  optim::AdamW<> all({.lr = lr, .weight_decay = wd});
  all.step(model.parameters());
  REQUIRE(model.parameter("blocks.0.norm1.bias").value[0] == Approx(before["blocks.0.norm1.bias"][0] * (1.0f - lr * wd)));
  REQUIRE(model.parameter("cls_token").value[0] == Approx(before["cls_token"][0] * (1.0f - lr * wd)));
}

TEST_CASE("Adam: parameters without a gradient are skipped, errors name the problem", "[optim][adam]") {
  auto ps = tiny_params();
  const auto w0 = ps["w"].value.clone();
  ps["b"].grad = Tensor<>::full(ps["b"].value.shape(), 1.0f);
  optim::AdamW<> opt({.lr = 0.1f, .weight_decay = 0.1f});
  opt.step(ps);
  REQUIRE(!opt.has_state("w"));
  REQUIRE(opt.has_state("b"));
  for (std::int64_t i = 0; i < w0.numel(); ++i) REQUIRE(ps["w"].value[i] == w0[i]);
  REQUIRE_THROWS_WITH(opt.state("w"), Catch::Contains("never stepped"));

  ps["b"].value = Tensor<>::zeros(Shape{5});
  ps["b"].grad = Tensor<>::zeros(Shape{5});
  REQUIRE_THROWS_WITH(opt.step(ps), Catch::Contains("changed shape"));
  ps["b"].grad = Tensor<>::zeros(Shape{4});
  REQUIRE_THROWS_WITH(opt.step(ps), Catch::Contains("'b'"));

  REQUIRE_THROWS_WITH(optim::Adam<>({.lr = -1.0f}), Catch::Contains("lr"));
  REQUIRE_THROWS_WITH(optim::Adam<>({.beta1 = 1.0f}), Catch::Contains("beta1"));
  REQUIRE_THROWS_WITH(optim::AdamW<>({.beta2 = -0.1f}), Catch::Contains("beta2"));
  REQUIRE_THROWS_WITH(optim::AdamW<>({.weight_decay = -0.1f}), Catch::Contains("weight_decay"));
  REQUIRE_THROWS_WITH(opt.set_lr(NAN), Catch::Contains("set_lr"));
}
