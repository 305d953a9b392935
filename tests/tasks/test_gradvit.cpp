// tasks/gradvit.hpp: the gradient-matching loss (GradViT Eq. 3, L2 and total cosine, parameter subsets) and its
// input gradient by central-difference Hessian-vector products, against torch's float64 double backward
// (tests/fixtures/gradvit.safetensors, make_gradvit_fixtures.py); label recovery (Eq. 2 and the bias sign) on
// distinct and repeated labels; a batch-1 attack on the Fashion-MNIST teacher that must recover the image.
#include "test_util.hpp"
#include "tasks/teacher_fixture.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "mint/backend/cpu/gemm_backends.hpp"
#include "mint/io/safetensors.hpp"
#include "mint/models/vit.hpp"
#include "mint/tasks/evaluate.hpp"
#include "mint/tasks/gradvit.hpp"
#include "mint/tasks/metrics.hpp"

using namespace mint;
using namespace mint::tasks;
namespace gv = mint::tasks::gradvit;

namespace {

struct Fixture {
  std::map<std::string, Tensor<>> t;
  std::vector<int> labels;
  gv::GradMap gstar;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture x;
    x.t = io::load_safetensors(std::string(MINT_FIXTURE_DIR) + "/gradvit.safetensors").tensors;
    const auto& lab = x.t.at("labels");
    for (std::int64_t i = 0; i < lab.numel(); ++i) x.labels.push_back(static_cast<int>(lab[i]));  // I32 is read as float
    for (const auto& [k, v] : x.t)
      if (k.rfind("gstar.", 0) == 0) x.gstar[k.substr(6)] = v;
    return x;
  }();
  return f;
}

ViT<> fixture_model() {
  std::map<std::string, Tensor<>> w;
  for (const auto& [k, v] : fixture().t)
    if (k.rfind("w.", 0) == 0) w[k.substr(2)] = v;
  return ViT<>::from_tensors(w, ViTLoadOptions{.heads = 2});
}

double max_abs(const Tensor<>& t) {
  double m = 0.0;
  for (std::int64_t i = 0; i < t.numel(); ++i) m = std::max(m, static_cast<double>(std::abs(t[i])));
  return m;
}

using test::teacher;
using test::test_images;
// The first test image of each class in `classes` (in that order), as one batch.
Tensor<> batch_of(const std::vector<int>& classes) {
  const auto& d = test_images();
  const std::int64_t per = 28 * 28;
  auto x = Tensor<>::empty(Shape{static_cast<std::int64_t>(classes.size()), 1, 28, 28});
  std::vector<int> used(classes.size(), 0);
  for (std::size_t b = 0; b < classes.size(); ++b) {
    // the k-th occurrence of a class in `classes` takes the k-th image of that class (distinct images)
    int skip = 0;
    for (std::size_t a = 0; a < b; ++a) skip += classes[a] == classes[b];
    for (std::int64_t i = 0; i < d.size(); ++i)
      if (d.labels[static_cast<std::size_t>(i)] == classes[b] && skip-- == 0) {
        std::copy(d.images.data() + i * per, d.images.data() + (i + 1) * per, x.data() + static_cast<std::int64_t>(b) * per);
        break;
      }
  }
  return x;
}

}  // namespace

TEST_CASE("GradViT: parameter_gradients of the fixture ViT match torch", "[gradvit][parity]") {
  auto model = fixture_model();
  const auto g = gv::parameter_gradients(model, fixture().t.at("xstar"), fixture().labels);
  REQUIRE(g.size() == fixture().gstar.size());
  for (const auto& [name, ref] : fixture().gstar) {
    // the parity README's weight-gradient tolerance: 1e-5 max|ref| + 1e-4 |ref|
    MINT_REQUIRE_CLOSE(testing::compare(g.at(name), ref, {1e-5 * max_abs(ref), 1e-4}, "G* " + name));
  }
}

