// mint-inspect: load a timm ViT checkpoint, run it on real Fashion-MNIST test images densely and on the
// top-K patches ranked by the last block's head-averaged CLS attention (SMI's semantic patch identification),
// and report accuracy, dense-vs-sparse agreement and speed; write a PNG grid with the pruned patches black
// and a JSON report. The default model is the embedded Fashion-MNIST teacher models/fmnist_vit.safetensors
// (trained by mint-train-teacher; its recipe and test accuracy are in models/fmnist_vit.json).
//
//   mint-inspect [--model PATH] [--heads H | --arch NAME] [--data DIR] [--count N] [--keep K] [--batch B]
//                [--mean M] [--std S] [--out DIR]       (`mint-inspect --help` says what each is)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <string>

#include <nlohmann/json.hpp>

#include <mint/mint.hpp>

#include "cli.hpp"

namespace {

struct Args {
  std::string model = MINT_DEFAULT_MODEL;
  std::string data = "/usr/share/datasets/fashion-mnist";
  std::string out = "out/inspect";
  std::string arch;
  int heads = 0, keep = 0;
  std::int64_t count = 1000, batch = 125;
  float mean = 0.2860f, std = 0.3530f;  // Fashion-MNIST training-set pixel statistics
};

void add_options(mint::cli::Command& c, Args& a) {
  c.existing("--model", a.model, "timm ViT safetensors");
  c.number("--heads", a.heads, "attention heads (0: from the file or the architecture table)", 0, 4096);
  c.text("--arch", a.arch, "architecture name from the known-architecture table (instead of --heads)");
  c.existing("--data", a.data, "Fashion-MNIST idx.gz folder");
  c.number("--count", a.count, "test images to classify", 1, 10'000'000);
  c.number("--keep", a.keep, "patches kept in the sparse pass (0: SMI's final 46/196 share)", 0, 1 << 20);
  c.number("--batch", a.batch, "images per forward", 1, 65536);
  c.number("--mean", a.mean, "normalisation mean", -1e3, 1e3);
  c.number("--std", a.std, "normalisation std", 1e-6, 1e3);
  c.text("--out", a.out, "output folder (replaced as a whole by each run)");
}

// Indices of the k largest values of row b of attn [B, N], largest first.
std::vector<std::int32_t> top_k(const mint::Tensor<>& attn, std::int64_t b, std::int64_t k) {
  const std::int64_t n = attn.dim(1);
  std::vector<std::int32_t> idx(static_cast<std::size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](int i, int j) { return attn[b * n + i] > attn[b * n + j]; });
  idx.resize(static_cast<std::size_t>(k));
  return idx;
}

