// The inversion engine on CUDA against the same engine on the CPU: DMI, SMI and PRI on the small fixture ViT
// (Fashion-MNIST shape, 49 patches), the same seed, labels and schedule, a few iterations with a schedule event.
// Compared: the loss of every iteration, the active counts, the output images (pixels and masks) and the Adam
// update counts; plus the CUDA cross-entropy and masked Adam step against their CPU ops. Without a GPU each
// test prints "SKIPPED: no usable CUDA device".
#include "mint/inversion/inverter_cuda.cuh"  // first: the CUDA ops must be declared before the templates

#include "cuda/cuda_test_util.hpp"

#include <string>

using namespace mint;
using testing::compare_gpu;
using testing::uniform;

namespace {
Tensor<Cuda> dev(const Tensor<Cpu>& t) { return to_backend<Cuda>(t); }
// Estimates (no GPU has run them yet): one iteration differs by float summation order (~1e-6 relative); Adam
// divides by sqrt(v) ~ |g|, so pixel updates agree to ~1e-5 of lr, and three iterations stay within 1e-3.
constexpr testing::Tolerance kOp{1e-5, 1e-4}, kRun{1e-3, 1e-3};

InversionOptions opts(int iterations) {
  InversionOptions o;
  o.iterations = iterations;
  o.lr = 0.1f;
  o.seed = 3;
  o.pixel_lo = -3.0f, o.pixel_hi = 3.0f;
  return o;
}

// Runs the method (the schedule's: Dense is DMI, ProgressivePrune SMI, Rebirth PRI) on both backends (on CUDA with
// or without the CUDA graph), with augmentation `aug`, and compares everything the result holds.
template <class Sch, class A = NoAugmentation>
void compare_method(const char* name, Sch schedule, int iterations, bool graph = false, A aug = {}) {
  auto cpu = ViT<Cpu>::load(std::string(MINT_FIXTURE_DIR) + "/small_vit.safetensors");
  auto gpu = ViT<Cuda>::load(std::string(MINT_FIXTURE_DIR) + "/small_vit.safetensors");
  const std::vector<int> labels{0, 3, 7};
  Inverter<ViT<Cpu>, ClassObjective, TV, HighAttention, Sch, A> ic(cpu, {}, TV{1e-2f}, {}, schedule, aug,
                                                                   opts(iterations));
  auto go = opts(iterations);
  go.cuda_graph = graph;
  Inverter<ViT<Cuda>, ClassObjective, TV, HighAttention, Sch, A> ig(gpu, {}, TV{1e-2f}, {}, schedule, aug, go);
  auto rc = ic.run(labels);
  auto rg = ig.run(labels);
  REQUIRE(rg.history.size() == rc.history.size());
  for (std::size_t t = 0; t < rc.history.size(); ++t) {
    INFO(name << " iteration " << t + 1);
    std::printf("%s iteration %zu: loss cpu %.7g cuda %.7g (diff %.3g), active %lld\n", name, t + 1,
                static_cast<double>(rc.history[t].loss), static_cast<double>(rg.history[t].loss),
                static_cast<double>(rg.history[t].loss - rc.history[t].loss),
                static_cast<long long>(rg.history[t].active));
    REQUIRE(rg.history[t].active == rc.history[t].active);
    REQUIRE(std::abs(rg.history[t].loss - rc.history[t].loss) <= 1e-4 + 1e-3 * std::abs(rc.history[t].loss));
  }
  // masks follow the attention ranking: equal unless two patches' CLS attention tie within float rounding
  REQUIRE(rg.images.size() == rc.images.size());
  for (std::size_t i = 0; i < rc.images.size(); ++i) {
    REQUIRE(rg.images[i].label == rc.images[i].label);
    REQUIRE(rg.images[i].iteration == rc.images[i].iteration);
    MINT_REQUIRE_CLOSE(testing::compare(rg.images[i].mask, rc.images[i].mask, {0, 0},
                                        std::string(name) + " mask " + std::to_string(i)));
    auto r = testing::compare(rg.images[i].pixels, rc.images[i].pixels, kRun,
                              std::string(name) + " CUDA vs CPU pixels of image " + std::to_string(i));
    std::printf("%s\n", r.message.c_str());
    MINT_REQUIRE_CLOSE(r);
  }
  MINT_REQUIRE_CLOSE(testing::compare(rg.update_counts, rc.update_counts, {0, 0}, std::string(name) + " update counts"));
}
}  // namespace

