// mint/backend/cpu/gemm_backends.hpp -- the SGEMM implementations mint can run its CPU GEMMs on, behind one
// row-major interface, and the choice of which one runs (docs/performance.md, "Which GEMM").
//
// Candidates (each compiled in where CMake found it; MINT_HAVE_<NAME> says so):
//   Eigen     Eigen's own kernels over Eigen::Map views of mint's buffers (always there);
//   OpenBLAS  cblas_sgemm of Debian's OpenMP build (its kernels picked by CPU detection, or by
//             OPENBLAS_CORETYPE where the environment sets it: the result check below is why that matters);
//   BLIS      bli_sgemm_ex with general strides, its thread count set per call (BLIS's own default is one
//             thread unless BLIS_NUM_THREADS is set: mint never relies on that variable);
//   oneDNN    dnnl_sgemm (row-major, JIT kernels chosen per ISA at run time);
//   LIBXSMM   JIT small-matrix kernels (libxsmm_smmdispatch) for single-threaded calls; the products its 1.17 JIT
//             does not generate (alpha != 1, beta other than 0 or 1, a transposed first operand) run on Eigen.
//
// Contract of every candidate (as mint::cpu::gemm): C = alpha * op(A) * op(B) + beta * C, row-major, leading
// dimensions lda/ldb/ldc, op(A) M x K, op(B) K x N; beta == 0 overwrites C (which may hold garbage). Called
// inside an OpenMP parallel region a candidate runs on the calling thread only.
#pragma once

#include <omp.h>

#include <array>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <Eigen/Core>

#if MINT_HAVE_OPENBLAS
#include <cblas.h>
#endif
#if MINT_HAVE_BLIS
#include <blis.h>
#endif
#if MINT_HAVE_DNNL
#include <dnnl.h>
#endif
#if MINT_HAVE_LIBXSMM
#include <libxsmm.h>
#endif

#include "mint/backend/cpu/parallel.hpp"
#include "mint/core/error.hpp"

