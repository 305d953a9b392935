// mint/nn/linear.hpp -- y = x W^T + b (torch.nn.Linear layout).
#pragma once

#include "mint/backend/cpu/gemm.hpp"
#include "mint/backend/cpu/parallel.hpp"
#include "mint/core/tensor.hpp"

namespace mint::nn {

// requires: x [..., K] (any leading dims, flattened to M rows), w [N, K], b [N] or nullptr.
// ensures:  returns y [..., N].
inline Tensor<Cpu> linear(const Tensor<Cpu>& x, const Tensor<Cpu>& w, const Tensor<Cpu>* b) {
  check_rank(w, 2, "linear: weight");
  const std::int64_t k = w.dim(1), n = w.dim(0);
  check(x.rank() >= 1 && x.dim(-1) == k, "linear: input shape ", x.shape().str(), " does not end in ", k,
        " (weight shape ", w.shape().str(), ")");
  if (b) check_shape(*b, Shape{n}, "linear: bias");
  const std::int64_t m = x.numel() / k;
  Shape out = x.shape();
  out[out.rank() - 1] = n;
  auto y = Tensor<Cpu>::empty(out);
  if (b) {
    float* yp = y.data();
    const float* bp = b->data();
    cpu::parallel_for(m, [&](std::int64_t i) {
      for (std::int64_t j = 0; j < n; ++j) yp[i * n + j] = bp[j];
    }, 64);
  }
  cpu::gemm(false, true, m, n, k, 1.0f, x.data(), k, w.data(), k, b ? 1.0f : 0.0f, y.data(), n);
  return y;
}

// backward of <y, dy>: dx += dy W (dx = dy W with GradInto::Overwrite), dw += dy^T x, db += sum_rows dy. A nullptr
// gradient is not computed (InputOnly mode passes nullptr for dw and db, so no weight-gradient GEMM runs).
inline void linear_backward(const Tensor<Cpu>& dy, const Tensor<Cpu>& x, const Tensor<Cpu>& w, Tensor<Cpu>* dx,
                            Tensor<Cpu>* dw, Tensor<Cpu>* db, GradInto into = GradInto::Add) {
  const std::int64_t k = w.dim(1), n = w.dim(0), m = x.numel() / k;
  check(dy.numel() == m * n && dy.dim(-1) == n, "linear_backward: d_output shape ", dy.shape().str(),
        " does not match input ", x.shape().str(), " and weight ", w.shape().str());
  if (dx) {
    check_shape(*dx, x.shape(), "linear_backward: d_input");
    cpu::gemm(false, false, m, k, n, 1.0f, dy.data(), n, w.data(), k, into == GradInto::Add ? 1.0f : 0.0f,
               dx->data(), k);
  }
  if (dw) {
    check_shape(*dw, w.shape(), "linear_backward: d_weight");
    cpu::gemm(true, false, n, k, m, 1.0f, dy.data(), n, x.data(), k, 1.0f, dw->data(), k);
  }
  if (db) {
    check_shape(*db, Shape{n}, "linear_backward: d_bias");
    using Row = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    Eigen::Map<const Row> dym(dy.data(), m, n);
    Eigen::Map<Eigen::RowVectorXf> dbm(db->data(), n);
    dbm += dym.colwise().sum();
  }
}

}  // namespace mint::nn