TEST_CASE("GPU: cross-entropy and the masked Adam step equal the CPU ops", "[cuda][gpu][inversion]") {
  MINT_CUDA_REQUIRE_DEVICE();
  auto z = uniform(Shape{5, 1000}, 80, -4.f, 4.f), dz0 = uniform(z.shape(), 81);
  const std::vector<int> labels{0, 999, 17, 500, 3};
  auto dz = dz0.clone();
  auto gdz = dev(dz0);
  const float l = nn::cross_entropy(z, labels, &dz, 0.7f);
  const float gl = nn::cross_entropy(dev(z), labels, &gdz, 0.7f);
  std::printf("cross_entropy: cpu %.9g cuda %.9g\n", static_cast<double>(l), static_cast<double>(gl));
  REQUIRE(std::abs(gl - l) <= 1e-6f * std::abs(l));  // both sum in double: float rounding of the result only
  MINT_REQUIRE_CLOSE(compare_gpu(gdz, dz, kOp, "cross_entropy d_logits"));
  REQUIRE_THROWS_WITH(nn::cross_entropy(dev(z), {0, 1, 2, 3, 1000}), Catch::Contains("label 1000 of image 4"));

  auto x = uniform(Shape{2, 3, 8, 8}, 82, -4.f, 4.f), g = uniform(x.shape(), 83), m = uniform(x.shape(), 84),
       v = uniform(x.shape(), 85, 0.0f, 1.0f);
  auto gx = dev(x), gm = dev(m), gv = dev(v);
  nn::TokenIndex active{2, 2, {3, 0, 1, 2}};  // 4 patches of 4x4 per image
  const fn::AdamStep step{0.1f, 0.5f, 0.99f, 1e-8f, 0.5f, 0.01f};
  masked_adam_step(step, x, g, m, v, active, 4, -3.0f, 3.0f);
  masked_adam_step(step, gx, dev(g), gm, gv, active, 4, -3.0f, 3.0f);
  MINT_REQUIRE_CLOSE(compare_gpu(gx, x, kOp, "masked Adam: pixels"));
  MINT_REQUIRE_CLOSE(compare_gpu(gm, m, kOp, "masked Adam: first moment"));
  MINT_REQUIRE_CLOSE(compare_gpu(gv, v, kOp, "masked Adam: second moment"));
}

TEST_CASE("GPU: DMI on ViT<Cuda> equals DMI on ViT<Cpu>", "[cuda][gpu][inversion]") {
  MINT_CUDA_REQUIRE_DEVICE();
  compare_method("DMI", Dense{}, 3);
}

TEST_CASE("GPU: SMI (prune after iteration 1 and 2) on ViT<Cuda> equals SMI on ViT<Cpu>", "[cuda][gpu][inversion]") {
  MINT_CUDA_REQUIRE_DEVICE();
  compare_method("SMI", ProgressivePrune{{1, 2}, 0.3f}, 3);
}

TEST_CASE("GPU: PRI (v = 2) on ViT<Cuda> equals PRI on ViT<Cpu>", "[cuda][gpu][inversion]") {
  MINT_CUDA_REQUIRE_DEVICE();
  compare_method("PRI", Rebirth{2}, 4);
}

// The graph path: iteration 1 at each K runs uncaptured, 2 is captured and launched, 3 replays; each prune
// changes K and drops the graph, so this covers capture, replay and re-capture twice.
TEST_CASE("GPU: SMI with the iteration in a CUDA graph (re-captured after each prune) equals SMI on the CPU",
          "[cuda][gpu][inversion][graph]") {
  MINT_CUDA_REQUIRE_DEVICE();
  compare_method("SMI graph", ProgressivePrune{{3, 6}, 0.3f}, 9, true);
}

TEST_CASE("GPU: PRI (v = 2) with the iteration in a CUDA graph equals PRI on the CPU", "[cuda][gpu][inversion][graph]") {
  MINT_CUDA_REQUIRE_DEVICE();
  compare_method("PRI graph", Rebirth{2}, 8, true);
}

