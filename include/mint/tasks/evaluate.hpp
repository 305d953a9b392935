// mint/tasks/evaluate.hpp -- labelled real images in a model's normalised input space, and top-1 accuracy
// (optionally restricted to a subset of classes), for distillation and quantization.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "mint/core/tensor.hpp"
#include "mint/io/idx.hpp"

namespace mint::tasks {

// Fashion-MNIST training-set pixel statistics (the embedded teacher's normalisation, models/fmnist_vit.json).
inline constexpr float kFashionMnistMean = 0.2860f, kFashionMnistStd = 0.3530f;

struct LabeledImages {
  Tensor<Cpu> images;       // [M, C, H, W], normalised: (x - mean) / std with x in [0, 1]
  std::vector<int> labels;  // M class ids
  [[nodiscard]] std::int64_t size() const { return images.defined() ? images.dim(0) : 0; }
};

// Loads an MNIST-style idx pair (io::load_mnist_like; `limit` as there) and normalises it.
inline LabeledImages load_normalized(const std::string& images_path, const std::string& labels_path, float mean,
                                     float std, std::int64_t limit = -1) {
  check(std > 0.0f, "load_normalized: std must be > 0, got ", std);
  auto ds = io::load_mnist_like(images_path, labels_path, limit);
  float* p = ds.images.data();
  for (std::int64_t i = 0; i < ds.images.numel(); ++i) p[i] = (p[i] - mean) / std;
  return {ds.images, std::move(ds.labels)};
}

// The Fashion-MNIST train or test split from `dir` (the idx.gz files), normalised as the embedded teacher.
inline LabeledImages load_fashion_mnist(const std::string& dir, bool train, std::int64_t limit = -1) {
  const std::string pre = dir + (train ? "/train" : "/t10k");
  return load_normalized(pre + "-images-idx3-ubyte.gz", pre + "-labels-idx1-ubyte.gz", kFashionMnistMean,
                         kFashionMnistStd, limit);
}

struct AccuracyOptions {
  std::int64_t batch = 500;
  // Non-empty: only images whose label is one of these count. Predictions are still the argmax over all of
  // the model's classes unless within_classes is set, then the argmax over these classes only.
  std::vector<int> classes = {};
  bool within_classes = false;
};

struct Accuracy {
  std::int64_t correct = 0, total = 0;
  [[nodiscard]] double value() const { return total ? static_cast<double>(correct) / static_cast<double>(total) : 0.0; }
};

// requires: model.forward(Tensor [B, C, H, W]) -> logits [B, classes] (ViT<>, tasks::QuantizedViT, ...);
//           data labels in [0, classes).
// ensures:  top-1 accuracy on `data` as AccuracyOptions says; total = the number of images counted.
template <class Model>
Accuracy accuracy(Model& model, const LabeledImages& data, const AccuracyOptions& opt = {}) {
  check(opt.batch > 0, "accuracy: batch must be > 0, got ", opt.batch);
  check(static_cast<std::int64_t>(data.labels.size()) == data.size(), "accuracy: ", data.size(), " images but ",
        data.labels.size(), " labels");
  const auto wanted = [&](int y) {
    return opt.classes.empty() || std::find(opt.classes.begin(), opt.classes.end(), y) != opt.classes.end();
  };
  std::vector<std::int64_t> idx;
  for (std::int64_t i = 0; i < data.size(); ++i)
    if (wanted(data.labels[static_cast<std::size_t>(i)])) idx.push_back(i);
  const Shape& s = data.images.shape();
  const std::int64_t per = s.numel() / std::max<std::int64_t>(s[0], 1), n = static_cast<std::int64_t>(idx.size());
  Accuracy acc;
  for (std::int64_t b0 = 0; b0 < n; b0 += opt.batch) {
    const std::int64_t b = std::min(opt.batch, n - b0);
    auto xb = Tensor<Cpu>::empty(Shape{b, s[1], s[2], s[3]});
    for (std::int64_t j = 0; j < b; ++j) {
      const float* src = data.images.data() + idx[static_cast<std::size_t>(b0 + j)] * per;
      std::copy(src, src + per, xb.data() + j * per);
    }
    const auto logits = model.forward(xb);
    const std::int64_t c = logits.dim(1);
    for (std::int64_t j = 0; j < b; ++j) {
      const float* r = logits.data() + j * c;
      int best = -1;
      for (int k = 0; k < c; ++k)
        if ((!opt.within_classes || wanted(k)) && (best < 0 || r[k] > r[best])) best = k;
      acc.correct += best == data.labels[static_cast<std::size_t>(idx[static_cast<std::size_t>(b0 + j)])];
    }
    acc.total += b;
  }
  return acc;
}

}  // namespace mint::tasks
