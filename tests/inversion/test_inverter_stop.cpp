// InversionOptions::stop (inversion/inverter.hpp): a set flag ends the run before the next iteration; the result
// is marked interrupted and keeps exactly the images finished by then (PRI's detached ones), nothing half-done.
#include "test_util.hpp"

#include <atomic>

#include "mint/inversion/inverter.hpp"
#include "mint/models/vit.hpp"

namespace inverter_stop_test {
mint::ViT<> small_model() { return mint::ViT<>::load(std::string(MINT_FIXTURE_DIR) + "/small_vit.safetensors"); }
}  // namespace inverter_stop_test

using namespace mint;

TEST_CASE("Inverter stops at the iteration after the stop flag is set and keeps PRI's detached images") {
  auto model = inverter_stop_test::small_model();
  std::atomic<bool> stop{false};
  InversionOptions opt;
  opt.iterations = 40;
  opt.stop = &stop;
  PRI<ViT<>> inv(model, {}, {}, {}, Rebirth{4}, {}, opt);  // detachments after iterations 10, 20, 30
  const std::vector<int> labels{0, 1};
  const int stop_after = 25;  // two detachment points passed, the third not
  auto res = inv.run(labels, [&](const IterationStats& s) {
    if (s.iteration == stop_after) stop.store(true);
  });
  CHECK(res.interrupted);
  CHECK(static_cast<int>(res.history.size()) == stop_after);
  REQUIRE(res.images.size() == 2 * labels.size());  // 2 detachments x 2 trajectories, no final image
  for (const auto& im : res.images) CHECK((im.iteration == 10 || im.iteration == 20));
}

TEST_CASE("Inverter without a stop flag, or with one never set, runs all iterations and is not interrupted") {
  auto model = inverter_stop_test::small_model();
  std::atomic<bool> stop{false};
  InversionOptions opt;
  opt.iterations = 12;
  opt.stop = &stop;
  PRI<ViT<>> inv(model, {}, {}, {}, Rebirth{4}, {}, opt);
  auto res = inv.run({0});
  CHECK_FALSE(res.interrupted);
  CHECK(res.history.size() == 12);
  CHECK(res.images.size() == 4);  // v images per trajectory
}
