// optim::SGD against torch.optim.SGD: three steps on two parameters, the final values computed by torch
// 2.x (/usr/bin/python3, the script is in the comment below) for four settings; a first step worked by hand;
// skipped parameters, the decay rule, and the option errors.
#include "test_util.hpp"

#include <map>
#include <string>
#include <vector>

#include "mint/optim/sgd.hpp"

using namespace mint;

namespace {

// The torch reference (float32):
//   p = torch.tensor([0.5, -1.25, 2.0], requires_grad=True); q = torch.tensor([[1.0, -0.75]], requires_grad=True)
//   opt = torch.optim.SGD([p, q], **kw)
//   for gp, gq in grads: p.grad = torch.tensor(gp); q.grad = torch.tensor(gq); opt.step()
const std::vector<std::vector<float>> kGradP{{0.1f, -0.2f, 0.3f}, {-0.4f, 0.05f, 0.0f}, {0.2f, 0.2f, -0.1f}};
const std::vector<std::vector<float>> kGradQ{{0.5f, -0.5f}, {0.25f, 1.0f}, {-1.0f, 0.125f}};

std::map<std::string, Param<>> two_params() {
  std::map<std::string, Param<>> ps;
  ps["p"].value = Tensor<>::empty(Shape{3});
  ps["q"].value = Tensor<>::empty(Shape{1, 2});
  const float p0[] = {0.5f, -1.25f, 2.0f}, q0[] = {1.0f, -0.75f};
  for (int i = 0; i < 3; ++i) ps["p"].value[i] = p0[i];
  for (int i = 0; i < 2; ++i) ps["q"].value[i] = q0[i];
  return ps;
}

void set_grad(Param<>& p, const std::vector<float>& g) {
  p.grad = Tensor<>::empty(p.value.shape());
  for (std::size_t i = 0; i < g.size(); ++i) p.grad[static_cast<std::int64_t>(i)] = g[i];
}

void run_three_steps(const optim::SGDOptions& o, const std::vector<float>& want_p, const std::vector<float>& want_q) {
  auto ps = two_params();
  optim::SGD<> opt(o);
  for (std::size_t s = 0; s < 3; ++s) {
    set_grad(ps["p"], kGradP[s]);
    set_grad(ps["q"], kGradQ[s]);
    opt.step(ps);
  }
  for (std::size_t i = 0; i < want_p.size(); ++i)
    REQUIRE(ps["p"].value[static_cast<std::int64_t>(i)] == Approx(want_p[i]).epsilon(1e-6).margin(1e-7));
  for (std::size_t i = 0; i < want_q.size(); ++i)
    REQUIRE(ps["q"].value[static_cast<std::int64_t>(i)] == Approx(want_q[i]).epsilon(1e-6).margin(1e-7));
  REQUIRE(opt.state("p").steps == 3);
}

}  // namespace

TEST_CASE("SGD: one step worked by hand (momentum buffer starts as the decayed gradient)", "[optim][sgd]") {
  auto ps = two_params();
  optim::SGD<> opt({.lr = 0.1f, .momentum = 0.9f, .weight_decay = 1e-4f});
  set_grad(ps["p"], kGradP[0]);
  set_grad(ps["q"], kGradQ[0]);
  opt.step(ps);
  // d = g + 1e-4 p = 0.1 + 0.5e-4 = 0.10005; buf = d; p = 0.5 - 0.1 * 0.10005 = 0.489995
  REQUIRE(ps["p"].value[0] == Approx(0.489995f).epsilon(1e-6));
  REQUIRE(opt.state("p").momentum_buffer[0] == Approx(0.10005f).epsilon(1e-6));
  // second step, d = -0.4 + 1e-4 * 0.489995; buf = 0.9 * 0.10005 + d; p -= 0.1 buf
  set_grad(ps["p"], kGradP[1]);
  set_grad(ps["q"], kGradQ[1]);
  opt.step(ps);
  const double d = -0.4 + 1e-4 * 0.489995, buf = 0.9 * 0.10005 + d;
  REQUIRE(ps["p"].value[0] == Approx(0.489995 - 0.1 * buf).epsilon(1e-6));
}

TEST_CASE("SGD: three steps match torch.optim.SGD (PRI App. D setting, plain, dampening, nesterov)", "[optim][sgd]") {
  SECTION("lr 0.1, momentum 0.9, weight_decay 1e-4 (PRI Appendix D)") {
    run_three_steps({.lr = 0.1f, .momentum = 0.9f, .weight_decay = 1e-4f}, {0.528871953f, -1.22523069f, 1.92858887f},
                    {0.916945994f, -0.816958785f});
  }
  SECTION("plain SGD, lr 0.1") {
    run_three_steps({.lr = 0.1f}, {0.51000005f, -1.255f, 1.98000002f}, {1.02499998f, -0.8125f});
  }
  SECTION("momentum 0.9, dampening 0.5, weight_decay 0.01") {
    run_three_steps({.lr = 0.05f, .momentum = 0.9f, .dampening = 0.5f, .weight_decay = 0.01f},
                    {0.499412507f, -1.22768486f, 1.95770526f}, {0.94332087f, -0.731332898f});
  }
  SECTION("nesterov, momentum 0.9, weight_decay 0.01") {
    run_three_steps({.lr = 0.05f, .momentum = 0.9f, .weight_decay = 0.01f, .nesterov = true},
                    {0.515984118f, -1.23640573f, 1.94995022f}, {0.971280277f, -0.808422685f});
  }
}

TEST_CASE("SGD: parameters without a gradient are skipped, the decay rule, option errors", "[optim][sgd]") {
  auto ps = two_params();
  optim::SGD<> opt({.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.5f},
                   [](const std::string& n, const Tensor<>&) { return n != "q"; });
  set_grad(ps["q"], {0.0f, 0.0f});
  opt.step(ps);
  REQUIRE(!opt.has_state("p"));
  REQUIRE(ps["p"].value[0] == 0.5f);     // no gradient: untouched
  REQUIRE(ps["q"].value[0] == 1.0f);     // zero gradient and no decay for "q": unchanged
  REQUIRE(ps["q"].value[1] == -0.75f);
  set_grad(ps["p"], {0.0f, 0.0f, 0.0f});
  opt.step(ps);
  REQUIRE(ps["p"].value[0] == Approx(0.5f - 0.1f * 0.5f * 0.5f));  // decay only

  REQUIRE_THROWS_WITH(optim::SGD<>({.lr = -1.0f}), Catch::Contains("lr"));
  REQUIRE_THROWS_WITH(optim::SGD<>({.lr = 0.1f, .nesterov = true}), Catch::Contains("nesterov"));
  REQUIRE_THROWS_WITH(opt.state("nope"), Catch::Contains("never stepped"));
}
