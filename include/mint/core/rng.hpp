// mint/core/rng.hpp -- counter-based random numbers (Philox4x32-10, Salmon et al., SC'11 "Random123").
//
// A value is a pure function of (seed, stream, index): element i of a fill never depends on how the loop is
// split across threads or GPU blocks, so the CPU and the CUDA backend produce the same numbers for the same
// seed. The functions here are MINT_HOST_DEVICE and are called unchanged by both backends.
//
// Stream layout (what tests/fixtures/philox.py reproduces bit-for-bit):
//   key     = (seed & 0xffffffff, seed >> 32)
//   counter = (block & 0xffffffff, block >> 32, stream, 0)
//   uniform(i)  : block = i / 4, word = i % 4,   u = (word >> 8) * 2^-24              in [0, 1)
//   fill_uniform: lo + (hi - lo) * u evaluated in double, rounded to float once (see uniform_in)
//   normal(i)   : block = i / 2, words (2*(i%2), 2*(i%2)+1) -> Box-Muller cos branch, u1 in (0, 1]
#pragma once

#include <cmath>
#include <cstdint>

#include "mint/core/device.hpp"
#include "mint/core/tensor.hpp"

namespace mint {

struct PhiloxWords {
  std::uint32_t w[4];
};

MINT_HOST_DEVICE inline PhiloxWords philox4x32_10(std::uint32_t c0, std::uint32_t c1, std::uint32_t c2,
                                                   std::uint32_t c3, std::uint32_t k0, std::uint32_t k1) {
  constexpr std::uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr std::uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(kM0) * c0;
    const std::uint64_t p1 = static_cast<std::uint64_t>(kM1) * c2;
    const std::uint32_t hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
    const std::uint32_t hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
    const std::uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += kW0;
    k1 += kW1;
  }
  return {{c0, c1, c2, c3}};
}

MINT_HOST_DEVICE inline PhiloxWords philox_block(std::uint64_t seed, std::uint32_t stream, std::uint64_t block) {
  return philox4x32_10(static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32), stream, 0u,
                       static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
}

// 24 random bits scaled to [0, 1): exact in float32, so every backend and numpy agree bit-for-bit.
MINT_HOST_DEVICE inline float philox_uniform(std::uint64_t seed, std::uint32_t stream, std::uint64_t i) {
  const PhiloxWords r = philox_block(seed, stream, i / 4);
  return static_cast<float>(r.w[i % 4] >> 8) * (1.0f / 16777216.0f);
}

// Standard normal by Box-Muller. Agreement across backends is to float rounding of log/cos (~1e-6).
MINT_HOST_DEVICE inline float philox_normal(std::uint64_t seed, std::uint32_t stream, std::uint64_t i) {
  const PhiloxWords r = philox_block(seed, stream, i / 2);
  const int j = static_cast<int>(i % 2) * 2;
  const float u1 = (static_cast<float>(r.w[j] >> 8) + 1.0f) * (1.0f / 16777216.0f);  // (0, 1]
  const float u2 = static_cast<float>(r.w[j + 1] >> 8) * (1.0f / 16777216.0f);       // [0, 1)
  return std::sqrt(-2.0f * std::log(u1)) * std::cos(6.283185307179586f * u2);
}

// lo + (hi - lo) * u, computed in double and rounded once: the product of a float and a 24-bit u is exact in
// double, so the result does not depend on whether the compiler contracts it into an FMA (-march=native
// does), and numpy reproduces it bit-for-bit.
MINT_HOST_DEVICE inline float uniform_in(float lo, float hi, float u) {
  return static_cast<float>(static_cast<double>(lo) + static_cast<double>(hi - lo) * static_cast<double>(u));
}

// Fills `t` with uniform_in(lo, hi, uniform(i)).
inline void fill_uniform(Tensor<Cpu>& t, std::uint64_t seed, std::uint32_t stream, float lo, float hi) {
  float* p = t.data();
  const std::int64_t n = t.numel();
#pragma omp parallel for schedule(static) if (n > 65536)
  for (std::int64_t i = 0; i < n; ++i) p[i] = uniform_in(lo, hi, philox_uniform(seed, stream, static_cast<std::uint64_t>(i)));
}

// Fills `t` with mean + stddev * normal(i).
inline void fill_normal(Tensor<Cpu>& t, std::uint64_t seed, std::uint32_t stream, float mean, float stddev) {
  float* p = t.data();
  const std::int64_t n = t.numel();
#pragma omp parallel for schedule(static) if (n > 65536)
  for (std::int64_t i = 0; i < n; ++i) p[i] = mean + stddev * philox_normal(seed, stream, static_cast<std::uint64_t>(i));
}

}  // namespace mint
