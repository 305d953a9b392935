// What mint's training CLIs share (mint-train-teacher, mint-train-cnn): their common options and checks on the
// command line of examples/cli.hpp, the reproducibility helpers of the trainers' JSON recipes, the seeded shuffle
// and comma-separated lists.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include <mint/core/error.hpp>
#include <mint/core/rng.hpp>

#include "cli.hpp"

namespace mint::examples {

// The options every trainer has; each trainer sets its own defaults in its Args constructor.
struct TrainingArgs {
  int epochs = 1, batch = 128, shift = 0, threads = 0;
  bool flip = false;
  float lr = 1e-3f, wd = 0.0f, warmup = 0.0f, min_lr = 0.0f;
  std::uint64_t seed = 0;
  std::int64_t train_limit = -1, test_limit = -1;
  std::string out = "models", name, data = "/usr/share/datasets/fashion-mnist";
};

// What differs between the trainers' common options: help texts and the smallest batch.
struct TrainingHelp {
  std::string lr, wd, batch;
  int min_batch = 1;
};

// The common options, one line each (the trainer adds its own after them).
inline void add_training_options(cli::Command& c, TrainingArgs& a, const TrainingHelp& h) {
  c.number("--epochs", a.epochs, "epochs", 1, 100000);
  c.number("--batch", a.batch, h.batch, h.min_batch, 65536);
  c.number("--lr", a.lr, h.lr, 1e-9, 1e3);
  c.number("--wd", a.wd, h.wd, 0, 10);
  c.number("--warmup", a.warmup, "warmup epochs", 0, 100000);
  c.number("--min-lr", a.min_lr, "final learning rate of the cosine (<= --lr)", 0, 1e3);
  c.flag01("--flip", a.flip, "random horizontal flips");
  c.number("--shift", a.shift, "random translation in pixels", 0, 13);
  c.number("--seed", a.seed, "seed (init, shuffles, augmentation)", 0, std::numeric_limits<std::uint64_t>::max());
  c.text("--out", a.out, "output folder");
  c.text("--name", a.name, "file name stem of <out>/<name>.safetensors and .json");
  c.existing("--data", a.data, "Fashion-MNIST idx.gz folder");
  c.number("--train-limit", a.train_limit, "first N training images (-1: all)", -1, 1'000'000'000);
  c.number("--test-limit", a.test_limit, "first N test images (-1: all)", -1, 1'000'000'000);
  c.number("--threads", a.threads, "OpenMP threads (0: all)", 0, 1024);
}

// The checks across the common options (after the trainer has filled in defaults that depend on others).
inline void validate_training(const TrainingArgs& a) {
  check(a.min_lr <= a.lr, "--min-lr ", a.min_lr, " must be <= --lr ", a.lr);
  check(a.train_limit != 0 && a.test_limit != 0, "--train-limit and --test-limit must be -1 (all) or >= 1");
  check(!a.name.empty() && a.name.find('/') == std::string::npos, "--name '", a.name, "' must be a plain file name");
}

// A seeded permutation of 0..n-1 (Fisher-Yates on 64 Philox bits per swap).
inline std::vector<std::int32_t> permutation(std::int64_t n, std::uint64_t seed, std::uint32_t stream) {
  std::vector<std::int32_t> p(static_cast<std::size_t>(n));
  std::iota(p.begin(), p.end(), 0);
  for (std::int64_t i = n - 1; i > 0; --i) {
    const auto w = philox_block(seed, stream, static_cast<std::uint64_t>(i));
    const std::uint64_t r = (static_cast<std::uint64_t>(w.w[0]) << 32) | w.w[1];
    std::swap(p[static_cast<std::size_t>(i)], p[static_cast<std::size_t>(r % static_cast<std::uint64_t>(i + 1))]);
  }
  return p;
}

// A float option as the decimal the user typed (0.002, not 0.0020000000949949026) for the JSON recipe.
inline double dec(float x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.7g", static_cast<double>(x));
  return std::stod(buf);
}

inline std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// The comma-separated items of s, empty items dropped ("a,,b" -> {a, b}).
inline std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    const auto comma = std::min(s.find(',', pos), s.size());
    if (comma > pos) out.push_back(s.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return out;
}

}  // namespace mint::examples
