// mint-train-cnn: trains the Fashion-MNIST CNN teacher, mint's ResNet-18-style network (mint/models/resnet.hpp:
// BasicBlocks [2, 2, 2, 2], 3x3 stride-1 stem without max pool, base width --width), from scratch with mint's
// Backward::Full and optim::SGD (momentum, default) or optim::AdamW, and writes <out>/<name>.safetensors
// (torchvision names, BN running statistics included) and <out>/<name>.json, the recipe (architecture, width,
// normalisation, seed, optimizer, schedule, per-epoch history, test accuracy, wall time, the exact command).
//
// Recipe: torchvision init (init_torchvision_like: Kaiming-normal fan_out convs, BN 1/0, fc U(+-1/sqrt(in))),
// Philox-seeded; inputs (x - 0.2860) / 0.3530; mini-batches shuffled by a seeded permutation each epoch; per-step
// linear warmup then cosine LR; weight decay on conv and fc weights only (rank >= 2, optim::timm_decays);
// optional random horizontal flip and translation. BN runs in training mode while training, eval mode (running
// statistics) for the test accuracy, which is measured on --test-limit test images (default all 10000) after
// every epoch; the best epoch's weights are written.
//
//   mint-train-cnn [--epochs E] [--batch B] [--opt sgd|adamw] [--lr LR] [--momentum M] [--wd WD] [--width W]
//                  [--warmup EPOCHS] [--min-lr LR] [--flip 0|1] [--shift PX] [--seed S] [--out DIR] [--name NAME]
//                  [--data DIR] [--train-limit N] [--test-limit N] [--threads T] [--log-every STEPS]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <mint/mint.hpp>

#include "cli.hpp"
#include "training_common.hpp"
#include <mint/models/init.hpp>
#include <mint/models/resnet.hpp>
#include <mint/optim/sgd.hpp>
#include <mint/tasks/evaluate.hpp>

