// mint-distill: distils the embedded teacher (or --teacher) into a student on a synthetic data set written by
// save_synthetic_dataset (e.g. by mint-invert), offline protocol, then prints the student's top-1 accuracy on
// the real Fashion-MNIST test set (all classes, and --classes if given).
//
//   mint-distill --data SYNTH.safetensors [--teacher T.safetensors] [--student S.safetensors [--reinit-head 1]]
//                [--dim 32 --depth 2 --heads 2 --mlp 64] [--epochs 10] [--batch 128] [--lr 0.1] [--tau 20]
//                [--flip 0|1] [--probe 0|1] [--seed 0] [--classes 5,6,7,8,9] [--test DIR] [--out S.safetensors]
//                [--threads T]
//
// Without --student, the student is a new ViT of the given shape (the teacher's image size and patch size),
// initialised as mint-train-teacher does. --probe 1 trains the head only (linear probing).
#include <cstdio>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <mint/mint.hpp>

namespace {

const char* kUsage =
    "mint-distill --data SYNTH.safetensors [--teacher T.safetensors] [--student S.safetensors [--reinit-head 1]]\n"
    "             [--dim 32 --depth 2 --heads 2 --mlp 64] [--epochs 10] [--batch 128] [--lr 0.1] [--tau 20]\n"
    "             [--flip 0|1] [--probe 0|1] [--seed 0] [--classes 5,6,7,8,9] [--test DIR] [--out S.safetensors]\n"
    "             [--threads T]";

int run(int argc, char** argv) {
  std::map<std::string, std::string> kv{{"teacher", MINT_DEFAULT_MODEL}, {"test", "/usr/share/datasets/fashion-mnist"},
                                        {"dim", "32"},   {"depth", "2"},   {"heads", "2"},  {"mlp", "64"},
                                        {"epochs", "10"}, {"batch", "128"}, {"lr", "0.1"},   {"tau", "20"},
                                        {"flip", "0"},   {"probe", "0"},   {"seed", "0"},   {"reinit-head", "1"},
                                        {"threads", "0"}};
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--help" || k == "-h") {
      std::puts(kUsage);
      return 0;
    }
    mint::check(k.rfind("--", 0) == 0 && i + 1 < argc, "mint-distill: expected --option value, got '", k, "'\n", kUsage);
    kv[k.substr(2)] = argv[++i];
  }
  mint::check(kv.count("data") == 1, "mint-distill: --data is required\n", kUsage);
  const auto num = [&](const char* k) { return std::stod(kv.at(k)); };
  if (num("threads") > 0) mint::cpu::set_num_threads(static_cast<int>(num("threads")));

  auto teacher = mint::ViT<>::load(kv.at("teacher"));
  const auto seed = static_cast<std::uint64_t>(num("seed"));
  mint::ViT<> student = [&] {
    if (kv.count("student")) return mint::tasks::load_student(kv.at("student"), num("reinit-head") != 0, seed);
    mint::ViTConfig cfg = teacher.config();
    cfg.dim = static_cast<int>(num("dim")), cfg.depth = static_cast<int>(num("depth"));
    cfg.heads = static_cast<int>(num("heads")), cfg.mlp_hidden = static_cast<int>(num("mlp"));
    cfg.distilled = false;
    return mint::tasks::make_student(cfg, seed);
  }();
  const auto data = mint::load_synthetic_dataset(kv.at("data"));

  mint::tasks::DistillOptions opt;
  opt.temperature = static_cast<float>(num("tau"));
  opt.sgd.lr = static_cast<float>(num("lr"));
  opt.batch = static_cast<std::int64_t>(num("batch"));
  opt.flip = num("flip") != 0;
  opt.seed = seed;
  if (num("probe") != 0) opt.trainable = [](const std::string& n) { return n.rfind("head", 0) == 0; };
  const auto epochs = static_cast<std::int64_t>(num("epochs"));
  std::printf("distilling %s into a student (dim %d, depth %d) on %zu synthetic images from %s: %lld epochs, batch "
              "%lld, SGD lr %g, tau %g%s\n",
              kv.at("teacher").c_str(), student.config().dim, student.config().depth, data.size(), kv.at("data").c_str(),
              static_cast<long long>(epochs), static_cast<long long>(opt.batch), static_cast<double>(opt.sgd.lr),
              static_cast<double>(opt.temperature), opt.trainable ? ", head only" : "");
  const auto steps_per_epoch = static_cast<std::int64_t>((data.size() + static_cast<std::size_t>(opt.batch) - 1) /
                                                         static_cast<std::size_t>(opt.batch));
  double epoch_loss = 0.0;
  const auto log = mint::tasks::distill_offline(teacher, student, data, epochs, opt,
                                                [&](std::int64_t step, const mint::tasks::DistillStepStats& s) {
                                                  epoch_loss += s.loss;
                                                  if ((step + 1) % steps_per_epoch == 0) {
                                                    std::printf("epoch %lld  KD loss %.4f\n",
                                                                static_cast<long long>((step + 1) / steps_per_epoch),
                                                                epoch_loss / static_cast<double>(steps_per_epoch));
                                                    std::fflush(stdout);
                                                    epoch_loss = 0.0;
                                                  }
                                                });
  const auto test = mint::tasks::load_fashion_mnist(kv.at("test"), false);
  std::printf("student test top-1: %.2f%% (%lld images, %.1f s distillation)\n",
              100.0 * mint::tasks::accuracy(student, test).value(), static_cast<long long>(test.size()), log.seconds);
  if (kv.count("classes")) {
    std::vector<int> classes;
    std::stringstream ss(kv.at("classes"));
    for (std::string c; std::getline(ss, c, ',');) classes.push_back(std::stoi(c));
    const auto a = mint::tasks::accuracy(student, test, {.classes = classes});
    std::printf("student top-1 on classes %s: %.2f%% (%lld images)\n", kv.at("classes").c_str(), 100.0 * a.value(),
                static_cast<long long>(a.total));
  }
  if (kv.count("out")) {
    student.save(kv.at("out"), {{"mint.distilled_from", kv.at("teacher")}, {"mint.synthetic_data", kv.at("data")}});
    std::printf("wrote %s\n", kv.at("out").c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
}
