// mint-train-teacher: trains the embedded Fashion-MNIST teacher, a small timm-named ViT (28x28, one channel,
// patch 4: 49 patches + CLS), from scratch with mint's own Backward::Full and optim::AdamW, and writes
// <out>/<name>.safetensors (ViT::save: timm names + mint.num_heads, plus accuracy/recipe metadata) and
// <out>/<name>.json, the recipe (architecture, normalisation, seed, optimizer, schedule, augmentation,
// per-epoch history, final test accuracy, wall time, threads, the exact command).
//
// Recipe: timm-like init (Linear weights, cls_token, pos_embed ~ N(0, 0.02); the patch-embedding conv with
// PyTorch's default U(+-1/sqrt(fan_in)) as timm leaves it; biases 0; LayerNorm weights 1), all from Philox with
// --seed; inputs (x - 0.2860) / 0.3530; mini-batches shuffled each epoch by a seeded permutation; AdamW with
// weight decay on the GEMM weights only (optim::timm_decays); per-step cosine LR with linear warmup;
// optional augmentation (random horizontal flip, random translation with zero padding; DeiT's random erasing,
// mixup, cutmix and label smoothing, tasks/train_augment.hpp, with soft-target cross-entropy). After every epoch the
// full 10000-image test set is evaluated and the best weights so far are written, so a long run never loses a
// finished epoch. The test set is the only held-out data of Fashion-MNIST, so "best" is selected on it; the
// JSON's history shows every epoch, and with a cosine schedule the best is normally the last.
//
//   mint-train-teacher [--epochs E] [--lr LR] [--batch B] [--seed S] [--out DIR] [--name NAME]
//                      [--dim D] [--depth L] [--heads H] [--mlp M] [--wd WD] [--warmup EPOCHS] [--min-lr LR]
//                      [--flip 0|1] [--shift PX] [--data DIR] [--train-limit N] [--test-limit N] [--threads T]
//                      [--classes 0,1,2,3,4] [--erase P] [--mixup A] [--cutmix A] [--mix-prob P]
//                      [--switch-prob P] [--smoothing S]
//
// DeiT's recipe (Touvron et al. 2021, Table 9) is --erase 0.25 --mixup 0.8 --cutmix 1.0 --smoothing 0.1 (its
// RandAugment and repeated augmentation are not here); the defaults turn all four off (the embedded teacher).
//
// --classes (default: all): train and evaluate on the images of these classes only (after --train-limit /
// --test-limit, which count images before filtering). The head keeps all 10 outputs; the other classes are
// never a target. This pre-trains the 5-class student backbone of mint-experiment (docs/results.md).
//
// --threads (default: OpenMP's, i.e. all cores): on a machine shared with other busy processes, 1 thread can be
// several times faster than 2, because Eigen's parallel GEMM spin-waits for a descheduled partner thread.
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

