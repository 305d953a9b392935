// fuzz/make_corpus.cpp -- writes the committed seed corpora of the fuzz targets, fuzz/corpus/<name>/, from
// mint's own writers (so the seeds are what mint writes and reads back): small valid files that the mutations
// start from. Run by hand after a format change: build-fuzz/mint_fuzz_corpus fuzz/corpus
//   safetensors/        tensors of several ranks and a zero-size one, with metadata; an empty header
//   vit/                a tiny ViT (img 4, patch 2, dim 4, depth 1) and its distilled form
//   resnet/             the tiny ResNet of fuzz_target.hpp
//   synthetic_dataset/  two sparse images
//   dci/                the DCI modules of the tiny ResNet
//   idx/, idx_gzip/     an idx image file raw (and gzip-compressed, for fuzz_idx), labels raw
#include <zlib.h>

#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "fuzz_target.hpp"
#include "mint/core/rng.hpp"
#include "mint/inversion/sparse_image.hpp"
#include "mint/io/atomic_file.hpp"
#include "mint/io/safetensors.hpp"
#include "mint/models/init.hpp"
#include "mint/models/vit.hpp"
#include "mint/tasks/dci.hpp"

namespace {

std::string idx_bytes(const std::vector<std::uint32_t>& dims, std::size_t count) {
  std::string out = {0, 0, 8, static_cast<char>(dims.size())};
  for (auto d : dims)
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>(d >> s));
  for (std::size_t i = 0; i < count; ++i) out.push_back(static_cast<char>(i * 37 + 5));
  return out;
}

std::string gzip(const std::string& raw) {
  std::vector<Bytef> out(compressBound(static_cast<uLong>(raw.size())) + 32);
  z_stream z{};
  deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  z.avail_in = static_cast<uInt>(raw.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  mint::check(deflate(&z, Z_FINISH) == Z_STREAM_END, "make_corpus: gzip failed");
  const std::size_t n = z.total_out;
  deflateEnd(&z);
  return std::string(reinterpret_cast<const char*>(out.data()), n);
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (argc != 2) {
    std::cerr << "usage: mint_fuzz_corpus <folder>   (writes <folder>/<target>/seed files)\n";
    return 2;
  }
  const fs::path root = argv[1];
  auto dir = [&](const char* name) {
    fs::create_directories(root / name);
    return (root / name).string() + "/";
  };
  using mint::Shape;
  using mint::Tensor;

  const std::string st = dir("safetensors");
  mint::io::save_safetensors(st + "tensors.safetensors",
                             {{"a", Tensor<>::from(Shape{2, 3}, {1, -2, 3, 0, 5, 6})},
                              {"b", Tensor<>::from(Shape{}, {7})},
                              {"e", Tensor<>::zeros(Shape{0, 4})},
                              {"s", Tensor<>::zeros(Shape{1, 1, 1, 1, 2, 2})}},
                             {{"format", "pt"}});
  mint::io::save_safetensors(st + "empty.safetensors", {});

  for (bool distilled : {false, true}) {
    mint::ViTConfig c;
    c.img_size = 4, c.patch = 2, c.in_chans = 1, c.dim = 4, c.depth = 1, c.heads = 2, c.mlp_hidden = 8, c.classes = 3;
    c.distilled = distilled;
    mint::ViT<> vit(c);
    mint::init_timm_like(vit, 1);
    vit.save(dir("vit") + (distilled ? "tiny_distilled.safetensors" : "tiny.safetensors"));
  }

  mint::ResNet<> net(mint::fuzz::tiny_resnet_config());
  mint::init_torchvision_like(net, 2);
  net.save(dir("resnet") + "tiny.safetensors");

  std::vector<mint::SparseImage> images(2);
  for (int i = 0; i < 2; ++i) {
    images[static_cast<std::size_t>(i)].pixels = Tensor<>::full(Shape{1, 4, 4}, 0.25f * static_cast<float>(i));
    images[static_cast<std::size_t>(i)].mask = Tensor<>::from(Shape{4}, {1, 0, 1, static_cast<float>(i)});
    images[static_cast<std::size_t>(i)].label = i + 1;
    images[static_cast<std::size_t>(i)].iteration = 10 * i;
  }
  mint::save_synthetic_dataset(dir("synthetic_dataset") + "two.safetensors", images, {{"method", "PRI"}});

  mint::tasks::DCI dci(net, 3);
  dci.save(dir("dci") + "tiny_modules.safetensors");

  const std::string images_idx = idx_bytes({3, 2, 2}, 12), labels_idx = idx_bytes({3}, 3);
  mint::io::write_file_atomically(dir("idx") + "images.idx", images_idx);
  mint::io::write_file_atomically(dir("idx") + "images.idx.gz", gzip(images_idx));
  mint::io::write_file_atomically(dir("idx") + "labels.idx", labels_idx);
  mint::io::write_file_atomically(dir("idx_gzip") + "images.idx", images_idx);
  mint::io::write_file_atomically(dir("idx_gzip") + "labels.idx", labels_idx);
  std::cout << "make_corpus: wrote the seeds under " << root.string() << "\n";
  return 0;
}