TEST_CASE("GradViT: matching loss and d loss / d x^ (central-difference HVP) match torch double backward",
          "[gradvit][parity]") {
  struct Variant {
    std::string candidate, name;
    gv::MatchDistance distance;
    gv::ParamFilter filter;
  };
  const std::vector<Variant> variants = {
      {"far", "l2.all", gv::MatchDistance::L2, {}},
      {"far", "cos.all", gv::MatchDistance::Cosine, {}},
      {"far", "l2.attn", gv::MatchDistance::L2, gv::attention_parameters()},
      {"far", "cos.mlp", gv::MatchDistance::Cosine, gv::mlp_parameters()},
      {"near", "l2.all", gv::MatchDistance::L2, {}},
      {"near", "cos.all", gv::MatchDistance::Cosine, {}},
  };
  auto model = fixture_model();
  const auto before = model.state_dict();
  for (const auto& v : variants) {
    const std::string key = v.candidate + "." + v.name;
    const auto& xh = fixture().t.at("xhat." + v.candidate);
    const auto& ref_dx = fixture().t.at(key + ".dx");
    const double ref_loss = fixture().t.at(key + ".loss")[0];
    gv::GradientMatch match(fixture().gstar, fixture().labels, {.distance = v.distance, .filter = v.filter});
    auto dx = Tensor<>::zeros(xh.shape());
    const auto val = match.evaluate(model, xh, &dx);
    CAPTURE(key, val.loss, ref_loss, val.step);
    // loss: the float32 G(x^) against the float64 one; relative 1e-4 (measured <= 2e-6, see docs/gradvit.md)
    REQUIRE(std::abs(val.loss - ref_loss) <= 1e-4 * std::abs(ref_loss));
    // d/dx^: central differences at rel_step 1e-4 -- truncation O(rel_step^2) and float32 rounding of the two
    // input gradients divided by the step, O(u / rel_step); together measured <= 2.1e-4 of max|ref|, so
    // 2e-3 max|ref| leaves ~10x margin (docs/gradvit.md)
    const auto rep = testing::compare(dx, ref_dx, {2e-3 * max_abs(ref_dx), 0.0}, "d match / d x^ " + key);
    std::printf("[gradvit] %-13s loss rel diff %.2e, dx max|diff|/max|ref| %.2e (%.3fx of the tolerance), eps %.3e\n",
                key.c_str(), std::abs(val.loss - ref_loss) / std::abs(ref_loss), rep.max_abs / max_abs(ref_dx),
                rep.worst_excess, val.step);
    MINT_REQUIRE_CLOSE(rep);
    // the loss alone (no d_x) is the same value
    REQUIRE(match.evaluate(model, xh).loss == val.loss);
  }
  // the weights come back bit for bit
  for (const auto& [name, w] : before) {
    const auto& now = model.parameter(name).value;
    REQUIRE(std::equal(w.data(), w.data() + w.numel(), now.data()));
  }
}

TEST_CASE("GradViT: the HVP step trades truncation against float32 rounding", "[gradvit][parity]") {
  // On every GEMM candidate: 1e-3 is truncation-bound and 1e-6 rounding-bound, both clearly worse than the default,
  // and the default beats the steps ten times smaller (1e-5, where rounding has taken over) and larger (1e-3).
  // What the default is NOT claimed to be is the grid's best: between 1e-4 and 3e-5 the winner depends on how the
  // GEMM kernel rounds, not on the method. far.l2's default error is its truncation error (2.0e-4, the same in
  // float64); 3e-5 gave 1.6e-4 with Eigen on the machine the grid was first measured on, 9.0e-5 with oneDNN there,
  // and 1.0e-4 with Eigen on an AMD EPYC (stop 29), where an Eigen-only "default within 2x of the best" check
  // failed at 2.03x. On near.cos.all 1e-4 has been the best everywhere so far, but that is not asserted either.
  auto model = fixture_model();
  const std::vector<double> steps = {1e-3, 1e-4, 3e-5, 1e-5, 1e-6};
  for (auto backend : cpu::kGemmBackends) {
    if (!cpu::gemm_backend_available(backend)) continue;
    cpu::ScopedGemmChoice pin({backend, cpu::GemmBackend::Eigen});
    for (const std::string key : {"far.l2.all", "near.cos.all"}) {
      const auto& xh = fixture().t.at(key.rfind("far", 0) == 0 ? "xhat.far" : "xhat.near");
      const auto& ref = fixture().t.at(key + ".dx");
      const auto dist = key.find("cos") != std::string::npos ? gv::MatchDistance::Cosine : gv::MatchDistance::L2;
      auto err_at = [&](double s) {
        gv::GradientMatch match(fixture().gstar, fixture().labels, {.distance = dist, .rel_step = s});
        auto dx = Tensor<>::zeros(xh.shape());
        match.evaluate(model, xh, &dx);
        return testing::compare(dx, ref, {1.0, 0.0}, "dx").max_abs / max_abs(ref);
      };
      std::vector<double> err;
      for (double s : steps) {
        err.push_back(err_at(s));
        std::printf("[gradvit] %s %s rel_step %.0e: max|diff|/max|ref| %.2e\n",
                    std::string(cpu::gemm_backend_name(backend)).c_str(), key.c_str(), s, err.back());
      }
      const double dflt = err_at(gv::GradientMatchOptions{}.rel_step);
      CAPTURE(std::string(cpu::gemm_backend_name(backend)), key, err, dflt);
      CHECK(err.front() > 3.0 * dflt);  // 1e-3: truncation
      CHECK(err.back() > 3.0 * dflt);   // 1e-6: rounding
      CHECK(err[3] > dflt);             // 1e-5: rounding already dominates
    }
  }
}

