// mint/inversion/cost.hpp -- what an inversion costs: the FLOPs mint really executes per iteration (counted
// from the actual token counts), PRI's analytic cost model (Theorem 1, Appendix F), and CostMeter, the one account
// of a run's cost that every CLI, benchmark and study reads (one ratio convention: method / DMI).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "mint/core/allocator.hpp"
#include "mint/models/vit_config.hpp"

namespace mint {

// GEMM FLOPs (2 per multiply-add) of one inversion iteration of mint's ViT: forward plus input-only backward
// for `batch` images with `kept` active patches each. Exact for what runs: the patch embedding on kept patches,
// L-1 full blocks on T = E + kept tokens, the last block with every token's LN1/qkv but attention queries,
// projection and MLP on the E CLS/distillation rows only, and the head. Backward repeats each linear GEMM once
// (d_input only: no weight gradients) and runs four attention GEMMs per head. Elementwise work (LayerNorm,
// GELU, softmax, priors, Adam) is not counted.
inline double inversion_iteration_flops(const ViTConfig& c, std::int64_t batch, std::int64_t kept) {
  const double b = static_cast<double>(batch), e = c.extra_tokens(), t = e + static_cast<double>(kept);
  const double d = c.dim, f = c.mlp_hidden, pf = static_cast<double>(c.in_chans) * c.patch * c.patch;
  auto linear = [&](double rows, double in, double out) { return 2.0 * rows * in * out * 2.0; };  // fwd + d_input
  // attention per image: q query rows over t keys, all heads together: QK^T + PV forward, dP dS dV dK dQ backward
  auto attn = [&](double q) { return 2.0 * (2.0 * q * t * d) + 2.0 * (4.0 * q * t * d); };
  const auto block = [&](double q) {
    return linear(t, d, 3 * d) + attn(q) + linear(q, d, d) + linear(q, d, f) + linear(q, f, d);
  };
  const double blocks = (c.depth - 1) * block(t) + block(e);
  return b * (linear(static_cast<double>(kept), pf, d) + blocks + linear(e, d, c.classes));
}

// PRI Theorem 1: per-layer SA cost 4Nd^2 + 2N^2d and FFN cost 8Nd^2 (Chen et al. 2023), totalled over L
// layers, T iterations and I output images.
struct Theorem1 {
  double layers, dim, patches;  // L, d, N

  [[nodiscard]] double sa(double n) const { return 4.0 * n * dim * dim + 2.0 * n * n * dim; }
  [[nodiscard]] double ffn(double n) const { return 8.0 * n * dim * dim; }
  // DMI: all N patches for all T iterations (Eqs. 3-4).
  [[nodiscard]] double dmi(double images, double iterations) const {
    return layers * (sa(patches) + ffn(patches)) * images * iterations;
  }
  // SMI*: idealised SMI that starts with N/v patches (the same final sparsity as PRI with divisor v).
  [[nodiscard]] double smi_ideal(double images, double iterations, double v) const {
    return layers * (sa(patches / v) + ffn(patches / v)) * images * iterations;
  }
  // PRI: stage k of v runs T/v iterations on N_k = N (1 - (k-1)/v) patches; each trajectory yields v images,
  // so I output images need I/v trajectories.
  [[nodiscard]] double pri(double images, double iterations, double v) const {
    double total = 0.0;
    for (int k = 1; k <= static_cast<int>(v); ++k) {
      const double nk = patches * (1.0 - (k - 1) / v);
      total += layers * (sa(nk) + ffn(nk)) * (images / v) * (iterations / v);
    }
    return total;
  }
};

// The cost of one or more inversion runs, measured while they run: executed GEMM FLOPs (inversion_iteration_flops
// from each iteration's actual active count), peak tensor memory above what was live at the start (CPU tensors:
// mint::cpu's allocator; a CUDA run's device memory is not counted), wall time, and Theorem 1's prediction.
// Every ratio it reports is the method's cost per output image over DMI's for the same iterations (< 1: cheaper
// than DMI); a speedup is its inverse and is printed as such.
//
//   CostMeter meter(model.config());
//   meter.begin(trajectories);                       // before each run (resets the peak counter)
//   inverter.run(labels, std::ref(meter));           // or call meter(stats) from one's own callback
//   meter.end();                                     // after it (adds the run's time and peak)
//   meter.cost_vs_dmi(images), meter.theorem1_cost_vs_dmi(v, T)
class CostMeter {
 public:
  explicit CostMeter(const ViTConfig& c) : cfg_(c) {}