int run(const Args& a) {
  using clock = std::chrono::steady_clock;
  mint::check(a.heads == 0 || a.arch.empty(), "--heads and --arch both give the head count: pass one");
  // writable and replaceable: checked before the work
  mint::io::AtomicFolder out(a.out, {"sparse_view.png", "images.png", "report.json"});
  mint::ViTLoadOptions opt;
  if (a.heads) opt.heads = a.heads;
  opt.arch = a.arch;
  auto model = mint::ViT<>::load(a.model, opt);
  const auto& cfg = model.config();
  std::printf("model  %s\n       img %d, patch %d, chans %d, dim %d, depth %d, heads %d, classes %d%s\n", a.model.c_str(),
              cfg.img_size, cfg.patch, cfg.in_chans, cfg.dim, cfg.depth, cfg.heads, cfg.classes,
              cfg.distilled ? ", distilled" : "");
  auto ds = mint::io::load_mnist_like(a.data + "/t10k-images-idx3-ubyte.gz", a.data + "/t10k-labels-idx1-ubyte.gz", a.count);
  mint::check(ds.images.dim(0) > 0, "--data: '", a.data, "/t10k-images-idx3-ubyte.gz' holds no images");
  mint::check(cfg.in_chans == 1 && cfg.img_size == ds.images.dim(2),
              "--data: the images are ", ds.images.dim(2), "x", ds.images.dim(3),
              " one-channel images but the model expects ", cfg.in_chans, "x", cfg.img_size, "x", cfg.img_size);
  const std::int64_t n = ds.images.dim(0), np = cfg.num_patches();
  mint::check(a.keep <= np, "--keep ", a.keep, " exceeds the model's ", np, " patches");
  const std::int64_t k = a.keep > 0 ? a.keep : std::max<std::int64_t>(1, np * 46 / 196);
  std::printf("data   %s: %lld test images; sparse pass keeps %lld of %lld patches (SMI's final 46/196 ratio by default)\n",
              a.data.c_str(), static_cast<long long>(n), static_cast<long long>(k), static_cast<long long>(np));

  auto x = ds.images.clone();
  for (std::int64_t i = 0; i < x.numel(); ++i) x[i] = (x[i] - a.mean) / a.std;

  std::int64_t correct_dense = 0, correct_sparse = 0, agree = 0;
  double t_dense = 0, t_sparse = 0;
  mint::Tensor<> grid_images, grid_mask;
  const std::int64_t per = x.numel() / n;
  for (std::int64_t s = 0; s < n; s += a.batch) {
    const std::int64_t b = std::min<std::int64_t>(a.batch, n - s);
    auto xb = mint::Tensor<>::empty(mint::Shape{b, 1, cfg.img_size, cfg.img_size});
    std::copy(x.data() + s * per, x.data() + (s + b) * per, xb.data());
    auto t0 = clock::now();
    auto dense = model.forward(xb);
    auto attn = model.last_cls_attention().clone();
    auto t1 = clock::now();
    mint::nn::TokenIndex keep{b, k, {}};
    for (std::int64_t i = 0; i < b; ++i)
      for (auto p : top_k(attn, i, k)) keep.index.push_back(p);
    auto sparse = model.forward(xb, &keep);
    auto t2 = clock::now();
    t_dense += std::chrono::duration<double>(t1 - t0).count();
    t_sparse += std::chrono::duration<double>(t2 - t1).count();
    for (std::int64_t i = 0; i < b; ++i) {
      auto argmax = [&](const mint::Tensor<>& z) {
        const float* r = z.data() + i * cfg.classes;
        return static_cast<int>(std::max_element(r, r + cfg.classes) - r);
      };
      const int yd = argmax(dense), ys = argmax(sparse), y = ds.labels[static_cast<std::size_t>(s + i)];
      correct_dense += yd == y, correct_sparse += ys == y, agree += yd == ys;
    }
    if (s == 0) {  // the first 32 images for the grid
      const std::int64_t g = std::min<std::int64_t>(32, b);
      grid_images = mint::Tensor<>::empty(mint::Shape{g, 1, cfg.img_size, cfg.img_size});
      std::copy(ds.images.data(), ds.images.data() + g * per, grid_images.data());
      grid_mask = mint::Tensor<>::zeros(mint::Shape{g, np});
      for (std::int64_t i = 0; i < g; ++i)
        for (std::int64_t j = 0; j < k; ++j) grid_mask[i * np + keep.at(i, j)] = 1.f;
    }
  }
  const std::string png = a.out + "/sparse_view.png";
  mint::cli::write_png(out.path("sparse_view.png"), mint::io::image_grid(grid_images, 8, 2, &grid_mask, cfg.patch));
  mint::cli::write_png(out.path("images.png"), mint::io::image_grid(grid_images, 8, 2));
  const double acc_d = 100.0 * correct_dense / n, acc_s = 100.0 * correct_sparse / n, agr = 100.0 * agree / n;
  std::printf("\n%-28s %10s %10s\n", "", "dense", "top-K");
  std::printf("%-28s %10lld %10lld\n", "tokens per image", static_cast<long long>(np + cfg.extra_tokens()),
              static_cast<long long>(k + cfg.extra_tokens()));
  std::printf("%-28s %9.2f%% %9.2f%%\n", "test accuracy", acc_d, acc_s);
  std::printf("%-28s %10s %9.2f%%\n", "agreement with dense", "", agr);
  std::printf("%-28s %10.1f %10.1f\n", "images/s (forward)", n / t_dense, n / t_sparse);
  nlohmann::json rep = {{"command", "mint-inspect"}, {"model", a.model}, {"data", a.data}, {"images", n},
                        {"patches", np}, {"kept_patches", k}, {"accuracy_dense_pct", acc_d},
                        {"accuracy_topk_pct", acc_s}, {"agreement_pct", agr}, {"images_per_s_dense", n / t_dense},
                        {"images_per_s_topk", n / t_sparse}, {"threads", mint::cpu::num_threads()},
                        {"config", {{"img", cfg.img_size}, {"patch", cfg.patch}, {"dim", cfg.dim}, {"depth", cfg.depth},
                                    {"heads", cfg.heads}, {"classes", cfg.classes}}}};
  mint::cli::write_json(out.path("report.json"), rep);
  out.commit();
  std::printf("\nwrote %s (first 32 test images, pruned patches black), %s/images.png (the same, whole) and "
              "%s/report.json\n", png.c_str(), a.out.c_str(), a.out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  mint::cli::Command cmd("mint-inspect", "Classifies Fashion-MNIST test images densely and on the top-K patches.");
  add_options(cmd, a);
  return mint::cli::main(cmd, argc, argv, [&] { return run(a); });
}
