// mint/backend/cpu/parallel.hpp -- OpenMP loops for the CPU backend.
// Loops below `grain` iterations run serially: forking a team costs more than tiny loops save.
#pragma once

#include <cstdint>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace mint::cpu {

inline int num_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

inline void set_num_threads(int n) {
#if defined(_OPENMP)
  omp_set_num_threads(n);
#else
  (void)n;
#endif
}

// Whether the caller runs inside an OpenMP parallel region, active or not. Not omp_in_parallel(): a region run by
// one thread is inactive, and a choice made inside one (which GEMM, how many threads a library may use) must be the
// same there as on more threads, or it would change with the thread count.
inline bool in_parallel_region() {
#if defined(_OPENMP)
  return omp_get_level() > 0;
#else
  return false;
#endif
}

// Calls f(i) for i in [0, n), split statically across the OpenMP team when n >= grain.
template <class F>
void parallel_for(std::int64_t n, F&& f, std::int64_t grain = 1) {
#pragma omp parallel for schedule(static) if (n >= grain && n > 1)
  for (std::int64_t i = 0; i < n; ++i) f(i);
}

}  // namespace mint::cpu