  // requires: trajectories >= 1 (the images inverted together in the coming run).
  void begin(std::int64_t trajectories) {
    check(trajectories >= 1, "CostMeter::begin: ", trajectories, " trajectories");
    trajectories_ = trajectories, run_iterations_ = 0;
    cpu::reset_peak_bytes();
    live0_ = cpu::live_bytes();
    t0_ = std::chrono::steady_clock::now();
  }
  // One finished iteration (anything with an `active` member: IterationStats).
  template <class Stats>
  void operator()(const Stats& s) {
    flops_ += inversion_iteration_flops(cfg_, trajectories_, static_cast<std::int64_t>(s.active));
    final_active_ = static_cast<std::int64_t>(s.active);
    ++run_iterations_;
  }
  void end() {
    seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    const std::size_t peak = cpu::peak_bytes();
    peak_mib_ = std::max(peak_mib_, static_cast<double>(peak > live0_ ? peak - live0_ : 0) / (1 << 20));
    iterations_ = std::max(iterations_, run_iterations_);
    ++runs_;
  }

  [[nodiscard]] double flops() const { return flops_; }           // executed GEMM FLOPs, all runs
  [[nodiscard]] double seconds() const { return seconds_; }       // wall time between begin() and end(), summed
  [[nodiscard]] double peak_mib() const { return peak_mib_; }     // the largest run's peak tensor memory
  [[nodiscard]] int iterations() const { return iterations_; }    // iterations of the longest run
  [[nodiscard]] int runs() const { return runs_; }
  [[nodiscard]] std::int64_t final_active() const { return final_active_ > 0 ? final_active_ : cfg_.num_patches(); }

  // DMI's executed FLOPs per image for `iterations` iterations (the baseline of every ratio).
  [[nodiscard]] double dmi_flops_per_image(int iterations) const {
    return inversion_iteration_flops(cfg_, 1, cfg_.num_patches()) * iterations;
  }
  // Executed FLOPs per output image over DMI's for the same iterations (iterations()): method / DMI.
  [[nodiscard]] double cost_vs_dmi(double images) const {
    return images > 0 && iterations_ > 0 ? flops_ / images / dmi_flops_per_image(iterations_) : 0.0;
  }
  // Theorem 1's cost per output image over DMI's, method / DMI: PRI with v > 1 images per trajectory; otherwise
  // SMI in the theorem's idealised form SMI*, which starts at the final sparsity (v = N / final active); 1 for DMI.
  [[nodiscard]] double theorem1_cost_vs_dmi(int images_per_trajectory, int iterations) const {
    const Theorem1 th{static_cast<double>(cfg_.depth), static_cast<double>(cfg_.dim),
                      static_cast<double>(cfg_.num_patches())};
    const double n = cfg_.num_patches(), t = iterations, dmi = th.dmi(1, t);
    if (images_per_trajectory > 1) return th.pri(1, t, images_per_trajectory) / dmi;
    const double kept = static_cast<double>(final_active());
    return kept < n ? th.smi_ideal(1, t, n / kept) / dmi : 1.0;
  }
  // What report.json files record (the keys every writer uses).
  [[nodiscard]] nlohmann::json to_json(double images, int images_per_trajectory, int iterations) const {
    return {{"gemm_flops", flops_},
            {"seconds", seconds_},
            {"peak_tensor_mib", peak_mib_},
            {"images", images},
            {"final_active", final_active()},
            {"cost_vs_dmi", cost_vs_dmi(images)},
            {"theorem1_cost_vs_dmi", theorem1_cost_vs_dmi(images_per_trajectory, iterations)}};
  }

 private:
  ViTConfig cfg_;
  std::int64_t trajectories_ = 1, final_active_ = 0;
  double flops_ = 0.0, seconds_ = 0.0, peak_mib_ = 0.0;
  int iterations_ = 0, run_iterations_ = 0, runs_ = 0;
  std::size_t live0_ = 0;
  std::chrono::steady_clock::time_point t0_{};
};

}  // namespace mint
