// mint/nn/losses.hpp -- classification losses on logits, and the squared error. Each returns the loss value and,
// when asked, ADDS scale * d loss / d input into a gradient tensor (scale lets a caller weight a term without
// another pass).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "mint/backend/functors_plain.hpp"
#include "mint/core/tensor.hpp"

namespace mint::nn {

namespace detail {
// log-softmax of one row of `n` logits divided by `temperature`, into out (double for accuracy).
inline void log_softmax_row(const float* z, std::int64_t n, double temperature, double* out) {
  double mx = z[0] / temperature;
  for (std::int64_t j = 1; j < n; ++j) mx = std::max(mx, z[j] / temperature);
  double s = 0.0;
  for (std::int64_t j = 0; j < n; ++j) s += std::exp(z[j] / temperature - mx);
  const double lse = mx + std::log(s);
  for (std::int64_t j = 0; j < n; ++j) out[j] = z[j] / temperature - lse;
}

// kl_div_temperature's checks (a template: the CUDA op, mint/backend/cuda/losses.cuh, runs them too).
template <class D>
void kl_div_check(const Tensor<D>& student, const Tensor<D>& teacher, float tau, const Tensor<D>* dstudent) {
  check_rank(student, 2, "kl_div: student logits");
  check_shape(teacher, student.shape(), "kl_div: teacher logits");
  check(tau > 0.0f, "kl_div: temperature must be positive, got ", tau);
  if (dstudent) check_shape(*dstudent, student.shape(), "kl_div: d_student");
}

// cross_entropy's checks, labels included (a template: the CUDA op runs them on the host too).
template <class D>
void cross_entropy_check(const Tensor<D>& logits, const std::vector<int>& labels, const Tensor<D>* dlogits) {
  check_rank(logits, 2, "cross_entropy: logits");
  const std::int64_t b = logits.dim(0), c = logits.dim(1);
  check(static_cast<std::int64_t>(labels.size()) == b, "cross_entropy: ", labels.size(), " labels for logits ",
        logits.shape().str());
  if (dlogits) check_shape(*dlogits, logits.shape(), "cross_entropy: d_logits");
  for (std::int64_t i = 0; i < b; ++i) {
    const int y = labels[static_cast<std::size_t>(i)];
    check(y >= 0 && y < c, "cross_entropy: label ", y, " of image ", i, " outside 0..", c - 1);
  }
}
}  // namespace detail

// Cross-entropy, mean over the batch (torch.nn.functional.cross_entropy's default).
// requires: logits [B, C], labels.size() == B, each label in [0, C).
// ensures:  returns mean_b -log softmax(logits_b)[label_b]; dlogits (if given) += scale * (softmax - onehot) / B.
inline float cross_entropy(const Tensor<Cpu>& logits, const std::vector<int>& labels, Tensor<Cpu>* dlogits = nullptr,
                           float scale = 1.0f) {
  detail::cross_entropy_check(logits, labels, dlogits);
  const std::int64_t b = logits.dim(0), c = logits.dim(1);
  std::vector<double> ls(static_cast<std::size_t>(c));
  double total = 0.0;
  for (std::int64_t i = 0; i < b; ++i) {
    const int y = labels[static_cast<std::size_t>(i)];
    detail::log_softmax_row(logits.data() + i * c, c, 1.0, ls.data());
    total -= ls[static_cast<std::size_t>(y)];
    if (dlogits)
      for (std::int64_t j = 0; j < c; ++j)
        (*dlogits)[i * c + j] += static_cast<float>(scale * (std::exp(ls[static_cast<std::size_t>(j)]) - (j == y)) / b);
  }
  return static_cast<float>(total / static_cast<double>(b));
}

// Cross-entropy against soft targets (label smoothing, mixup, cutmix: timm's SoftTargetCrossEntropy), mean over
// the batch. With one-hot targets it equals cross_entropy.
// requires: logits [B, C]; targets [B, C], finite, >= 0, each row summing to 1 (within 1e-4).
// ensures:  returns mean_b -sum_c t_bc log softmax(logits_b)_c; dlogits (if given) += scale * (softmax - t) / B.
inline float soft_cross_entropy(const Tensor<Cpu>& logits, const Tensor<Cpu>& targets, Tensor<Cpu>* dlogits = nullptr,
                                float scale = 1.0f) {
  check_rank(logits, 2, "soft_cross_entropy: logits");
  check_shape(targets, logits.shape(), "soft_cross_entropy: targets");
  if (dlogits) check_shape(*dlogits, logits.shape(), "soft_cross_entropy: d_logits");
  const std::int64_t b = logits.dim(0), c = logits.dim(1);
  for (std::int64_t i = 0; i < b; ++i) {
    double sum = 0.0;
    for (std::int64_t j = 0; j < c; ++j) {
      const float t = targets[i * c + j];
      check(std::isfinite(t) && t >= 0.0f, "soft_cross_entropy: target ", t, " of image ", i, ", class ", j,
            " is not a probability");
      sum += t;
    }
    check(std::abs(sum - 1.0) <= 1e-4, "soft_cross_entropy: the targets of image ", i, " sum to ", sum, ", not 1");
  }
  std::vector<double> ls(static_cast<std::size_t>(c));
  double total = 0.0;
  for (std::int64_t i = 0; i < b; ++i) {
    detail::log_softmax_row(logits.data() + i * c, c, 1.0, ls.data());
    for (std::int64_t j = 0; j < c; ++j) {
      const double t = targets[i * c + j];
      total -= t * ls[static_cast<std::size_t>(j)];
      if (dlogits)
        (*dlogits)[i * c + j] += static_cast<float>(scale * (std::exp(ls[static_cast<std::size_t>(j)]) - t) / b);
    }
  }
  return static_cast<float>(total / static_cast<double>(b));
}

// Knowledge-distillation KL divergence with temperature tau (Hinton et al.; SMI Eq. 6):
//   KL = tau^2 / B * sum_b sum_c p_t log(p_t / p_s),  p = softmax(logits / tau),
// i.e. torch's kl_div(log_softmax(s/tau), softmax(t/tau), reduction="batchmean") * tau^2. The tau^2 keeps
// gradient magnitudes comparable across temperatures. Teacher logits are constants (no gradient).
// ensures: dstudent (if given) += scale * tau / B * (p_s - p_t).
inline float kl_div_temperature(const Tensor<Cpu>& student, const Tensor<Cpu>& teacher, float tau,
                                Tensor<Cpu>* dstudent = nullptr, float scale = 1.0f) {
  detail::kl_div_check(student, teacher, tau, dstudent);
  const std::int64_t b = student.dim(0), c = student.dim(1);
  std::vector<double> ls(static_cast<std::size_t>(c)), lt(static_cast<std::size_t>(c));
  double total = 0.0;
  for (std::int64_t i = 0; i < b; ++i) {
    detail::log_softmax_row(student.data() + i * c, c, tau, ls.data());
    detail::log_softmax_row(teacher.data() + i * c, c, tau, lt.data());
    for (std::int64_t j = 0; j < c; ++j) {
      const auto u = static_cast<std::size_t>(j);
      total += fn::KlDivTerm{}.value(lt[u], ls[u]);
      if (dstudent) (*dstudent)[i * c + j] += static_cast<float>(scale * tau * fn::KlDivTerm{}.grad(lt[u], ls[u]) / b);
    }
  }
  return static_cast<float>(total * tau * tau / static_cast<double>(b));
}

// Squared error: weight * sum_i (a_i - b_i)^2, summed in double (weight = 1 / numel gives the mean).
// requires: a, b of the same shape; da (if given) of that shape.
// ensures:  da += scale * 2 * weight * (a - b).
inline double squared_error(const Tensor<Cpu>& a, const Tensor<Cpu>& b, double weight, Tensor<Cpu>* da = nullptr,
                            double scale = 1.0) {
  check_shape(b, a.shape(), "squared_error: b");
  if (da) check_shape(*da, a.shape(), "squared_error: d_a");
  double s = 0.0;
  const double g = 2.0 * weight * scale;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    s += d * d;
    if (da) (*da)[i] += static_cast<float>(g * d);
  }
  return weight * s;
}

}  // namespace mint::nn
