// BNPrior reads the CNN's latest forward, which under jitter/flip ran on the transformed images: its gradient
// would be in the transformed frame but added in the original one. The Inverter refuses the combination with a
// clear error (docs/inversion.md), and runs it when the augmentation is off.
#include "test_util.hpp"

#include <string>

#include "mint/inversion/augmentation.hpp"
#include "mint/inversion/bn_prior.hpp"
#include "mint/inversion/inverter.hpp"
#include "mint/inversion/regularizers.hpp"
#include "mint/inversion/schedules.hpp"
#include "mint/inversion/selectors.hpp"

using namespace mint;

static_assert(reads_model_activations<BNPrior>);
static_assert(reads_model_activations<Sum<TV, BNPrior>>);
static_assert(!reads_model_activations<Sum<TV, L2>>);
static_assert(!reads_model_activations<TV>);

TEST_CASE("Inverter refuses BNPrior with jitter/flip, runs it without", "[inversion][bn_prior]") {
  auto model = ResNet<>::load(std::string(MINT_MODELS_DIR) + "/fmnist_resnet.safetensors");
  model.eval();
  ResNetAdapter adapter(model);
  InversionOptions opt;
  opt.iterations = 2;
  using WithAug = Inverter<ResNetAdapter, ClassObjective, Sum<BNPrior, TV>, HighAttention, Dense, JitterFlip>;
  WithAug bad(adapter, {}, Sum<BNPrior, TV>(BNPrior{&model, 0.05f, 10.0f}, TV{1e-4f}), {}, {}, JitterFlip{}, opt);
  REQUIRE_THROWS_WITH(bad.run({3}), Catch::Contains("cannot be combined with an augmentation"));
  WithAug off(adapter, {}, Sum<BNPrior, TV>(BNPrior{&model, 0.05f, 10.0f}, TV{1e-4f}), {}, {}, JitterFlip{false, false}, opt);
  REQUIRE(off.run({3}).images.size() == 1);
}
