// The CUDA backend's runtime pieces: errors that name the failing call, the no-GPU path, the row-major to
// column-major GEMM mapping (checked on the CPU, so it is tested on machines without a GPU too), and, on a GPU,
// Tensor<Cuda> copies, the caching allocator and cuda::gemm against cpu::gemm. A .cpp file on purpose: g++
// compiles it (with mint's full warning flags), which checks that the backend's .hpp headers are plain C++ and
// that host code can own device tensors and call cuBLAS without nvcc.
#include "cuda/cuda_test_util.hpp"

#include <string>
#include <vector>

#include "mint/backend/cpu/gemm.hpp"
#include "mint/backend/cuda/gemm.hpp"

using namespace mint;

TEST_CASE("MINT_CUDA_CHECK names the call, the file and line, and the CUDA error", "[cuda]") {
  try {
    MINT_CUDA_CHECK(cudaErrorInvalidValue);
    FAIL("no exception");
  } catch (const Error& e) {
    const std::string m = e.what();
    INFO(m);
    CHECK(m.find("`cudaErrorInvalidValue`") != std::string::npos);
    CHECK(m.find("test_cuda_runtime.cpp:") != std::string::npos);
    CHECK(m.find("cudaErrorInvalidValue (") != std::string::npos);  // cudaGetErrorName, then the text
  }
  try {
    MINT_CUBLAS_CHECK(CUBLAS_STATUS_INVALID_VALUE);
    FAIL("no exception");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("CUBLAS_STATUS_INVALID_VALUE") != std::string::npos);
  }
}

TEST_CASE("device_status never throws, and without a GPU device tensors fail with the reason", "[cuda]") {
  const auto& s = cuda::device_status();
  std::printf("cuda::device_status: available=%d count=%d reason='%s'\n", s.available, s.count, s.reason.c_str());
  if (!s.available) {
    CHECK(!s.reason.empty());
    try {
      (void)Tensor<Cuda>::empty(Shape{4});
      FAIL("no exception");
    } catch (const Error& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find("no usable GPU") != std::string::npos);
    }
  }
}

namespace {
// What cuBLAS computes (BLAS semantics, column-major), written out: C = alpha op(A) op(B) + beta C.
void colmajor_gemm(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
                   std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  for (std::int64_t j = 0; j < n; ++j)
    for (std::int64_t i = 0; i < m; ++i) {
      double s = 0.0;
      for (std::int64_t p = 0; p < k; ++p) {
        const float av = ta ? a[p + i * lda] : a[i + p * lda];
        const float bv = tb ? b[j + p * ldb] : b[p + j * ldb];
        s += static_cast<double>(av) * bv;
      }
      float& cv = c[i + j * ldc];
      cv = static_cast<float>(alpha * s + (beta == 0.0f ? 0.0 : beta * static_cast<double>(cv)));
    }
}
}  // namespace

TEST_CASE("cuda::gemm's row-major to column-major mapping reproduces cpu::gemm (CPU only)", "[cuda][gemm]") {
  const std::int64_t m = 5, n = 7, k = 3, pad = 2;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      // strided operands: leading dimensions larger than the rows
      const std::int64_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
      auto a = testing::uniform(Shape{(ta ? k : m) * lda}, 11 + ta);
      auto b = testing::uniform(Shape{(tb ? n : k) * ldb}, 21 + tb);
      auto c0 = testing::uniform(Shape{m * ldc}, 31);
      auto want = c0.clone(), got = c0.clone();
      cpu::gemm(ta, tb, m, n, k, 0.5f, a.data(), lda, b.data(), ldb, 2.0f, want.data(), ldc);
      const auto g = cuda::detail::to_column_major(ta, tb, m, n, k, a.data(), lda, b.data(), ldb);
      colmajor_gemm(g.trans_first, g.trans_second, g.m, g.n, g.k, 0.5f, g.first, g.ld_first, g.second, g.ld_second,
                    2.0f, got.data(), ldc);
      MINT_REQUIRE_CLOSE(testing::compare(got, want, {1e-5, 1e-5},
                                          "mapping ta=" + std::to_string(ta) + " tb=" + std::to_string(tb)));
    }
}

