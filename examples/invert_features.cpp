// mint-invert-features: recover one image from the CNN's features at a split point with trained DCI modules
// (tasks::DCI, docs/dci.md), print PSNR / SSIM / teacher agreement, and write original | recovered as a PNG.
//
//   (`mint-invert-features --help` lists the options)
//   mint-invert-features --modules dci_out/dci_real_1000_depth3.safetensors --split layer3 --index 7 --out x.png
//   mint-invert-features --modules ... --split layer2 --png my28x28.png --out x.png
#include <cstdio>
#include <string>

#include <mint/io/image.hpp>
#include <mint/models/resnet.hpp>
#include <mint/tasks/dci.hpp>
#include <mint/tasks/evaluate.hpp>

#include "cli.hpp"

using namespace mint;

namespace {
struct Args {
  std::string modules, split = "layer2", png, model = MINT_DEFAULT_CNN, data = "/usr/share/datasets/fashion-mnist",
                       out = "invert_features.png";
  std::int64_t index = 0;
};

void add_options(cli::Command& c, Args& a) {
  c.existing("--modules", a.modules,
             "trained DCI modules (mint-dci-results writes dci_out/dci_<source>_<n>_depth<k>.safetensors: the "
             "modules right after stage k, the ones to use for split k)")
      ->required();
  std::vector<std::string> splits;
  for (int k = 0; k < tasks::kDciDepths; ++k) splits.push_back(ResNet<>::stage_name(static_cast<Stage>(k)));
  c.choice("--split", a.split, "the CNN stage whose features are inverted", splits);
  c.number("--index", a.index, "Fashion-MNIST test image index (or --png)", 0, 9999);
  c.existing("--png", a.png, "a 28 x 28 PNG instead of a test image (converted to one channel)");
  c.existing("--model", a.model, "CNN teacher");
  c.existing("--data", a.data, "Fashion-MNIST idx.gz folder");
  c.text("--out", a.out, "side-by-side PNG, original | recovered");
}

Stage parse_split(const std::string& s) {
  for (int k = 0; k < tasks::kDciDepths; ++k)
    if (s == ResNet<>::stage_name(static_cast<Stage>(k))) return static_cast<Stage>(k);
  throw Error("--split '" + s + "' is not a stage name");
}

int run(const cli::Command& c, const Args& a) {
  const auto& [modules, split, png, model, data, out, index] = a;
  check(!(c.given("--index") && c.given("--png")), "--index and --png both choose the image: pass one");
  cli::check_writable_file(out, "--out");
  const Stage st = parse_split(split);
  const float mean = tasks::kFashionMnistMean, sd = tasks::kFashionMnistStd;

  auto teacher = ResNet<>::load(model);
  teacher.eval();
  tasks::DCI dci(teacher);
  dci.load(modules);
  check(dci.trained_depth() >= static_cast<int>(st), "--modules: '", modules, "' has modules trained up to depth ",
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
    check(img.dim(1) == 28 && img.dim(2) == 28, "--png: '", png, "' is ", img.dim(1), " x ", img.dim(2),
          ", expected 28 x 28");
    x = Tensor<Cpu>::empty(Shape{1, 1, 28, 28});
    for (std::int64_t i = 0; i < 784; ++i) x[i] = (img[i] - mean) / sd;
    what = png;
  } else {
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
  const auto orig01 = tasks::denormalize01(x, mean, sd), rec01 = tasks::denormalize01(rec, mean, sd);
  std::copy(orig01.data(), orig01.data() + 784, pair.data());
  std::copy(rec01.data(), rec01.data() + 784, pair.data() + 784);
  cli::write_png(out, io::image_grid(pair, 2, 2));
  std::printf("wrote %s (original | recovered)\n", out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  cli::Command cmd("mint-invert-features", "Inverts a CNN's intermediate features back to the image (DCI).");
  add_options(cmd, a);
  return cli::main(cmd, argc, argv, [&] { return run(cmd, a); });
}
