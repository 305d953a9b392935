// tasks/label_recovery.hpp: labels with repeats from the head-bias gradient, on gradients of the shipped
// checkpoints (the teacher and the untrained one) and on the closed form g_c = p_c - n_c / B.
#include "test_util.hpp"
#include "tasks/teacher_fixture.hpp"

#include <cmath>
#include <string>
#include <vector>

#include "mint/nn/softmax.hpp"
#include "mint/tasks/gradvit.hpp"
#include "mint/tasks/label_recovery.hpp"

using namespace mint;
namespace gv = mint::tasks::gradvit;
namespace lr = mint::tasks::labels;

namespace label_recovery_test {

// The first test images with these labels (the k-th repeat takes the k-th image of the class).
Tensor<> batch_with(const std::vector<int>& labels) {
  const auto& d = test::test_images();
  auto x = Tensor<>::empty(Shape{static_cast<std::int64_t>(labels.size()), 1, 28, 28});
  for (std::size_t b = 0; b < labels.size(); ++b) {
    int skip = 0;
    for (std::size_t a = 0; a < b; ++a) skip += labels[a] == labels[b];
    for (std::int64_t i = 0; i < d.size(); ++i)
      if (d.labels[static_cast<std::size_t>(i)] == labels[b] && skip-- == 0) {
        std::copy(d.images.data() + i * 784, d.images.data() + (i + 1) * 784,
                  x.data() + static_cast<std::int64_t>(b) * 784);
        break;
      }
  }
  return x;
}

std::vector<int> sorted(std::vector<int> v) {
  std::sort(v.begin(), v.end());
  return v;
}

ViT<>& untrained() {
  static auto m = ViT<>::load(std::string(MINT_MODELS_DIR) + "/fmnist_vit_init.safetensors");
  return m;
}

const std::vector<std::vector<int>> kBatches = {{7}, {4, 4}, {0, 0, 6, 6, 6, 2}, {9, 1, 9, 1, 9, 1, 8, 8},
                                                {3, 3, 3, 5, 5, 0, 2, 7}};

}  // namespace label_recovery_test

using label_recovery_test::kBatches;

TEST_CASE("Label counts: exact from the bias gradient and the batch's own mean softmax", "[labels]") {
  auto& model = test::teacher();
  for (const auto& y : kBatches) {
    const auto x = label_recovery_test::batch_with(y);
    const auto g = gv::parameter_gradients(model, x, y);
    auto p = nn::softmax(model.forward(x));
    std::vector<double> mean(10, 0.0);
    for (std::size_t b = 0; b < y.size(); ++b)
      for (int c = 0; c < 10; ++c)
        mean[static_cast<std::size_t>(c)] += p[static_cast<std::int64_t>(b) * 10 + c] / static_cast<double>(y.size());
    // n_c = B (P_c / B - g_c) is an identity; float32 rounding of g (~1e-7) is far below the 0.5 rounding margin
    CHECK(lr::labels_from_bias_and_probs(g.at("head.bias"), static_cast<int>(y.size()), mean) ==
          label_recovery_test::sorted(y));
  }
}

TEST_CASE("Label counts: the impact rule recovers repeats on the untrained checkpoint", "[labels]") {
  auto& model = label_recovery_test::untrained();
  for (const auto& y : kBatches) {
    const auto g = gv::parameter_gradients(model, label_recovery_test::batch_with(y), y);
    INFO("batch of " << y.size());
    CHECK(lr::labels_with_repeats(g.at("head.bias"), static_cast<int>(y.size())) == label_recovery_test::sorted(y));
    // with the uniform estimate 1/C (an untrained head hardly depends on the input) the counts are exact too
    CHECK(lr::labels_from_bias_and_probs(g.at("head.bias"), static_cast<int>(y.size()), std::vector<double>(10, 0.1)) ==
          label_recovery_test::sorted(y));
  }
}

TEST_CASE("Label counts: the impact rule on the trained teacher keeps every certainly present class", "[labels]") {
  auto& model = test::teacher();
  for (const auto& y : kBatches) {
    const auto g = gv::parameter_gradients(model, label_recovery_test::batch_with(y), y);
    const auto rec = lr::labels_with_repeats(g.at("head.bias"), static_cast<int>(y.size()));
    REQUIRE(rec.size() == y.size());
    for (int c : gv::labels_from_bias_sign(g.at("head.bias")))
      CHECK(std::count(rec.begin(), rec.end(), c) >= 1);
    CHECK(lr::multiset_overlap(rec, y) >= static_cast<int>(gv::labels_from_bias_sign(g.at("head.bias")).size()));
  }
}

TEST_CASE("Label counts: a synthetic uniform-softmax gradient and the errors", "[labels]") {
  // g_c = 1/C - n_c / B for counts (3, 2, 1, 1, 1, 0, ...) at B = 8: both rules give the counts back
  const std::vector<int> y = {0, 0, 0, 1, 1, 2, 3, 4};
  auto g = Tensor<>::empty(Shape{10});
  for (int c = 0; c < 10; ++c) g[c] = static_cast<float>(0.1 - std::count(y.begin(), y.end(), c) / 8.0);
  CHECK(lr::labels_with_repeats(g, 8) == y);
  CHECK(lr::labels_from_bias_and_probs(g, 8, std::vector<double>(10, 0.1)) == y);
  CHECK(lr::multiset_overlap({1, 1, 2}, {1, 2, 2}) == 2);
  REQUIRE_THROWS_WITH(lr::labels_with_repeats(g, 4), Catch::Contains("5 classes have a negative bias gradient"));
  REQUIRE_THROWS_WITH(lr::labels_from_bias_and_probs(g, 8, std::vector<double>(9, 0.1)),
                      Catch::Contains("9 probabilities for 10 classes"));
  REQUIRE_THROWS_WITH(lr::labels_from_bias_and_probs(g, 8, std::vector<double>(10, 0.2)),
                      Catch::Contains("sum to 2"));
  REQUIRE_THROWS_WITH(lr::labels_with_repeats(Tensor<>::zeros(Shape{10}), 8),
                      Catch::Contains("no class has a negative"));
  REQUIRE_THROWS_WITH(lr::labels_with_repeats(Tensor<>::zeros(Shape{2, 5}), 8), Catch::Contains("must be [classes]"));
}