TEST_CASE("GPU: Tensor<Cuda> round trip, fill, clone, reshape view", "[cuda][gpu]") {
  MINT_CUDA_REQUIRE_DEVICE();
  auto h = testing::uniform(Shape{3, 1000}, 5);
  auto d = cuda::to_device(h);
  MINT_REQUIRE_CLOSE(testing::compare_gpu(d, h, {0, 0}, "round trip"));
  auto c = d.clone();
  d.fill(0.0f);
  MINT_REQUIRE_CLOSE(testing::compare_gpu(c, h, {0, 0}, "clone independent of its source"));
  MINT_REQUIRE_CLOSE(testing::compare_gpu(d, Tensor<Cpu>::zeros(h.shape()), {0, 0}, "fill 0"));
  d.fill(1.25f);  // not a byte pattern: the host-staged path
  MINT_REQUIRE_CLOSE(testing::compare_gpu(d.reshape(Shape{3000}), Tensor<Cpu>::full(Shape{3000}, 1.25f), {0, 0},
                                          "fill 1.25 through a reshape view"));
}

TEST_CASE("GPU: the caching allocator reuses freed blocks instead of calling cudaMalloc", "[cuda][gpu]") {
  MINT_CUDA_REQUIRE_DEVICE();
  { auto t = Tensor<Cuda>::empty(Shape{1 << 20}); }
  const auto before = cuda::memory_stats();
  for (int i = 0; i < 10; ++i) {
    auto t = Tensor<Cuda>::empty(Shape{1 << 20});
    auto u = Tensor<Cuda>::empty(Shape{(1 << 20) - 100});  // rounds to the same 4 MiB class as t: a second block
  }
  const auto after = cuda::memory_stats();
  std::printf("allocator: %zu cudaMalloc calls, %zu cache hits over 20 allocations\n", after.mallocs - before.mallocs,
              after.hits - before.hits);
  CHECK(after.mallocs - before.mallocs <= 1);
  CHECK(after.hits - before.hits >= 19);
}

TEST_CASE("GPU: cuda::gemm equals cpu::gemm: transposes, strided leading dimensions, beta, TF32", "[cuda][gpu][gemm]") {
  MINT_CUDA_REQUIRE_DEVICE();
  const std::int64_t m = 37, n = 53, k = 129, pad = 3;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      const std::int64_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
      auto a = testing::uniform(Shape{(ta ? k : m) * lda}, 41 + ta);
      auto b = testing::uniform(Shape{(tb ? n : k) * ldb}, 51 + tb);
      auto c = testing::uniform(Shape{m * ldc}, 61);
      auto want = c.clone();
      cpu::gemm(ta, tb, m, n, k, 0.75f, a.data(), lda, b.data(), ldb, 0.5f, want.data(), ldc);
      auto da = cuda::to_device(a), db = cuda::to_device(b), dc = cuda::to_device(c);
      cuda::gemm(ta, tb, m, n, k, 0.75f, da.data(), lda, db.data(), ldb, 0.5f, dc.data(), ldc);
      const std::string what = "gemm ta=" + std::to_string(ta) + " tb=" + std::to_string(tb);
      MINT_REQUIRE_CLOSE(testing::compare_gpu(dc, want, {1e-4, 1e-4}, what + " FP32"));
      auto dt = cuda::to_device(c);
      cuda::gemm(ta, tb, m, n, k, 0.75f, da.data(), lda, db.data(), ldb, 0.5f, dt.data(), ldc, cuda::MathMode::TF32);
      // TF32 rounds inputs to 10-bit mantissas: ~5e-4 relative per product, sqrt(k)-ish accumulation
      MINT_REQUIRE_CLOSE(testing::compare_gpu(dt, want, {2e-2, 1e-2}, what + " TF32"));
    }
}

TEST_CASE("GPU: cuda::gemm_strided_batched equals one cpu::gemm per batch entry", "[cuda][gpu][gemm]") {
  MINT_CUDA_REQUIRE_DEVICE();
  const std::int64_t bt = 6, m = 17, n = 9, k = 33;
  auto a = testing::uniform(Shape{bt, m, k}, 71), b = testing::uniform(Shape{bt, n, k}, 72);
  auto want = Tensor<Cpu>::zeros(Shape{bt, m, n});
  for (std::int64_t i = 0; i < bt; ++i)
    cpu::gemm(false, true, m, n, k, 1.0f, a.data() + i * m * k, k, b.data() + i * n * k, k, 0.0f,
              want.data() + i * m * n, n);
  auto da = cuda::to_device(a), db = cuda::to_device(b);
  auto dc = Tensor<Cuda>::empty(Shape{bt, m, n});
  cuda::gemm_strided_batched(false, true, m, n, k, 1.0f, da.data(), k, m * k, db.data(), k, n * k, 0.0f, dc.data(), n,
                             m * n, bt);
  MINT_REQUIRE_CLOSE(testing::compare_gpu(dc, want, {1e-4, 1e-4}, "strided batched gemm (A B^T)"));
}
