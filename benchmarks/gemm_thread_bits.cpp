// gemm_thread_bits -- which GEMMs give other bits on other thread counts: a sweep over the layouts and the sizes
// the ViTs and their weight gradients run (M, N, K from the lists below), each product computed on 1 thread and on
// 2, 3, 4 and 8, compared bit for bit. Three ways: oneDNN's own threading (dnnl_sgemm called on the team), mint's
// oneDNN team call (row panels fixed by M: mint::cpu::gemm with team = onednn), and Eigen's (team = eigen).
// Prints, per way and thread count, how many of the products differ from the 1-thread bits, and the first few.
// Not a timing: docs/performance.md ("Which GEMM") quotes its counts.
#include <omp.h>

#include <cstdio>
#include <random>
#include <vector>

#include "mint/backend/cpu/gemm.hpp"

int main() {
  using mint::cpu::GemmBackend;
  const long ms[] = {6, 16, 50, 64, 192, 390, 1576}, ns[] = {10, 48, 64, 192, 576};
  const long ks[] = {16, 48, 192, 768, 1576, 6400};
  const int thread_counts[] = {2, 3, 4, 8};
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const char* names[] = {"oneDNN's own threading", "mint's oneDNN row panels", "Eigen"};
  long differ[3][4] = {}, total = 0;
  for (int layout = 0; layout < 4; ++layout)
    for (long m : ms)
      for (long n : ns)
        for (long k : ks) {
          const bool ta = layout & 1, tb = layout & 2;
          std::vector<float> a(static_cast<std::size_t>(m * k)), b(static_cast<std::size_t>(k * n));
          for (auto& x : a) x = u(gen);
          for (auto& x : b) x = u(gen);
          const long lda = ta ? m : k, ldb = tb ? k : n;
          ++total;
          for (int way = 0; way < 3; ++way) {
            auto product = [&](int threads) {
              std::vector<float> c(static_cast<std::size_t>(m * n));
              omp_set_num_threads(threads);
              if (way == 0) {
                dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f,
                           c.data(), n);
              } else {
                const GemmBackend team = way == 1 ? GemmBackend::OneDNN : GemmBackend::Eigen;
                mint::cpu::ScopedGemmChoice pin({team, GemmBackend::Eigen});
                mint::cpu::gemm(ta, tb, m, n, k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(), n);
              }
              return c;
            };
            const auto one = product(1);
            for (int t = 0; t < 4; ++t)
              if (product(thread_counts[t]) != one && differ[way][t]++ < 3)
                std::printf("  %s differs at %d threads: %c%c M=%ld N=%ld K=%ld\n", names[way], thread_counts[t],
                            ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k);
          }
        }
  for (int way = 0; way < 3; ++way) {
    std::printf("%-26s products whose bits differ from 1 thread's, of %ld:", names[way], total);
    for (int t = 0; t < 4; ++t) std::printf("  %d threads: %ld", thread_counts[t], differ[way][t]);
    std::printf("\n");
  }
}
