// patchify (patch embedding as a GEMM), per-image token gather, CLS concat + position embedding.
#include "test_util.hpp"

#include "mint/autodiff/backward.hpp"
#include "mint/nn/linear.hpp"
#include "mint/nn/tokens.hpp"

using namespace mint;
using testing::uniform;

TEST_CASE("patch embedding as patchify + GEMM equals a stride-P convolution", "[nn][tokens]") {
  const int b = 2, c = 3, h = 8, w = 12, p = 4, d = 5;
  auto img = uniform(Shape{b, c, h, w}, 61), wt = uniform(Shape{d, c, p, p}, 62), bias = uniform(Shape{d}, 63);
  auto tok = nn::linear(nn::patchify(img, p), wt.reshape(Shape{d, c * p * p}), &bias);
  REQUIRE(tok.shape() == Shape{b, 6, d});
  for (int bi = 0; bi < b; ++bi)
    for (int py = 0; py < 2; ++py)
      for (int px = 0; px < 3; ++px)
        for (int o = 0; o < d; ++o) {
          double s = bias[o];
          for (int ch = 0; ch < c; ++ch)
            for (int y = 0; y < p; ++y)
              for (int x = 0; x < p; ++x)
                s += static_cast<double>(wt[((o * c + ch) * p + y) * p + x]) * img[((bi * c + ch) * h + py * p + y) * w + px * p + x];
          REQUIRE(std::abs(tok[((bi * 6) + py * 3 + px) * d + o] - s) < 1e-5);
        }
  REQUIRE_THROWS_WITH(nn::patchify(img, 5), Catch::Contains("[2, 3, 8, 12]") && Catch::Contains("5x5"));
}

TEST_CASE("patchify and gather backward: finite differences", "[nn][tokens][gradcheck]") {
  auto img = uniform(Shape{2, 2, 9, 9}, 64);  // 3x3 patches of 3x3 px
  nn::TokenIndex keep{2, 3, {4, 0, 7, 8, 1, 2}};
  auto r = uniform(Shape{2, 3, 2 * 9}, 65);
  auto loss = [&] { return testing::dot(nn::gather_tokens(nn::patchify(img, 3), keep), r); };
  auto dpatch = Tensor<>::zeros(Shape{2, 9, 18});
  nn::gather_tokens_backward(r, keep, dpatch);
  auto dimg = Tensor<>::zeros(img.shape());
  nn::patchify_backward(dpatch, 3, dimg);
  MINT_REQUIRE_CLOSE(testing::check_gradient(loss, img, dimg, "patchify+gather dimages", {.max_coords = 324}));
  // dropped patch 3 of image 0 gets no gradient
  auto dp = nn::patchify(dimg, 3);
  for (int e = 0; e < 18; ++e) REQUIRE(dp[(0 * 9 + 3) * 18 + e] == 0.0f);
}

// The CPU overload composes patchify and gather_tokens; this pins that definition, which the CUDA kernel
// (reading the kept pixels directly) is compared against in tests/cuda/.
TEST_CASE("patchify with a keep set equals gather(patchify), and so does its backward", "[nn][tokens]") {
  auto img = uniform(Shape{2, 2, 9, 9}, 66);
  nn::TokenIndex keep{2, 3, {4, 0, 7, 8, 1, 2}};
  auto a = nn::patchify(img, 3, &keep), b = nn::gather_tokens(nn::patchify(img, 3), keep);
  MINT_REQUIRE_CLOSE(testing::compare(a, b, {0, 0}, "patchify(keep)"));
  MINT_REQUIRE_CLOSE(testing::compare(nn::patchify(img, 3, nullptr), nn::patchify(img, 3), {0, 0}, "patchify(nullptr)"));
  auto r = uniform(a.shape(), 67);
  auto d1 = uniform(img.shape(), 68), d2 = d1.clone();
  nn::patchify_backward(r, 3, &keep, d1);
  auto dall = Tensor<>::zeros(Shape{2, 9, 18});
  nn::gather_tokens_backward(r, keep, dall);
  nn::patchify_backward(dall, 3, d2);
  MINT_REQUIRE_CLOSE(testing::compare(d1, d2, {0, 0}, "patchify_backward(keep)"));
}

TEST_CASE("keep sets are validated", "[nn][tokens]") {
  auto x = uniform(Shape{2, 4, 3}, 66);
  REQUIRE_THROWS_WITH(nn::gather_tokens(x, nn::TokenIndex{2, 2, {0, 4, 1, 2}}), Catch::Contains("patch 4 outside"));
  REQUIRE_THROWS_WITH(nn::gather_tokens(x, nn::TokenIndex{2, 2, {1, 1, 1, 2}}), Catch::Contains("twice"));
  REQUIRE_THROWS_WITH(nn::gather_tokens(x, nn::TokenIndex{3, 1, {1, 1, 1}}), Catch::Contains("batch 3"));
}

TEST_CASE("embed_tokens: CLS/dist concat and position add, gradients in both modes", "[nn][tokens][gradcheck]") {
  for (bool distilled : {false, true}) {
    CAPTURE(distilled);
    const int e = distilled ? 2 : 1, n = 5, d = 4, b = 2;
    auto cls = uniform(Shape{1, 1, d}, 71), dist = uniform(Shape{1, 1, d}, 72), pos = uniform(Shape{1, e + n, d}, 73);
    auto tok = uniform(Shape{b, 3, d}, 74);
    nn::TokenIndex keep{b, 3, {4, 1, 2, 0, 3, 2}};
    nn::TokenEmbedParams prm{&cls, distilled ? &dist : nullptr, &pos};
    auto y = nn::embed_tokens(tok, &keep, prm);
    REQUIRE(y.shape() == Shape{b, e + 3, d});
    REQUIRE(y[0] == cls[0] + pos[0]);
    // image 1, kept token 0 is patch 0 -> pos row e + 0
    REQUIRE(y[((1 * (e + 3)) + e) * d + 2] == tok[(1 * 3 + 0) * d + 2] + pos[e * d + 2]);
    auto r = uniform(y.shape(), 75);
    auto loss = [&] { return testing::dot(nn::embed_tokens(tok, &keep, prm), r); };
    for (auto mode : {Backward::InputOnly, Backward::Full}) {
      Param<> pc{cls, {}}, pd{dist, {}}, pp{pos, {}};
      auto dtok = Tensor<>::zeros(tok.shape());
      nn::embed_tokens_backward(r, &keep, e, {&dtok, pc.grad_for(mode), distilled ? pd.grad_for(mode) : nullptr, pp.grad_for(mode)});
      MINT_REQUIRE_CLOSE(testing::check_gradient(loss, tok, dtok, "embed d_tokens"));
      if (mode == Backward::Full) {
        MINT_REQUIRE_CLOSE(testing::check_gradient(loss, cls, pc.grad, "embed d_cls"));
        MINT_REQUIRE_CLOSE(testing::check_gradient(loss, pos, pp.grad, "embed d_pos"));
        if (distilled) MINT_REQUIRE_CLOSE(testing::check_gradient(loss, dist, pd.grad, "embed d_dist"));
      }
    }
  }
}