namespace {

using mint::examples::dec;
using mint::examples::now_utc;
using mint::examples::permutation;

constexpr float kMean = 0.2860f, kStd = 0.3530f;  // Fashion-MNIST training-set pixel statistics
// Philox stream layout: parameter p (sorted-name order) uses stream p; shuffles and augmentation use their own.
constexpr std::uint32_t kShuffleStream = 1u << 20, kAugStream = 1u << 21, kEraseStream = 1u << 22,
                        kMixStream = 1u << 23;  // erasing uses kEraseStream + 2 epoch and the one after it

struct Args : mint::examples::TrainingArgs {
  int dim = 64, depth = 4, heads = 4, mlp = 128, patch = 4;
  std::vector<int> classes;  // empty: all
  mint::tasks::EraseOptions erase;
  mint::tasks::MixOptions mix;
  Args() {
    epochs = 12, batch = 128, lr = 2e-3f, wd = 0.05f, warmup = 1.0f, min_lr = 1e-5f;
    name = "fmnist_vit";
  }
};

void add_options(mint::cli::Command& c, Args& a) {
  mint::examples::add_training_options(c, a, {"peak AdamW learning rate", "weight decay", "images per step", 1});
  c.number("--patch", a.patch, "patch size (divides the 28-pixel image: 1, 2, 4, 7, 14 or 28)", 1, 28);
  c.number("--dim", a.dim, "width", 1, 4096);
  c.number("--depth", a.depth, "blocks", 1, 64);
  c.number("--heads", a.heads, "attention heads (divides --dim)", 1, 256);
  c.number("--mlp", a.mlp, "MLP hidden width", 1, 16384);
  c.numbers("--classes", a.classes, "train on these classes only (comma-separated; default all)", 0, 9);
  c.number("--erase", a.erase.prob, "random-erasing probability per image (DeiT: 0.25)", 0, 1);
  c.number("--mixup", a.mix.mixup_alpha, "mixup Beta alpha, 0 = off (DeiT: 0.8)", 0, 100);
  c.number("--cutmix", a.mix.cutmix_alpha, "cutmix Beta alpha, 0 = off (DeiT: 1.0)", 0, 100);
  c.number("--mix-prob", a.mix.mix_prob, "probability that a batch is mixed (DeiT: 1)", 0, 1);
  c.number("--switch-prob", a.mix.switch_prob, "probability of cutmix rather than mixup when both are on", 0, 1);
  c.number("--smoothing", a.mix.smoothing, "label smoothing (DeiT: 0.1)", 0, 0.999);
}

void validate(const Args& a) {
  mint::examples::validate_training(a);
  mint::check(a.dim % a.heads == 0, "--heads ", a.heads, " must divide --dim ", a.dim);
  mint::check(28 % a.patch == 0, "--patch ", a.patch, " must divide the 28-pixel Fashion-MNIST image");
  mint::tasks::check_options(a.erase);
  mint::tasks::check_options(a.mix);
}

// Copies images idx[0..b) of raw [N, 1, H, W] pixels in [0, 1] into a normalised batch; with augmentation,
// image j is flipped horizontally with probability 1/2 and shifted by (dy, dx) in [-shift, shift]^2, the
// uncovered border being raw 0 (black, the Fashion-MNIST background) before normalisation.
void make_batch(const mint::Tensor<>& raw, const std::int32_t* idx, std::int64_t b, mint::Tensor<>& out, bool flip,
                int shift, std::uint64_t seed, std::uint32_t stream, std::uint64_t first) {
  const std::int64_t h = raw.dim(2), w = raw.dim(3), per = h * w;
  const float bg = (0.0f - kMean) / kStd;
  mint::cpu::parallel_for(b, [&](std::int64_t j) {
    const float* src = raw.data() + static_cast<std::int64_t>(idx[j]) * per;
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
        dst[y * w + x] = (sy < 0 || sy >= h || sx < 0 || sx >= w) ? bg : (src[sy * w + sx] - kMean) / kStd;
      }
  }, 8);
}

// Keeps the images whose label is in `classes` (all when empty), in their original order.
mint::io::ImageDataset only_classes(const mint::io::ImageDataset& ds, const std::vector<int>& classes) {
  if (classes.empty()) return ds;
  std::vector<std::int64_t> keep;
  for (std::size_t i = 0; i < ds.labels.size(); ++i)
    if (std::find(classes.begin(), classes.end(), ds.labels[i]) != classes.end()) keep.push_back(static_cast<std::int64_t>(i));
  mint::check(!keep.empty(), "--classes: no image of these classes in the data");
  const std::int64_t per = ds.images.numel() / ds.images.dim(0);
  mint::io::ImageDataset out{mint::Tensor<>::empty(mint::Shape{static_cast<std::int64_t>(keep.size()), ds.images.dim(1),
                                                               ds.images.dim(2), ds.images.dim(3)}),
                             {}};
  for (std::size_t j = 0; j < keep.size(); ++j) {
    std::copy(ds.images.data() + keep[j] * per, ds.images.data() + (keep[j] + 1) * per,
              out.images.data() + static_cast<std::int64_t>(j) * per);
    out.labels.push_back(ds.labels[static_cast<std::size_t>(keep[j])]);
  }
  return out;
}

int argmax_row(const mint::Tensor<>& z, std::int64_t i) {
  const std::int64_t c = z.dim(1);
  const float* r = z.data() + i * c;
  return static_cast<int>(std::max_element(r, r + c) - r);
}

