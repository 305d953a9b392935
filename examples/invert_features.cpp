// mint-invert-features: recover one image from the CNN's features at a split point with trained DCI modules
// (tasks::DCI, docs/dci.md), print PSNR / SSIM / teacher agreement, and write original | recovered as a PNG.
//
//   mint-invert-features --modules dci_out/dci_real_1000_depth3.safetensors --split layer3 --index 7 --out x.png
//   mint-invert-features --modules ... --split layer2 --png my28x28.png --out x.png
#include <cstdio>
#include <string>

#include <mint/io/image.hpp>
#include <mint/models/resnet.hpp>
#include <mint/tasks/dci.hpp>
#include <mint/tasks/evaluate.hpp>

#include "training_common.hpp"

using namespace mint;

namespace {
const char* kUsage = R"(mint-invert-features: invert a CNN's intermediate features back to the image (DCI).
  --modules PATH   trained DCI modules (mint-dci-results writes dci_out/dci_<source>_<n>_depth<k>.safetensors:
                   the modules right after stage k, the ones to use for split k)
  --split NAME     stem | layer1 | layer2 | layer3 | layer4 | logits (default layer2)
  --index I        Fashion-MNIST test image index (default 0), or
  --png PATH       a 28 x 28 grayscale PNG (any PNG is converted to one channel; must be 28 x 28)
  --model PATH     CNN teacher (default models/fmnist_resnet.safetensors)
  --data DIR       Fashion-MNIST idx.gz directory (default /usr/share/datasets/fashion-mnist)
  --out PATH       side-by-side PNG, original | recovered (default invert_features.png))";

Stage parse_split(const std::string& s) {
  for (int k = 0; k < tasks::kDciDepths; ++k)
    if (s == ResNet<>::stage_name(static_cast<Stage>(k))) return static_cast<Stage>(k);
  throw Error("mint-invert-features: --split '" + s + "' is not one of stem, layer1, layer2, layer3, layer4, logits");
}
}  // namespace

int main(int argc, char** argv) try {
  examples::Options o("mint-invert-features", kUsage, argc, argv);
  std::string modules, split = "layer2", png, model = MINT_DEFAULT_CNN,
                       data = "/usr/share/datasets/fashion-mnist", out = "invert_features.png";
  std::int64_t index = 0;
  o.text("modules", modules);
  o.text("split", split);
  o.number("index", index);
  o.text("png", png);
  o.text("model", model);
  o.text("data", data);
  o.text("out", out);
  o.finish();
  check(!modules.empty(), "mint-invert-features: --modules is required\n", kUsage);
  const Stage st = parse_split(split);
  const float mean = tasks::kFashionMnistMean, sd = tasks::kFashionMnistStd;

  auto teacher = ResNet<>::load(model);
  teacher.eval();
  tasks::DCI dci(teacher);
  dci.load(modules);
  check(dci.trained_depth() >= static_cast<int>(st), "mint-invert-features: '", modules, "' has modules trained up to depth ",
        dci.trained_depth(), " but --split ", split, " needs depth ", static_cast<int>(st));

  if (dci.trained_depth() > static_cast<int>(st))
    std::printf("note: '%s' holds modules fine-tuned up to depth %d; modules 0..%d were fine-tuned further for the "
                "deeper L_k. The file saved right after stage %d (mint-dci-results: ..._depth%d.safetensors) is the "
                "one trained for this split.\n",
                modules.c_str(), dci.trained_depth(), static_cast<int>(st), static_cast<int>(st), static_cast<int>(st));
  Tensor<Cpu> x;
  std::string what;
  if (!png.empty()) {
    auto img = io::read_png(png, 1);  // [1, H, W] in [0, 1]
    check(img.dim(1) == 28 && img.dim(2) == 28, "mint-invert-features: '", png, "' is ", img.dim(1), " x ", img.dim(2),
          ", expected 28 x 28");
    x = Tensor<Cpu>::empty(Shape{1, 1, 28, 28});
    for (std::int64_t i = 0; i < 784; ++i) x[i] = (img[i] - mean) / sd;
    what = png;
  } else {
    check(index >= 0 && index < 10000, "mint-invert-features: --index ", index, " is outside the test set [0, 10000)");
    const auto test = tasks::load_fashion_mnist(data, false, index + 1);
    x = Tensor<Cpu>::empty(Shape{1, 1, 28, 28});
    std::copy(test.images.data() + index * 784, test.images.data() + (index + 1) * 784, x.data());
    what = "test image " + std::to_string(index) + " (label " + std::to_string(test.labels[static_cast<std::size_t>(index)]) + ")";
  }
  auto z = dci.features(x, st);
  auto rec = dci.invert(z, st);
  const auto m = tasks::recovery_metrics(teacher, x, rec, mean, sd);
  std::printf("%s, split %s (%lld feature values): PSNR %.2f dB, SSIM %.3f, teacher agrees: %s\n", what.c_str(),
              split.c_str(), static_cast<long long>(z.numel()), m.psnr[0], m.ssim[0], m.agree[0] ? "yes" : "no");
  auto pair = Tensor<Cpu>::empty(Shape{2, 1, 28, 28});
  const auto a = tasks::denormalize01(x, mean, sd), b = tasks::denormalize01(rec, mean, sd);
  std::copy(a.data(), a.data() + 784, pair.data());
  std::copy(b.data(), b.data() + 784, pair.data() + 784);
  io::write_png(out, io::image_grid(pair, 2, 2));
  std::printf("wrote %s (original | recovered)\n", out.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return 1;
}