TEST_CASE("GradViT: parameter filters and their errors", "[gradvit]") {
  auto model = fixture_model();
  std::size_t attn = 0, mlp = 0, blk1 = 0, all = 0;
  for (const auto& [name, p] : model.parameters()) {
    ++all;
    attn += gv::attention_parameters()(name);
    mlp += gv::mlp_parameters()(name);
    blk1 += gv::block_parameters(1, 1)(name);
  }
  CHECK(attn == 4 * 2);  // qkv, proj (weight, bias) per block
  CHECK(mlp == 4 * 2);
  CHECK(blk1 == 12);
  CHECK(gv::except(gv::block_parameters(0, 1))("head.weight"));
  CHECK(!gv::block_parameters(0, 0)("blocks.10.norm1.weight"));
  CHECK(gv::block_parameters(10, 10)("blocks.10.norm1.weight"));
  gv::GradientMatch m(fixture().gstar, fixture().labels, {.filter = gv::block_parameters(1, 1)});
  CHECK(m.matched().size() == blk1);
  CHECK(all == fixture().gstar.size());
  REQUIRE_THROWS_WITH(gv::GradientMatch(fixture().gstar, fixture().labels, {.filter = gv::block_parameters(5, 6)}),
                      Catch::Contains("matches none"));
  // at x^ = x* with the true labels the L2 distance is float32 noise only, far below the 'far' candidate's
  const auto at_star = m.evaluate(model, fixture().t.at("xstar"));
  const auto far = m.evaluate(model, fixture().t.at("xhat.far"));
  CHECK(at_star.loss < 1e-9 * far.loss + 1e-12);
}

