// mint/testing/check.hpp -- comparison with stated tolerances and a finite-difference gradient checker that
// any new op, objective or prior can call (the dlib `test_layer` idea).
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>

#include "mint/core/rng.hpp"
#include "mint/core/tensor.hpp"

namespace mint::testing {

// |a - b| <= atol + rtol * |b| elementwise (b is the reference).
struct Tolerance {
  double atol = 1e-5;
  double rtol = 1e-4;
};

struct CloseReport {
  bool ok = true;
  double max_abs = 0.0;        // largest |a - b|
  double worst_excess = 0.0;   // largest |a - b| / (atol + rtol |b|)
  std::int64_t worst_index = -1;
  std::string message;
};

// Compares a (computed) with b (reference). The message names `what`, the max difference, and where.
inline CloseReport compare(const Tensor<Cpu>& a, const Tensor<Cpu>& b, Tolerance tol, const std::string& what) {
  CloseReport r;
  if (!(a.shape() == b.shape())) {
    r.ok = false;
    r.message = what + ": shape " + a.shape().str() + " vs reference " + b.shape().str();
    return r;
  }
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const double x = a[i], y = b[i], d = std::abs(x - y);
    const double excess = d == 0.0 ? 0.0 : std::isfinite(d) ? d / (tol.atol + tol.rtol * std::abs(y)) : INFINITY;
    r.max_abs = std::max(r.max_abs, std::isfinite(d) ? d : INFINITY);
    if (excess > r.worst_excess || r.worst_index < 0) {
      r.worst_excess = excess;
      r.worst_index = i;
    }
  }
  r.ok = r.worst_excess <= 1.0;
  std::ostringstream os;
  os << what << ": max |diff| " << r.max_abs << ", worst at flat index " << r.worst_index;
  if (r.worst_index >= 0) os << " (got " << a[r.worst_index] << ", reference " << b[r.worst_index] << ")";
  os << ", " << r.worst_excess << "x of the tolerance (atol " << tol.atol << ", rtol " << tol.rtol << ")";
  r.message = os.str();
  return r;
}

struct GradCheckOptions {
  double eps = 1e-2;              // central-difference step (float32 forward: smaller steps drown in rounding)
  Tolerance tol{2e-3, 2e-2};      // on each checked coordinate
  std::int64_t max_coords = 48;   // coordinates checked per input (sampled with the Philox stream)
  std::uint64_t seed = 99;
};

// Checks `analytic` = d loss / d x against central differences (loss(x + eps e_i) - loss(x - eps e_i)) / 2eps
// at up to max_coords coordinates of x (all of them when x is small). `loss` must read x's current values.
inline CloseReport check_gradient(const std::function<double()>& loss, Tensor<Cpu>& x, const Tensor<Cpu>& analytic,
                                  const std::string& what, GradCheckOptions opt = {}) {
  CloseReport r;
  if (!(analytic.shape() == x.shape())) {
    r.ok = false;
    r.message = what + ": analytic gradient shape " + analytic.shape().str() + " vs input " + x.shape().str();
    return r;
  }
  const std::int64_t n = x.numel(), m = std::min(n, opt.max_coords);
  auto fd = Tensor<Cpu>::zeros(Shape{m});
  auto an = Tensor<Cpu>::zeros(Shape{m});
  for (std::int64_t c = 0; c < m; ++c) {
    const std::int64_t i = m == n ? c : static_cast<std::int64_t>(philox_uniform(opt.seed, 7, static_cast<std::uint64_t>(c)) * n) % n;
    const float orig = x[i];
    x[i] = static_cast<float>(orig + opt.eps);
    const double lp = loss();
    x[i] = static_cast<float>(orig - opt.eps);
    const double lm = loss();
    x[i] = orig;
    fd[c] = static_cast<float>((lp - lm) / (2.0 * opt.eps));
    an[c] = analytic[i];
  }
  return compare(an, fd, opt.tol, what + " (analytic vs finite differences)");
}

// <a, b> in double: the scalar loss a test builds from an op's output and a fixed random projection.
inline double dot(const Tensor<Cpu>& a, const Tensor<Cpu>& b) {
  check_shape(b, a.shape(), "testing::dot");
  double s = 0.0;
  for (std::int64_t i = 0; i < a.numel(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

// A tensor of uniform values in [lo, hi) from the Philox stream (tests' inputs).
inline Tensor<Cpu> uniform(const Shape& shape, std::uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  auto t = Tensor<Cpu>::empty(shape);
  fill_uniform(t, seed, 0, lo, hi);
  return t;
}

}  // namespace mint::testing
