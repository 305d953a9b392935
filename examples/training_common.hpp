// What mint's CLIs share: the `--key value` command line and comma-separated lists, the reproducibility
// helpers of the trainers' JSON recipes, the seeded shuffle and the crash-safe file write.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <filesystem>
#include <map>
#include <numeric>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <mint/core/error.hpp>
#include <mint/core/rng.hpp>

namespace mint::examples {

// s quoted for a POSIX shell, unchanged when it needs no quoting.
inline std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:+,") ==
                        std::string::npos)
    return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// `--key value` options. --help / -h prints the usage and exits; number() and text() take an option if present;
// finish() rejects whatever was not taken. Errors name the program and the option.
class Options {
 public:
  Options(const std::string& program, const char* usage, int argc, char** argv) : program_(program), usage_(usage) {
    for (int i = 0; i < argc; ++i) command_ += (i ? " " : "") + shell_quote(argv[i]);
    for (int i = 1; i < argc; ++i) {
      std::string k = argv[i];
      if (k == "--help" || k == "-h") {
        std::puts(usage);
        std::exit(0);
      }
      check(k.rfind("--", 0) == 0 && i + 1 < argc, program_, ": expected --option value, got '", k, "'");
      kv_[k.substr(2)] = argv[++i];
    }
  }

  // The command line as typed, shell-quoted (recorded in the recipe).
  [[nodiscard]] const std::string& command() const { return command_; }

  template <class T>
  void number(const std::string& k, T& dst) {
    if (auto it = kv_.find(k); it != kv_.end()) {
      try {
        std::size_t used = 0;
        const double v = std::stod(it->second, &used);
        check(used == it->second.size(), "trailing characters");
        dst = static_cast<T>(v);
      } catch (const std::exception&) {
        throw Error(program_ + ": --" + k + " expects a number, got '" + it->second + "'");
      }
      kv_.erase(it);
    }
  }

  void text(const std::string& k, std::string& dst) {
    if (auto it = kv_.find(k); it != kv_.end()) dst = it->second, kv_.erase(it);
  }

  void finish() const {
    check(kv_.empty(), program_, ": unknown option --", kv_.empty() ? "" : kv_.begin()->first, "\n", usage_);
  }

 private:
  std::string program_, command_;
  const char* usage_;
  std::map<std::string, std::string> kv_;
};

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

// Writes `path` via a temporary and a rename, so a run killed mid-write leaves the previous file intact.
template <class Write>
void write_atomically(const std::string& path, Write&& write) {
  const std::string tmp = path + ".tmp";
  write(tmp);
  std::filesystem::rename(tmp, path);
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

// The comma-separated integers of s, at least one, each a whole integer in [lo, hi]; otherwise an error that
// names `what` (e.g. "mint-dci-results: --sizes") and s.
inline std::vector<std::int64_t> parse_int_list(const std::string& s, const std::string& what, std::int64_t lo,
                                                std::int64_t hi) {
  std::vector<std::int64_t> out;
  for (const auto& tok : split_list(s)) {
    std::size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(tok, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    check(used == tok.size() && v >= lo && v <= hi, what, ": expected integers in [", lo, ", ", hi,
          "] separated by commas, got '", s, "'");
    out.push_back(v);
  }
  check(!out.empty(), what, ": the list is empty");
  return out;
}

}  // namespace mint::examples