namespace mint::cpu {

enum class GemmBackend { Eigen, OpenBLAS, BLIS, OneDNN, LIBXSMM };
inline constexpr std::array<GemmBackend, 5> kGemmBackends{GemmBackend::Eigen, GemmBackend::OpenBLAS, GemmBackend::BLIS,
                                                          GemmBackend::OneDNN, GemmBackend::LIBXSMM};

inline constexpr std::string_view gemm_backend_name(GemmBackend b) {
  switch (b) {
    case GemmBackend::Eigen: return "eigen";
    case GemmBackend::OpenBLAS: return "openblas";
    case GemmBackend::BLIS: return "blis";
    case GemmBackend::OneDNN: return "onednn";
    case GemmBackend::LIBXSMM: return "libxsmm";
  }
  return "?";
}

// Whether this build has the candidate.
inline constexpr bool gemm_backend_available(GemmBackend b) {
  switch (b) {
    case GemmBackend::Eigen: return true;
    case GemmBackend::OpenBLAS: return MINT_HAVE_OPENBLAS != 0;
    case GemmBackend::BLIS: return MINT_HAVE_BLIS != 0;
    case GemmBackend::OneDNN: return MINT_HAVE_DNNL != 0;
    case GemmBackend::LIBXSMM: return MINT_HAVE_LIBXSMM != 0;
  }
  return false;
}

// The candidate called `name` (as gemm_backend_name spells it). Throws mint::Error naming the known and the
// available ones when it is unknown or not in this build.
inline GemmBackend parse_gemm_backend(std::string_view name) {
  std::string known;
  for (auto b : kGemmBackends) {
    if (gemm_backend_name(b) == name) {
      check(gemm_backend_available(b), "GEMM backend '", std::string(name), "' is not in this build (CMake did not ",
            "find it: install its Debian package and reconfigure)");
      return b;
    }
    known += std::string(known.empty() ? "" : ", ") + std::string(gemm_backend_name(b)) +
             (gemm_backend_available(b) ? "" : " (not built)");
  }
  throw Error("unknown GEMM backend '" + std::string(name) + "' (known: " + known + ")");
}

namespace detail {
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMat, Eigen::Unaligned, Eigen::OuterStride<>>;
using MutMap = Eigen::Map<RowMat, Eigen::Unaligned, Eigen::OuterStride<>>;

template <class L, class R>
void gemm_assign(MutMap& c, const L& a, const R& b, float alpha, float beta) {
  if (beta == 0.0f) {
    if (alpha == 1.0f) c.noalias() = a * b;
    else c.noalias() = alpha * (a * b);
  } else {
    if (beta != 1.0f) c *= beta;
    if (alpha == 1.0f) c.noalias() += a * b;
    else c.noalias() += alpha * (a * b);
  }
}

// requires k > 0 (the caller handles the empty product).
inline void gemm_eigen(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
                       std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  MutMap cm(c, m, n, Eigen::OuterStride<>(ldc));
  ConstMap am(a, ta ? k : m, ta ? m : k, Eigen::OuterStride<>(lda));
  ConstMap bm(b, tb ? n : k, tb ? k : n, Eigen::OuterStride<>(ldb));
  if (!ta && !tb) gemm_assign(cm, am, bm, alpha, beta);
  else if (!ta && tb) gemm_assign(cm, am, bm.transpose(), alpha, beta);
  else if (ta && !tb) gemm_assign(cm, am.transpose(), bm, alpha, beta);
  else gemm_assign(cm, am.transpose(), bm.transpose(), alpha, beta);
}

#if MINT_HAVE_OPENBLAS
inline void gemm_openblas(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                          const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                          std::int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a,
              static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}
#endif

#if MINT_HAVE_BLIS
inline void gemm_blis(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
                      std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  rntm_t rntm = BLIS_RNTM_INITIALIZER;
  bli_rntm_set_num_threads(in_parallel_region() ? 1 : omp_get_max_threads(), &rntm);
  // row-major: row stride = leading dimension, column stride 1; a transposed operand is stored as its transpose
  bli_sgemm_ex(ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, m, n, k, &alpha,
               const_cast<float*>(a), lda, 1, const_cast<float*>(b), ldb, 1, &beta, c, ldc, 1, nullptr, &rntm);
}
#endif

#if MINT_HAVE_DNNL
// oneDNN's own threading partitions a product by the thread count and may change its kernels and sums with it
// (12 of 840 products measured differ between 1 and 2 threads). So on the team mint splits C into row panels whose
// number depends on M alone (kOneDnnPanels, each a multiple of 16 rows) and runs each panel as one single-threaded
// dnnl_sgemm: the same calls, so the same bits, on any thread count (docs/performance.md, "Which GEMM"). Eight
// panels balance 1, 2, 4 and 8 threads; beyond 8 threads the linear layers use 8. Inside a parallel region the
// call is one dnnl_sgemm on the calling thread (oneDNN runs it single-threaded there).
inline constexpr std::int64_t kOneDnnPanels = 8;

inline void gemm_onednn(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                        const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                        std::int64_t ldc) {
  const char ca = ta ? 'T' : 'N', cb = tb ? 'T' : 'N';
  dnnl_status_t s = dnnl_success;
  if (in_parallel_region()) {
    s = dnnl_sgemm(ca, cb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  } else {
    const std::int64_t rows = ((m + kOneDnnPanels - 1) / kOneDnnPanels + 15) / 16 * 16;
    const std::int64_t panels = (m + rows - 1) / rows;
    std::atomic<int> failed{static_cast<int>(dnnl_success)};
#pragma omp parallel for schedule(static)
    for (std::int64_t p = 0; p < panels; ++p) {
      const std::int64_t i0 = p * rows, mp = std::min(rows, m - i0);
      const dnnl_status_t sp = dnnl_sgemm(ca, cb, mp, n, k, alpha, ta ? a + i0 : a + i0 * lda, lda, b, ldb, beta,
                                          c + i0 * ldc, ldc);
      if (sp != dnnl_success) failed.store(static_cast<int>(sp), std::memory_order_relaxed);
    }
    s = static_cast<dnnl_status_t>(failed.load());
  }
  check(s == dnnl_success, "dnnl_sgemm failed (status ", static_cast<int>(s), ") for M=", m, " N=", n, " K=", k);
}
#endif

#if MINT_HAVE_LIBXSMM
// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: LIBXSMM's A operand is mint's B (transposed
// when tb), its B operand mint's A (transposed when ta), with the sizes (N, M, K).
inline bool gemm_libxsmm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                         const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                         std::int64_t ldc) {
  if (alpha != 1.0f || (beta != 0.0f && beta != 1.0f) || tb) return false;  // not generated by the 1.17 JIT
  const libxsmm_blasint xm = n, xn = m, xk = k, xlda = ldb, xldb = lda, xldc = ldc;
  const int flags = (ta ? LIBXSMM_GEMM_FLAG_TRANS_B : 0) | (beta == 0.0f ? LIBXSMM_GEMM_FLAG_BETA_0 : 0);
  const libxsmm_smmfunction kernel =
      libxsmm_smmdispatch(xm, xn, xk, &xlda, &xldb, &xldc, &alpha, &beta, &flags, nullptr);
  if (kernel == nullptr) return false;
  kernel(b, a, c);
  return true;
}
#endif
}  // namespace detail

// C = alpha op(A) op(B) + beta C on candidate `backend` (which must be available). requires k > 0.
inline void gemm_on(GemmBackend backend, bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
                    const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
                    std::int64_t ldc) {
  switch (backend) {
#if MINT_HAVE_OPENBLAS
    case GemmBackend::OpenBLAS: return detail::gemm_openblas(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
#if MINT_HAVE_BLIS
    case GemmBackend::BLIS: return detail::gemm_blis(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
#if MINT_HAVE_DNNL
    case GemmBackend::OneDNN: return detail::gemm_onednn(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
#if MINT_HAVE_LIBXSMM
    case GemmBackend::LIBXSMM:
      if (detail::gemm_libxsmm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)) return;
      return detail::gemm_eigen(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
    default: return detail::gemm_eigen(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
}

// Which candidate runs mint::cpu::gemm: `team` for a call made outside an OpenMP parallel region (the linear
// layers: one GEMM on the whole team), `single` for a call made inside one (the attention GEMMs, one per image
// and head, each on its thread).
struct GemmChoice {
  GemmBackend team = GemmBackend::Eigen, single = GemmBackend::Eigen;
};

namespace detail {
#ifndef MINT_GEMM_TEAM_DEFAULT
#define MINT_GEMM_TEAM_DEFAULT Eigen
#endif
#ifndef MINT_GEMM_SINGLE_DEFAULT
#define MINT_GEMM_SINGLE_DEFAULT Eigen
#endif
inline std::atomic<GemmBackend>& gemm_team() {
  static std::atomic<GemmBackend> b{GemmBackend::MINT_GEMM_TEAM_DEFAULT};
  return b;
}
inline std::atomic<GemmBackend>& gemm_single() {
  static std::atomic<GemmBackend> b{GemmBackend::MINT_GEMM_SINGLE_DEFAULT};
  return b;
}
}  // namespace detail

// The build's default (CMake MINT_GEMM / MINT_GEMM_SMALL: the fastest correct candidates measured by
// benchmarks/compare_gemm.sh on the reference machine) until set_gemm_choice changes it.
inline GemmChoice gemm_choice() {
  return {detail::gemm_team().load(std::memory_order_relaxed), detail::gemm_single().load(std::memory_order_relaxed)};
}
// requires: both available (checked). Not to be called while GEMMs run on other threads.
inline void set_gemm_choice(GemmChoice c) {
  for (auto b : {c.team, c.single})
    check(gemm_backend_available(b), "set_gemm_choice: GEMM backend '", std::string(gemm_backend_name(b)),
          "' is not in this build");
  detail::gemm_team().store(c.team, std::memory_order_relaxed);
  detail::gemm_single().store(c.single, std::memory_order_relaxed);
}

// "team=<name> single=<name>" (what benchmarks and reports record).
inline std::string describe(GemmChoice c) {
  return "team=" + std::string(gemm_backend_name(c.team)) + " single=" + std::string(gemm_backend_name(c.single));
}

// Sets a choice for its lifetime and restores the previous one after (tests pinning a candidate).
class ScopedGemmChoice {
 public:
  explicit ScopedGemmChoice(GemmChoice c) : saved_(gemm_choice()) { set_gemm_choice(c); }
  ~ScopedGemmChoice() { set_gemm_choice(saved_); }
  ScopedGemmChoice(const ScopedGemmChoice&) = delete;
  ScopedGemmChoice& operator=(const ScopedGemmChoice&) = delete;

 private:
  GemmChoice saved_;
};

// How far `gemm`'s C = alpha op(A) op(B) + beta C is from a double-precision reference, relative to
// the worst-case float error bound of any correct GEMM (Higham, Accuracy and Stability of Numerical Algorithms,
// Sec. 3.5: |fl(C) - C| <= gamma_{k+2} (|alpha| |op(A)| |op(B)| + |beta| |C|) elementwise, gamma_j = j u / (1 - j u),
// u = 2^-24; k + 2 counts the K products' rounding and the alpha and beta steps). Returns the largest ratio over C:
// <= 1 for a correct implementation, whatever its summation order; +inf where an element is not finite. Random
// inputs in [-1, 1] with leading dimensions padded beyond the rows (strided use, as the attention GEMMs), C
// filled with NaN first when beta == 0 (a candidate must not read it); +inf also when a candidate writes
// C's padding. requires m, n, k >= 1.
// `gemm` is called as gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc), as gemm_on without its first
// argument.
template <class Gemm>
double gemm_error_vs_bound(Gemm&& gemm, bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k,
                           float alpha, float beta, std::uint32_t seed = 1) {
  const std::int64_t ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
  const std::int64_t lda = ac + 3, ldb = bc + 5, ldc = n + 2;
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> a(static_cast<std::size_t>(ar * lda)), b(static_cast<std::size_t>(br * ldb)),
      c(static_cast<std::size_t>(m * ldc));
  for (auto& x : a) x = u(gen);
  for (auto& x : b) x = u(gen);
  for (auto& x : c) x = u(gen);
  const std::vector<float> c0 = c;
  if (beta == 0.0f) std::fill(c.begin(), c.end(), std::numeric_limits<float>::quiet_NaN());
  gemm(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
  const double unit = std::ldexp(1.0, -24), jk = static_cast<double>(k + 2) * unit, gamma = jk / (1.0 - jk);
  double worst = 0.0;
  for (std::int64_t i = 0; i < m; ++i)  // C's padding columns (beyond N, within ldc) must be left alone
    for (std::int64_t j = n; j < ldc; ++j) {
      const float got = c[static_cast<std::size_t>(i * ldc + j)], was = c0[static_cast<std::size_t>(i * ldc + j)];
      if (beta == 0.0f ? !std::isnan(got) : got != was) return std::numeric_limits<double>::infinity();
    }
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      double ref = 0.0, mag = 0.0;
      for (std::int64_t p = 0; p < k; ++p) {
        const double x = a[static_cast<std::size_t>(ta ? p * lda + i : i * lda + p)];
        const double y = b[static_cast<std::size_t>(tb ? j * ldb + p : p * ldb + j)];
        ref += x * y, mag += std::abs(x * y);
      }
      const double cij0 = beta == 0.0f ? 0.0 : c0[static_cast<std::size_t>(i * ldc + j)];
      ref = alpha * ref + beta * cij0;
      const double bound = gamma * (std::abs(alpha) * mag + std::abs(beta) * std::abs(cij0));
      const double got = c[static_cast<std::size_t>(i * ldc + j)];
      if (!std::isfinite(got)) return std::numeric_limits<double>::infinity();
      const double err = std::abs(got - ref);
      worst = std::max(worst, bound > 0.0 ? err / bound : (err == 0.0 ? 0.0 : std::numeric_limits<double>::infinity()));
    }
  return worst;
}
// The same for candidate `backend`.
inline double gemm_error_vs_bound(GemmBackend backend, bool ta, bool tb, std::int64_t m, std::int64_t n,
                                  std::int64_t k, float alpha, float beta, std::uint32_t seed = 1) {
  return gemm_error_vs_bound(
      [backend](bool ta_, bool tb_, std::int64_t m_, std::int64_t n_, std::int64_t k_, float al, const float* a,
                std::int64_t lda, const float* b, std::int64_t ldb, float be, float* c, std::int64_t ldc) {
        gemm_on(backend, ta_, tb_, m_, n_, k_, al, a, lda, b, ldb, be, c, ldc);
      },
      ta, tb, m, n, k, alpha, beta, seed);
}

}  // namespace mint::cpu