TEST_CASE("GradViT: the attack objective with the L2 distance, the patch prior and the L2 prior", "[gradvit][attack]") {
  // attack_objective is what attack minimises (attack calls it); here with MatchDistance::L2, patch (Eq. 8) and
  // l2 (Eq. 11) on, TV off, on the fixture ViT at the 'far' candidate. Each prior's weight is set so that its
  // gradient is of the order of the matching term's, so a prior whose gradient were dropped or misscaled fails
  // the finite-difference check below.
  auto model = fixture_model();
  const auto& x0 = fixture().t.at("xhat.far");
  gv::GradientMatch match(fixture().gstar, fixture().labels, {.distance = gv::MatchDistance::L2});
  auto dmatch = Tensor<>::zeros(x0.shape());
  const double m = match.evaluate(model, x0, &dmatch).loss;
  const gv::AttackOptions opt{.iterations = 10, .tv = 0.0f, .l2 = 2.0f, .patch = 0.5f, .patch_size = 2};
  auto x = x0.clone();
  auto dx = Tensor<>::empty(x.shape());
  dx.fill(7.0f);  // overwritten, not added to
  const double v = gv::attack_objective(model, match, x, opt, 3, nullptr, &dx);
  // the value: the sum of the separately tested terms (float32 priors summed in double: exact up to their own rounding)
  const double want = m + nn::l2_prior(x, opt.l2) + nn::patch_prior(x, opt.patch_size, opt.patch);
  CAPTURE(v, want, m);
  REQUIRE(std::abs(v - want) <= 1e-6 * std::abs(want));
  REQUIRE(gv::attack_objective(model, match, x, opt, 3) == v);  // the same value without the gradient
  // the gradient minus the matching term's is the priors' gradient (float32 sums of a few terms: 1e-5 of its max)
  auto dprior = Tensor<>::zeros(x.shape()), rest = Tensor<>::empty(x.shape());
  nn::l2_prior(x, opt.l2, &dprior);
  nn::patch_prior(x, opt.patch_size, opt.patch, &dprior);
  for (std::int64_t i = 0; i < x.numel(); ++i) rest[i] = dx[i] - dmatch[i];
  std::printf("[gradvit] objective: max|d match| %.3e, max|d priors| %.3e\n", max_abs(dmatch), max_abs(dprior));
  MINT_REQUIRE_CLOSE(testing::compare(rest, dprior, {1e-5 * max_abs(dprior), 0.0}, "d objective - d match"));
  // and the total against central differences of the total: the matching term's HVP is accurate to ~2e-4 of
  // max|d/dx| (the parity test above) and the finite differences at eps 1e-3 to float32 rounding of the loss,
  // so 1e-2 of max|dx| + 2e-2 relative is the tolerance (a dropped prior moves coordinates by ~max|dx|)
  const auto rep = testing::check_gradient([&] { return gv::attack_objective(model, match, x, opt, 3); }, x, dx,
                                           "d objective / dx (L2, patch, l2)",
                                           {.eps = 1e-3, .tol = {1e-2 * max_abs(dx), 2e-2}, .max_coords = 64});
  std::printf("[gradvit] objective (L2, patch, l2): finite differences max|diff| %.3e of max|dx| %.3e\n", rep.max_abs, max_abs(dx));
  MINT_REQUIRE_CLOSE(rep);
  auto wrong = Tensor<>::zeros(Shape{1, 3, 8, 8});
  REQUIRE_THROWS_WITH(gv::attack_objective(model, match, x, opt, 3, nullptr, &wrong), Catch::Contains("attack_objective: d_x"));
}

TEST_CASE("GradViT: label recovery on the random fixture ViT (distinct labels)", "[gradvit][labels]") {
  // torch's G* (labels 1, 4): the bias sign is exact; Eq. 2 is not -- the model puts most softmax mass on the
  // absent class 2, whose weight-gradient row sum_b p_b2 h_b has the most negative entry of all (documented).
  const auto& g = fixture().gstar;
  auto bias = gv::labels_from_bias_sign(g.at("head.bias"));
  std::sort(bias.begin(), bias.end());
  CHECK(bias == fixture().labels);
  CHECK(gv::recover_labels_eq2(g.at("head.weight"), 2) == std::vector<int>{2, 1});
}