// Test accuracy (fraction) of `model` on raw images with the recipe's normalisation.
double evaluate(mint::ViT<>& model, const mint::io::ImageDataset& ds) {
  const std::int64_t n = ds.images.dim(0), eb = 500;
  std::vector<std::int32_t> idx(static_cast<std::size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  std::int64_t correct = 0;
  for (std::int64_t s = 0; s < n; s += eb) {
    const std::int64_t b = std::min(eb, n - s);
    auto xb = mint::Tensor<>::empty(mint::Shape{b, 1, ds.images.dim(2), ds.images.dim(3)});
    make_batch(ds.images, idx.data() + s, b, xb, false, 0, 0, 0, 0);
    auto logits = model.forward(xb);
    for (std::int64_t i = 0; i < b; ++i) correct += argmax_row(logits, i) == ds.labels[static_cast<std::size_t>(s + i)];
  }
  return static_cast<double>(correct) / static_cast<double>(n);
}

int run(const mint::cli::Command& cmd, const Args& a) {
  validate(a);
  std::filesystem::create_directories(a.out);
  mint::cli::check_writable_file(a.out + "/" + a.name + ".safetensors", "--out");
  using clock = std::chrono::steady_clock;
  if (a.threads > 0) mint::cpu::set_num_threads(a.threads);
  const auto t_start = clock::now();
  const std::string started = now_utc();
  const std::vector<int>& classes = a.classes;
  std::string class_list = classes.empty() ? "all" : "";  // as typed: "0,1,2,3,4"
  for (int k : classes) class_list += (class_list.empty() ? "" : ",") + std::to_string(k);
  auto train = only_classes(mint::io::load_mnist_like(a.data + "/train-images-idx3-ubyte.gz",
                                                      a.data + "/train-labels-idx1-ubyte.gz", a.train_limit),
                            classes);
  auto test = only_classes(mint::io::load_mnist_like(a.data + "/t10k-images-idx3-ubyte.gz",
                                                     a.data + "/t10k-labels-idx1-ubyte.gz", a.test_limit),
                           classes);
  const std::int64_t n = train.images.dim(0), img = train.images.dim(2);

  mint::ViTConfig cfg;
  cfg.img_size = static_cast<int>(img), cfg.patch = a.patch, cfg.in_chans = 1, cfg.dim = a.dim, cfg.depth = a.depth;
  cfg.heads = a.heads, cfg.mlp_hidden = a.mlp, cfg.classes = 10;
  mint::ViT<> model(cfg);
  mint::init_timm_like(model, a.seed);
  std::int64_t n_params = 0;
  for (const auto& [k, p] : model.parameters()) n_params += p.value.numel();

  const mint::optim::AdamOptions aopt{.lr = a.lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = a.wd};
  mint::optim::AdamW<> opt(aopt, mint::optim::timm_decays);
  const std::int64_t steps_per_epoch = (n + a.batch - 1) / a.batch, total = steps_per_epoch * a.epochs;
  const std::int64_t warmup = std::min<std::int64_t>(total, std::llround(a.warmup * static_cast<double>(steps_per_epoch)));
  auto lr_at = [&](std::int64_t s) {  // s = 0-based step
    if (s < warmup) return a.lr * static_cast<float>(s + 1) / static_cast<float>(warmup);
    const double frac = total > warmup ? static_cast<double>(s - warmup) / static_cast<double>(total - warmup) : 1.0;
    return static_cast<float>(a.min_lr + 0.5 * (a.lr - a.min_lr) * (1.0 + std::cos(M_PI * frac)));
  };

  std::printf("teacher  img %d, patch %d (%d patches), dim %d, depth %d, heads %d, mlp %d: %lld parameters (%.1f KB F32)\n",
              cfg.img_size, cfg.patch, cfg.num_patches(), cfg.dim, cfg.depth, cfg.heads, cfg.mlp_hidden,
              static_cast<long long>(n_params), n_params * 4 / 1024.0);
  std::printf("data     %s: %lld train, %lld test images; normalise (x - %.4f) / %.4f\n", a.data.c_str(),
              static_cast<long long>(n), static_cast<long long>(test.images.dim(0)), kMean, kStd);
  std::printf("recipe   AdamW lr %g (cosine to %g, %lld warmup steps), wd %g (GEMM weights only), batch %d, %d epochs "
              "(%lld steps), flip %d, shift %d px, erase %g, mixup %g, cutmix %g (p %g, switch %g), smoothing %g, "
              "seed %llu, %d threads\n",
              a.lr, a.min_lr, static_cast<long long>(warmup), a.wd, a.batch, a.epochs, static_cast<long long>(total),
              a.flip, a.shift, a.erase.prob, a.mix.mixup_alpha, a.mix.cutmix_alpha, a.mix.mix_prob, a.mix.switch_prob,
              a.mix.smoothing, static_cast<unsigned long long>(a.seed), mint::cpu::num_threads());
  std::fflush(stdout);

  const std::string st_path = a.out + "/" + a.name + ".safetensors", json_path = a.out + "/" + a.name + ".json";
  nlohmann::json history = nlohmann::json::array();
  double best_acc = -1.0, train_seconds = 0.0;
  int best_epoch = 0;
  std::int64_t step = 0;
  auto xb = mint::Tensor<>::empty(mint::Shape{a.batch, 1, img, img});

  auto recipe = [&](bool complete, int epochs_done) {
    const double wall = std::chrono::duration<double>(clock::now() - t_start).count();
    return nlohmann::json{
        {"status", complete ? "complete" : "training"},
        {"epochs_done", epochs_done},
        {"command", cmd.command_line()},
        {"model", {{"file", a.name + ".safetensors"}, {"architecture", "timm VisionTransformer (class token, pre-norm, "
                                                                       "exact GELU, LayerNorm eps 1e-6, no fc_norm)"},
                   {"img_size", cfg.img_size}, {"patch", cfg.patch}, {"num_patches", cfg.num_patches()},
                   {"in_chans", cfg.in_chans}, {"dim", cfg.dim}, {"depth", cfg.depth}, {"heads", cfg.heads},
                   {"mlp_hidden", cfg.mlp_hidden}, {"classes", cfg.classes}, {"parameters", n_params},
                   {"bytes_f32", n_params * 4}}},
        {"data", {{"dataset", "Fashion-MNIST"}, {"dir", a.data}, {"train_images", n},
                  {"test_images", test.images.dim(0)},
                  {"classes", class_list}}},
        {"normalization", {{"mean", dec(kMean)}, {"std", dec(kStd)}, {"formula", "(x / 255 - mean) / std"}}},
        {"init", {{"seed", a.seed}, {"rng", "Philox4x32-10, parameter p (sorted names) on stream p"},
                  {"linear_weights_cls_pos", "normal(0, 0.02)"}, {"patch_embed", "uniform(+-1/sqrt(fan_in))"},
                  {"biases", 0}, {"norm_weights", 1}}},
        {"optimizer", {{"name", "AdamW (torch.optim.AdamW semantics, mint::optim::AdamW)"}, {"lr", dec(a.lr)},
                       {"betas", {0.9, 0.999}}, {"eps", 1e-8}, {"weight_decay", dec(a.wd)},
                       {"no_weight_decay", "rank <= 1 tensors, *.bias, cls_token, pos_embed (optim::timm_decays)"}}},
        {"schedule", {{"kind", "per-step linear warmup then cosine"}, {"warmup_steps", warmup},
                      {"total_steps", total}, {"min_lr", dec(a.min_lr)}}},
        {"batch", a.batch},
        {"epochs", a.epochs},
        {"shuffle", "Philox Fisher-Yates permutation per epoch (stream 2^20 + epoch); last batch kept"},
        {"augmentation", {{"hflip", a.flip}, {"max_shift_px", a.shift}, {"padding", "raw 0 (background)"},
                          {"random_erasing", {{"prob", dec(a.erase.prob)}, {"area", {dec(a.erase.min_area),
                                               dec(a.erase.max_area)}}, {"min_aspect", dec(a.erase.min_aspect)},
                                               {"fill", "N(0, 1) per pixel (normalised space)"}}},
                          {"mixup_alpha", dec(a.mix.mixup_alpha)}, {"cutmix_alpha", dec(a.mix.cutmix_alpha)},
                          {"mix_prob", dec(a.mix.mix_prob)}, {"switch_prob", dec(a.mix.switch_prob)},
                          {"mix_pairs", "image i with image B-1-i, one lam per batch (timm mode 'batch')"}}},
        {"loss", "soft-target cross-entropy (mean over the batch)"}, {"label_smoothing", dec(a.mix.smoothing)},
        {"test_accuracy", best_acc},
        {"test_accuracy_pct", 100.0 * best_acc},
        {"selected_epoch", best_epoch},
        {"selection", "the epoch with the best test accuracy (test set = the only held-out data)"},
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
    std::int64_t correct = 0;
    for (std::int64_t s = 0; s < n; s += a.batch, ++step) {
      const std::int64_t b = std::min<std::int64_t>(a.batch, n - s);
      if (b != xb.dim(0)) xb = mint::Tensor<>::empty(mint::Shape{b, 1, img, img});
      make_batch(train.images, perm.data() + s, b, xb, a.flip, a.shift, a.seed,
                 kAugStream + static_cast<std::uint32_t>(epoch), static_cast<std::uint64_t>(s));
      std::vector<int> labels(static_cast<std::size_t>(b));
      for (std::int64_t i = 0; i < b; ++i)
        labels[static_cast<std::size_t>(i)] = train.labels[static_cast<std::size_t>(perm[static_cast<std::size_t>(s + i)])];
      const auto ep = static_cast<std::uint32_t>(epoch);
      mint::tasks::random_erase(xb, a.erase, a.seed, kEraseStream + 2 * ep, static_cast<std::uint64_t>(s));
      const auto targets = mint::tasks::mix_batch(xb, labels, 10, a.mix, a.seed, kMixStream + ep,
                                                  static_cast<std::uint64_t>(s));
      model.zero_grad();
      auto logits = model.forward(xb);
      auto dlogits = mint::Tensor<>::zeros(logits.shape());
      // With no smoothing and no mixing the targets are one-hot and this is cross_entropy exactly.
      const float loss = mint::nn::soft_cross_entropy(logits, targets, &dlogits);
      mint::check(std::isfinite(loss), "loss is ", loss, " at step ", step, " (epoch ", epoch,
                  "); lower --lr");
      model.backward(dlogits, mint::Backward::Full);
      opt.set_lr(lr_at(step));
      opt.step(model.parameters());
      loss_sum += static_cast<double>(loss) * static_cast<double>(b);
      for (std::int64_t i = 0; i < b; ++i) correct += argmax_row(logits, i) == labels[static_cast<std::size_t>(i)];
    }
    const auto t1 = clock::now();
    const double acc = evaluate(model, test);
    const auto t2 = clock::now();
    const double secs = std::chrono::duration<double>(t1 - t0).count();
    const double eval_s = std::chrono::duration<double>(t2 - t1).count();
    train_seconds += secs;
    const double train_loss = loss_sum / static_cast<double>(n);
    const double train_acc = static_cast<double>(correct) / static_cast<double>(n);
    const bool better = acc > best_acc;
    if (better) best_acc = acc, best_epoch = epoch;
    history.push_back({{"epoch", epoch}, {"train_loss", train_loss}, {"train_accuracy", train_acc},
                       {"test_accuracy", acc}, {"lr_end", opt.lr()}, {"train_seconds", secs},
                       {"eval_seconds", eval_s}, {"train_images_per_s", static_cast<double>(n) / secs}});
    std::printf("epoch %3d/%d  train loss %.4f  train acc %6.2f%%  test acc %6.2f%%%s  lr %.2e  %6.1f img/s  "
                "(%.0f s train, %.1f s eval, %.0f s total)\n",
                epoch, a.epochs, train_loss, 100.0 * train_acc, 100.0 * acc, better ? " *" : "  ", opt.lr(),
                static_cast<double>(n) / secs, secs, eval_s, std::chrono::duration<double>(t2 - t_start).count());
    if (better) {
      const std::map<std::string, std::string> meta{
          {"mint.dataset", "fashion-mnist"},
          {"mint.test_accuracy", std::to_string(best_acc)},
          {"mint.epoch", std::to_string(epoch)},
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
  mint::cli::Command cmd("mint-train-teacher",
                         "Trains the embedded Fashion-MNIST ViT teacher (recipe: the file comment).");
  add_options(cmd, a);
  return mint::cli::main(cmd, argc, argv, [&] { return run(cmd, a); });
}
