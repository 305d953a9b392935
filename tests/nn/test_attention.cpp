// attention core: forward against a naive per-head computation, CLS attention, gradient of qkv.
#include "test_util.hpp"

#include <cmath>

#include "mint/nn/attention.hpp"

using namespace mint;
using testing::uniform;

namespace {
// Naive reference: probs[b,h,i,j] and out[b,i,h*dh+e].
void naive_attention(const Tensor<>& qkv, int heads, Tensor<>& out, Tensor<>& probs) {
  const auto b = qkv.dim(0), t = qkv.dim(1), d = qkv.dim(2) / 3, dh = d / heads;
  out = Tensor<>::zeros(Shape{b, t, d});
  probs = Tensor<>::zeros(Shape{b, heads, t, t});
  auto at = [&](int bi, int ti, int which, int h, int e) { return qkv[(bi * t + ti) * 3 * d + which * d + h * dh + e]; };
  for (int bi = 0; bi < b; ++bi)
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < t; ++i) {
        std::vector<double> s(t);
        double mx = -1e300;
        for (int j = 0; j < t; ++j) {
          double v = 0;
          for (int e = 0; e < dh; ++e) v += static_cast<double>(at(bi, i, 0, h, e)) * at(bi, j, 1, h, e);
          s[j] = v / std::sqrt(static_cast<double>(dh));
          mx = std::max(mx, s[j]);
        }
        double z = 0;
        for (int j = 0; j < t; ++j) z += (s[j] = std::exp(s[j] - mx));
        for (int j = 0; j < t; ++j) probs[((bi * heads + h) * t + i) * t + j] = static_cast<float>(s[j] / z);
        for (int e = 0; e < dh; ++e) {
          double o = 0;
          for (int j = 0; j < t; ++j) o += s[j] / z * at(bi, j, 2, h, e);
          out[(bi * t + i) * d + h * dh + e] = static_cast<float>(o);
        }
      }
}
}  // namespace

TEST_CASE("attention matches a naive computation and hands out CLS attention", "[nn][attention]") {
  const int heads = 3;
  auto qkv = uniform(Shape{2, 7, 3 * 12}, 51, -2.f, 2.f);
  nn::AttentionSaved saved;
  Tensor<> cls;
  auto out = nn::attention(qkv, heads, &saved, &cls, /*first_patch=*/2);
  Tensor<> ref_out, ref_probs;
  naive_attention(qkv, heads, ref_out, ref_probs);
  MINT_REQUIRE_CLOSE(testing::compare(out, ref_out, {1e-5, 1e-4}, "attention out"));
  MINT_REQUIRE_CLOSE(testing::compare(saved.probs, ref_probs, {1e-6, 1e-4}, "attention probs"));
  REQUIRE(cls.shape() == Shape{2, 5});
  auto ref_cls = Tensor<>::zeros(Shape{2, 5});
  for (int b = 0; b < 2; ++b)
    for (int j = 0; j < 5; ++j) {
      double s = 0;
      for (int h = 0; h < heads; ++h) s += ref_probs[((b * heads + h) * 7 + 0) * 7 + 2 + j];
      ref_cls[b * 5 + j] = static_cast<float>(s / heads);
    }
  MINT_REQUIRE_CLOSE(testing::compare(cls, ref_cls, {1e-6, 1e-4}, "cls attention"));
  REQUIRE_THROWS_WITH(nn::attention(qkv, 5, nullptr), Catch::Contains("5 heads"));
}

TEST_CASE("attention backward: finite differences (no weights: one mode)", "[nn][attention][gradcheck]") {
  const int heads = 2;
  auto qkv = uniform(Shape{2, 5, 3 * 8}, 52, -1.5f, 1.5f);
  auto r = uniform(Shape{2, 5, 8}, 53);
  nn::AttentionSaved saved;
  nn::attention(qkv, heads, &saved);
  auto dqkv = Tensor<>::zeros(qkv.shape());
  nn::attention_backward(r, qkv, heads, saved, dqkv);
  auto loss = [&] { return testing::dot(nn::attention(qkv, heads, nullptr), r); };
  MINT_REQUIRE_CLOSE(testing::check_gradient(loss, qkv, dqkv, "attention dqkv", {.max_coords = 240}));
}

TEST_CASE("attention on the leading query rows equals those rows of the full attention", "[nn][attention][gradcheck]") {
  const int heads = 2;
  auto qkv = uniform(Shape{2, 6, 3 * 8}, 54, -1.5f, 1.5f);
  nn::AttentionSaved full_saved, part_saved;
  Tensor<> cls_full, cls_part;
  auto full = nn::attention(qkv, heads, &full_saved, &cls_full, 1);
  auto part = nn::attention(qkv, heads, &part_saved, &cls_part, 1, /*query_rows=*/2);
  REQUIRE(part.shape() == Shape{2, 2, 8});
  for (int b = 0; b < 2; ++b)
    for (int j = 0; j < 16; ++j) REQUIRE(part[b * 16 + j] == Approx(full[b * 48 + j]).margin(1e-6));
  MINT_REQUIRE_CLOSE(testing::compare(cls_part, cls_full, {1e-7, 1e-6}, "cls attention from 2 query rows"));
  // backward through the partial attention: finite differences on every qkv entry (keys and values of all
  // rows get gradient, queries only on the first two)
  auto r = uniform(part.shape(), 55);
  auto dqkv = Tensor<>::zeros(qkv.shape());
  nn::attention_backward(r, qkv, heads, part_saved, dqkv);
  auto loss = [&] { return testing::dot(nn::attention(qkv, heads, nullptr, nullptr, 1, 2), r); };
  MINT_REQUIRE_CLOSE(testing::check_gradient(loss, qkv, dqkv, "partial attention dqkv", {.max_coords = 288}));
  for (int t = 2; t < 6; ++t)
    for (int e = 0; e < 8; ++e) REQUIRE(dqkv[(0 * 6 + t) * 24 + e] == 0.0f);  // queries of rows >= 2
}