TEST_CASE("GradViT: label recovery on the trained teacher: exact at batch 1, no false positives from the bias sign",
          "[gradvit][labels]") {
  // Batch 1: both rules are exact. Larger batches on this confident teacher: dL/db_c = (sum_b p_bc - n_c) / B is
  // close to 0 for a correctly classified class and flips sign with small mass from other images, so the bias
  // sign misses classes, but it never returns an absent one (provable: absent classes have a positive
  // gradient). Eq. 2 has no such guarantee and does return absent classes here. Counts are never recovered.
  for (int c = 0; c < 10; ++c) {
    const std::vector<int> one{c};
    const auto g = gv::parameter_gradients(teacher(), batch_of(one), one);
    CHECK(gv::recover_labels_eq2(g.at("head.weight"), 1) == one);
    CHECK(gv::labels_from_bias_sign(g.at("head.bias")) == one);
  }
  for (const std::vector<int>& classes :
       {std::vector<int>{0, 9}, std::vector<int>{7, 2, 5, 0}, std::vector<int>{1, 3, 5, 7, 9, 0, 2, 4},
        std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, std::vector<int>{4, 4}, std::vector<int>{0, 0, 6, 6, 6, 2},
        std::vector<int>{9, 1, 9, 1, 9, 1, 8, 8}}) {
    const auto g = gv::parameter_gradients(teacher(), batch_of(classes), classes);
    const auto want = std::set<int>(classes.begin(), classes.end());
    const auto n = static_cast<int>(classes.size());
    const auto eq2 = gv::recover_labels_eq2(g.at("head.weight"), n);
    const auto bias = gv::labels_from_bias_sign(g.at("head.bias"));
    std::size_t eq2_hits = 0;
    for (int c : eq2) eq2_hits += want.count(c);
    std::printf("[gradvit] labels: batch %d, %zu distinct: bias sign finds %zu (all present), Eq. 2 top-%d has %zu present\n",
                n, want.size(), bias.size(), n, eq2_hits);
    CAPTURE(classes, eq2, bias);
    for (int c : bias) CHECK(want.count(c) == 1);                          // no false positives
    CHECK(std::set<int>(bias.begin(), bias.end()).size() == bias.size());  // a set: no counts
    CHECK(static_cast<int>(std::set<int>(eq2.begin(), eq2.end()).size()) == n);  // n distinct classes
  }
}

TEST_CASE("GradViT: batch-1 attack on the Fashion-MNIST teacher recovers the image", "[gradvit][attack][slow]") {
  auto& model = teacher();
  const std::vector<int> label{7};  // a sneaker
  const auto xstar = batch_of(label);
  const auto g = gv::parameter_gradients(model, xstar, label);
  const auto ylabel = gv::recover_labels_eq2(g.at("head.weight"), 1);
  REQUIRE(ylabel == label);
  // total cosine: on this confident teacher the L2 form did not move from the noise (7.3 dB after 1000 steps)
  gv::GradientMatch match(g, ylabel, {.distance = gv::MatchDistance::Cosine});
  const float lo = (0.0f - kFashionMnistMean) / kFashionMnistStd, hi = (1.0f - kFashionMnistMean) / kFashionMnistStd;
  gv::AttackOptions opt{.iterations = 1000, .lr = 0.1f, .tv = 1e-3f, .seed = 1, .pixel_lo = lo, .pixel_hi = hi};
  const double peak = hi - lo;  // PSNR on the [0, 1] pixel scale
  auto res = gv::attack(model, match, xstar.shape(), opt, [&](int t, double loss, const Tensor<>& x) {
    if (t % 250 == 0) std::printf("[gradvit] attack t %d loss %.4e psnr %.2f dB\n", t, loss, tasks::psnr(x, xstar, static_cast<float>(peak))[0]);
  });
  auto noise = Tensor<>::empty(xstar.shape());
  fill_normal(noise, 1, 0, 0.0f, 1.0f);
  for (std::int64_t i = 0; i < noise.numel(); ++i) noise[i] = std::clamp(noise[i], lo, hi);
  const double p = tasks::psnr(res.images, xstar, static_cast<float>(peak))[0], p0 = tasks::psnr(noise, xstar, static_cast<float>(peak))[0];
  const double pz = tasks::psnr(Tensor<>::zeros(xstar.shape()), xstar, static_cast<float>(peak))[0];
  std::printf("[gradvit] attack: PSNR %.2f dB (initial noise %.2f dB, constant mean image %.2f dB), final loss %.4e\n", p, p0, pz, res.loss.back());
  CAPTURE(p, p0);
  CHECK(res.loss.back() < res.loss.front());
  // Measured (OMP 1): 12.39 dB; baselines: the initial noise 7.86 dB, the constant mean image 10.76 dB, the same
  // loop with the matching weight 0 (TV only) 10.15 dB. The bar 11.5 dB is 0.9 dB under the measurement and
  // above every baseline, so a broken match gradient fails it (docs/gradvit.md).
  REQUIRE(p >= 11.5);
  REQUIRE(p >= pz + 0.5);
}