namespace {

using mint::examples::dec;
using mint::examples::now_utc;
using mint::examples::permutation;

constexpr float kMean = mint::tasks::kFashionMnistMean, kStd = mint::tasks::kFashionMnistStd;
constexpr std::uint32_t kShuffleStream = 1u << 20, kAugStream = 1u << 21;

struct Args : mint::examples::TrainingArgs {
  int width = 16, log_every = 50;
  std::string opt = "sgd";
  float momentum = 0.9f;
  Args() {
    epochs = 3, batch = 128, lr = 0.1f, wd = 5e-4f, warmup = 0.1f, min_lr = 0.0f;
    name = "fmnist_resnet";
  }
};

void add_options(mint::cli::Command& c, Args& a) {
  mint::examples::add_training_options(c, a, {"peak learning rate (default: 0.1 for sgd, 2e-3 for adamw)",
                                              "weight decay (default: 5e-4 for sgd, 0.05 for adamw)",
                                              "images per step (batch norm needs >= 2)", 2});
  c.choice("--opt", a.opt, "optimizer", {"sgd", "adamw"});
  c.number("--momentum", a.momentum, "SGD momentum", 0, 0.999999);
  c.number("--width", a.width, "base width", 1, 1024);
  c.number("--log-every", a.log_every, "print progress every N steps (0: never)", 0, 1'000'000'000);
}

// The optimizer's defaults for the options not given, then the checks that need several options.
void finish(const mint::cli::Command& c, Args& a) {
  if (!c.given("--lr")) a.lr = a.opt == "sgd" ? 0.1f : 2e-3f;
  if (!c.given("--wd")) a.wd = a.opt == "sgd" ? 5e-4f : 0.05f;
  mint::check(!c.given("--momentum") || a.opt == "sgd", "--momentum applies to --opt sgd only");
  mint::examples::validate_training(a);
}

// Copies normalised images idx[0..b) into a batch; with augmentation, image j is flipped horizontally with
// probability 1/2 and shifted by (dy, dx) in [-shift, shift]^2, the uncovered border being the background.
void make_batch(const mint::Tensor<>& src_all, const std::int32_t* idx, std::int64_t b, mint::Tensor<>& out, bool flip,
                int shift, std::uint64_t seed, std::uint32_t stream, std::uint64_t first) {
  const std::int64_t h = src_all.dim(2), w = src_all.dim(3), per = h * w;
  const float bg = (0.0f - kMean) / kStd;
  mint::cpu::parallel_for(b, [&](std::int64_t j) {
    const float* src = src_all.data() + static_cast<std::int64_t>(idx[j]) * per;
    float* dst = out.data() + j * per;
    bool fl = false;
    int dy = 0, dx = 0;
    if (flip || shift > 0) {
      const auto r = mint::philox_block(seed, stream, first + static_cast<std::uint64_t>(j));
      fl = flip && (r.w[0] >> 31);
      dy = shift ? static_cast<int>(r.w[1] % static_cast<std::uint32_t>(2 * shift + 1)) - shift : 0;
      dx = shift ? static_cast<int>(r.w[2] % static_cast<std::uint32_t>(2 * shift + 1)) - shift : 0;
    }
    for (std::int64_t y = 0; y < h; ++y)
      for (std::int64_t x = 0; x < w; ++x) {
        const std::int64_t sy = y - dy;
        std::int64_t sx = x - dx;
        if (fl) sx = w - 1 - sx;
        dst[y * w + x] = (sy < 0 || sy >= h || sx < 0 || sx >= w) ? bg : src[sy * w + sx];
      }
  }, 8);
}

int run(const mint::cli::Command& cmd, Args& args) {
  finish(cmd, args);
  const Args& a = args;
  std::filesystem::create_directories(a.out);
  mint::cli::check_writable_file(a.out + "/" + a.name + ".safetensors", "--out");
  using clock = std::chrono::steady_clock;
  if (a.threads > 0) mint::cpu::set_num_threads(a.threads);
  const auto t_start = clock::now();
  const std::string started = now_utc();
  auto train = mint::tasks::load_fashion_mnist(a.data, true, a.train_limit);
  auto test = mint::tasks::load_fashion_mnist(a.data, false, a.test_limit);
  const std::int64_t n = train.size(), img = train.images.dim(2);

  mint::ResNetConfig cfg;
  cfg.in_chans = 1, cfg.img_size = static_cast<int>(img), cfg.width = a.width, cfg.classes = 10;
  mint::ResNet<> model(cfg);
  mint::init_torchvision_like(model, a.seed);
  std::int64_t n_params = 0;
  for (const auto& [k, p] : model.parameters()) n_params += p.value.numel();

  mint::optim::SGD<> sgd({.lr = a.lr, .momentum = a.momentum, .weight_decay = a.wd}, mint::optim::timm_decays);
  mint::optim::AdamW<> adamw({.lr = a.lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = a.wd},
                             mint::optim::timm_decays);
  const bool use_sgd = a.opt == "sgd";
  const std::int64_t steps_per_epoch = (n + a.batch - 1) / a.batch, total = steps_per_epoch * a.epochs;
  const std::int64_t warmup = std::min<std::int64_t>(total, std::llround(a.warmup * static_cast<double>(steps_per_epoch)));
  auto lr_at = [&](std::int64_t s) {
    if (s < warmup) return a.lr * static_cast<float>(s + 1) / static_cast<float>(warmup);
    const double frac = total > warmup ? static_cast<double>(s - warmup) / static_cast<double>(total - warmup) : 1.0;
    return static_cast<float>(a.min_lr + 0.5 * (a.lr - a.min_lr) * (1.0 + std::cos(M_PI * frac)));
  };

  std::printf("cnn      %s: %lld parameters, %.1f MMAC forward per image\n", model.describe().c_str(),
              static_cast<long long>(n_params), static_cast<double>(model.forward_macs()) / 1e6);
  std::printf("data     %s: %lld train, %lld test images; normalise (x - %.4f) / %.4f\n", a.data.c_str(),
              static_cast<long long>(n), static_cast<long long>(test.size()), kMean, kStd);
  std::printf("recipe   %s lr %g (warmup %lld steps, cosine to %g), momentum %g, wd %g, batch %d, %d epochs (%lld steps), "
              "flip %d, shift %d, seed %llu, %d threads\n",
              a.opt.c_str(), a.lr, static_cast<long long>(warmup), a.min_lr, a.momentum, a.wd, a.batch, a.epochs,
              static_cast<long long>(total), a.flip, a.shift, static_cast<unsigned long long>(a.seed),
              mint::cpu::num_threads());
  std::fflush(stdout);

  const std::string st_path = a.out + "/" + a.name + ".safetensors", json_path = a.out + "/" + a.name + ".json";
  nlohmann::json history = nlohmann::json::array();
  double best_acc = -1.0, best_acc2000 = -1.0, train_seconds = 0.0;
  // The first 2000 test images (tests/models/test_resnet_teacher.cpp checks this number quickly).
  mint::tasks::LabeledImages test2000{mint::Tensor<>::empty(mint::Shape{std::min<std::int64_t>(2000, test.size()), 1, img, img}),
                                      {}};
  std::copy(test.images.data(), test.images.data() + test2000.images.numel(), test2000.images.data());
  test2000.labels.assign(test.labels.begin(), test.labels.begin() + test2000.images.dim(0));
  int best_epoch = 0;
  std::int64_t step = 0;
  auto xb = mint::Tensor<>::empty(mint::Shape{a.batch, 1, img, img});

  auto recipe = [&](bool complete, int epochs_done) {
    const double wall = std::chrono::duration<double>(clock::now() - t_start).count();
    return nlohmann::json{
        {"status", complete ? "complete" : "training"},
        {"epochs_done", epochs_done},
        {"command", cmd.command_line()},
        {"model", {{"file", a.name + ".safetensors"},
                   {"architecture", "ResNet-18-style (torchvision BasicBlock, layers [2,2,2,2]); 3x3 stride-1 stem, "
                                    "no max pool; global average pool, fc"},
                   {"width", cfg.width}, {"blocks", cfg.blocks}, {"img_size", cfg.img_size}, {"in_chans", cfg.in_chans},
                   {"classes", cfg.classes}, {"parameters", n_params}, {"forward_macs_per_image", model.forward_macs()},
                   {"bn_eps", dec(cfg.eps)}, {"bn_momentum", dec(cfg.momentum)}}},
        {"data", {{"dataset", "Fashion-MNIST"}, {"dir", a.data}, {"train_images", n}, {"test_images", test.size()}}},
        {"normalization", {{"mean", dec(kMean)}, {"std", dec(kStd)}, {"formula", "(x / 255 - mean) / std"}}},
        {"init", {{"seed", a.seed}, {"rule", "init_torchvision_like: conv kaiming_normal fan_out relu, BN 1/0, fc "
                                             "U(+-1/sqrt(in)); Philox stream p for parameter p (sorted names)"}}},
        {"optimizer", {{"name", use_sgd ? "SGD (torch semantics, mint::optim::SGD)" : "AdamW (mint::optim::AdamW)"},
                       {"lr", dec(a.lr)}, {"momentum", use_sgd ? dec(a.momentum) : 0.0}, {"weight_decay", dec(a.wd)},
                       {"no_weight_decay", "rank <= 1 tensors and *.bias (BN parameters, fc.bias)"}}},
        {"schedule", {{"kind", "per-step linear warmup then cosine"}, {"warmup_steps", warmup},
                      {"total_steps", total}, {"min_lr", dec(a.min_lr)}}},
        {"batch", a.batch},
        {"epochs", a.epochs},
        {"augmentation", {{"hflip", a.flip}, {"max_shift_px", a.shift}}},
        {"loss", "cross-entropy (mean over the batch)"},
        {"test_accuracy", best_acc},
        {"test_accuracy_pct", 100.0 * best_acc},
        {"test_accuracy_first2000", best_acc2000},
        {"selected_epoch", best_epoch},
        {"selection", "the epoch with the best test accuracy (BN in eval mode)"},
        {"history", history},
        {"train_seconds", train_seconds},
        {"wall_seconds", wall},
        {"threads", mint::cpu::num_threads()},
        {"backend", "mint CPU (Backward::Full)"},
        {"started_utc", started},
        {"written_utc", now_utc()}};
  };

  for (int epoch = 1; epoch <= a.epochs; ++epoch) {
    const auto t0 = clock::now();
    const auto perm = permutation(n, a.seed, kShuffleStream + static_cast<std::uint32_t>(epoch));
    double loss_sum = 0.0;
    std::int64_t correct = 0, seen = 0;
    model.train(true);
    for (std::int64_t s = 0; s < n; s += a.batch, ++step) {
      const std::int64_t b = std::min<std::int64_t>(a.batch, n - s);
      if (b < 2) break;  // BN needs more than one value per channel at layer4 (4 x 4): drop a 1-image tail
      if (b != xb.dim(0)) xb = mint::Tensor<>::empty(mint::Shape{b, 1, img, img});
      make_batch(train.images, perm.data() + s, b, xb, a.flip, a.shift, a.seed,
                 kAugStream + static_cast<std::uint32_t>(epoch), static_cast<std::uint64_t>(s));
      std::vector<int> labels(static_cast<std::size_t>(b));
      for (std::int64_t i = 0; i < b; ++i)
        labels[static_cast<std::size_t>(i)] = train.labels[static_cast<std::size_t>(perm[static_cast<std::size_t>(s + i)])];
      model.zero_grad();
      auto logits = model.forward(xb);
      auto dlogits = mint::Tensor<>::zeros(logits.shape());
      const float loss = mint::nn::cross_entropy(logits, labels, &dlogits);
      mint::check(std::isfinite(loss), "loss is ", loss, " at step ", step, "; lower --lr");
      model.backward(dlogits, mint::Backward::Full);
      const float lr = lr_at(step);
      if (use_sgd) sgd.set_lr(lr), sgd.step(model.parameters());
      else adamw.set_lr(lr), adamw.step(model.parameters());
      loss_sum += static_cast<double>(loss) * static_cast<double>(b);
      seen += b;
      for (std::int64_t i = 0; i < b; ++i) {
        const float* r = logits.data() + i * 10;
        correct += (std::max_element(r, r + 10) - r) == labels[static_cast<std::size_t>(i)];
      }
      if (a.log_every > 0 && (step + 1) % a.log_every == 0) {
        const double el = std::chrono::duration<double>(clock::now() - t0).count();
        std::printf("  step %6lld  epoch %d  %6lld/%lld images  loss %.4f  acc %6.2f%%  %.1f img/s  lr %.3g\n",
                    static_cast<long long>(step + 1), epoch, static_cast<long long>(seen), static_cast<long long>(n),
                    loss_sum / static_cast<double>(seen), 100.0 * static_cast<double>(correct) / static_cast<double>(seen),
                    static_cast<double>(seen) / el, lr);
        std::fflush(stdout);
      }
    }
    const auto t1 = clock::now();
    model.eval();
    const double acc = mint::tasks::accuracy(model, test).value();
    const double acc2000 = mint::tasks::accuracy(model, test2000).value();
    model.release_cache();
    const auto t2 = clock::now();
    const double secs = std::chrono::duration<double>(t1 - t0).count();
    const double eval_s = std::chrono::duration<double>(t2 - t1).count();
    train_seconds += secs;
    const double train_loss = loss_sum / static_cast<double>(seen), train_acc = static_cast<double>(correct) / static_cast<double>(seen);
    const bool better = acc > best_acc;
    if (better) best_acc = acc, best_acc2000 = acc2000, best_epoch = epoch;
    history.push_back({{"epoch", epoch}, {"train_loss", train_loss}, {"train_accuracy", train_acc},
                       {"test_accuracy", acc}, {"train_seconds", secs}, {"eval_seconds", eval_s},
                       {"train_images_per_s", static_cast<double>(seen) / secs}});
    std::printf("epoch %3d/%d  train loss %.4f  train acc %6.2f%%  test acc %6.2f%%%s  %6.1f img/s  (%.0f s train, "
                "%.1f s eval)\n",
                epoch, a.epochs, train_loss, 100.0 * train_acc, 100.0 * acc, better ? " *" : "  ",
                static_cast<double>(seen) / secs, secs, eval_s);
    if (better) {
      const std::map<std::string, std::string> meta{{"mint.dataset", "fashion-mnist"},
                                                    {"mint.test_accuracy", std::to_string(best_acc)},
                                                    {"mint.epoch", std::to_string(epoch)},
                                                    {"mint.width", std::to_string(cfg.width)},
                                                    {"mint.normalize_mean", std::to_string(kMean)},
                                                    {"mint.normalize_std", std::to_string(kStd)},
                                                    {"mint.recipe", a.name + ".json"},
                                                    {"mint.command", cmd.command_line()}};
      mint::io::write_atomically(st_path, [&](const std::string& p) { model.save(p, meta); });
    }
    const auto rec = recipe(epoch == a.epochs, epoch);
    mint::cli::write_json(json_path, rec);
    std::fflush(stdout);
  }
  std::printf("\nbest test accuracy %.2f%% (epoch %d of %d); training %.0f s on %d threads\nwrote %s and %s\n",
              100.0 * best_acc, best_epoch, a.epochs, train_seconds, mint::cpu::num_threads(),
              std::filesystem::absolute(st_path).c_str(), std::filesystem::absolute(json_path).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  mint::cli::Command cmd("mint-train-cnn",
                         "Trains the Fashion-MNIST ResNet-18-style CNN teacher (recipe: the file comment).");
  add_options(cmd, a);
  return mint::cli::main(cmd, argc, argv, [&] { return run(cmd, a); });
}