TEST_CASE("GPU: a CUDA graph's memory is not handed to other work while the graph lives", "[cuda][gpu][graph]") {
  MINT_CUDA_REQUIRE_DEVICE();
  auto& cache = cuda::detail::DeviceCache::instance();
  cuda::detail::DeviceCache::Pool pool;
  std::size_t bytes = 4096;
  void* outside = cache.allocate(bytes);  // idle on the shared list before the capture
  cache.deallocate(outside, bytes);
  cache.begin_capture(&pool);
  std::size_t b2 = 4096;
  void* inside = cache.allocate(b2);  // taken from the shared list: now the pool's
  cache.deallocate(inside, b2);       // back to the pool, not to the shared list
  cache.end_capture();
  REQUIRE(inside == outside);
  std::size_t b3 = 4096;
  void* after = cache.allocate(b3);  // must not be the pool's block
  REQUIRE(after != inside);
  cache.deallocate(after, b3);
  cache.release(&pool);  // the graph is gone: its idle block joins the shared list again
  std::size_t b4 = 4096;
  void* again = cache.allocate(b4);
  REQUIRE((again == inside || again == after));
  cache.deallocate(again, b4);
}

// The transform is the same fn::RollFlip map on both backends (its CPU loop is tested in test_policies.cpp and
// test_official_policies.cpp); the keep set is remapped on the host for both.
TEST_CASE("GPU: SMI and PRI with patch jitter/flip, and the official pixel jitter, equal the CPU runs",
          "[cuda][gpu][inversion][augmentation]") {
  MINT_CUDA_REQUIRE_DEVICE();
  compare_method("SMI jitterflip", ProgressivePrune{{2, 4}, 0.3f}, 6, false, JitterFlip{});
  compare_method("PRI jitterflip_official", Rebirth{2}, 6, false, JitterFlipOfficial{});
}

TEST_CASE("GPU: an augmentation under a CUDA graph is refused, naming it", "[cuda][gpu][inversion][graph]") {
  MINT_CUDA_REQUIRE_DEVICE();
  auto gpu = ViT<Cuda>::load(std::string(MINT_FIXTURE_DIR) + "/small_vit.safetensors");
  auto o = opts(20);
  o.cuda_graph = true;
  Inverter<ViT<Cuda>, ClassObjective, TV, HighAttention, Dense, JitterFlip> inv(gpu, {}, {}, {}, {}, {}, o);
  REQUIRE_THROWS_WITH(inv.run({0}), Catch::Contains("augmentation mint::JitterFlip") && Catch::Contains("cuda_graph"));
}

TEST_CASE("GPU: the masked Adam step clips each channel to its own range, as the CPU step",
          "[cuda][gpu][inversion]") {
  MINT_CUDA_REQUIRE_DEVICE();
  // ImageNet's per-channel ranges (SMI's clip_images); values in [-4, 4] and a large lr push pixels past them
  const ClipRange r = ClipRange::of(Normalization{{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}}, 3);
  auto x = uniform(Shape{2, 3, 8, 8}, 86, -4.f, 4.f), g = uniform(x.shape(), 87), m = uniform(x.shape(), 88),
       v = uniform(x.shape(), 89, 0.0f, 1.0f);
  auto gx = dev(x), gm = dev(m), gv = dev(v);
  nn::TokenIndex active{2, 3, {3, 0, 1, 2, 1, 0}};
  const fn::AdamStep step{1.0f, 0.5f, 0.99f, 1e-8f, 0.5f, 0.01f};
  masked_adam_step(step, x, g, m, v, active, 4, r);
  masked_adam_step(step, gx, dev(g), gm, gv, active, 4, r);
  MINT_REQUIRE_CLOSE(compare_gpu(gx, x, kOp, "masked Adam, per-channel clip: pixels"));
  // the CPU step (the oracle) put the stepped pixels of channel 2 above channel 0's bound: the clip is per channel
  bool above = false;
  for (std::int64_t e = 0; e < 64; ++e) above = above || x[2 * 64 + e] > r.hi[0];
  REQUIRE(above);
}
