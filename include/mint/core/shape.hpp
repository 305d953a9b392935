// mint/core/shape.hpp -- a small fixed-capacity shape (rank <= 6), trivially copyable so it can be passed
// to CUDA kernels by value.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>

#include "mint/core/error.hpp"

namespace mint {

class Shape {
 public:
  static constexpr int kMaxRank = 6;

  Shape() = default;
  Shape(std::initializer_list<std::int64_t> dims) {
    check(dims.size() <= kMaxRank, "Shape: rank ", dims.size(), " exceeds the maximum ", kMaxRank);
    for (auto d : dims) push_back(d);
  }
  template <class It>
  Shape(It first, It last) {
    for (; first != last; ++first) push_back(static_cast<std::int64_t>(*first));
  }

  void push_back(std::int64_t d) {
    check(rank_ < kMaxRank, "Shape: rank exceeds the maximum ", kMaxRank);
    check(d >= 0, "Shape: negative dimension ", d);
    dims_[rank_++] = d;
  }

  [[nodiscard]] int rank() const { return rank_; }
  [[nodiscard]] std::int64_t operator[](int i) const { return dims_[i]; }
  [[nodiscard]] std::int64_t& operator[](int i) { return dims_[i]; }
  [[nodiscard]] std::int64_t numel() const {
    std::int64_t n = 1;
    for (int i = 0; i < rank_; ++i) n *= dims_[i];
    return n;
  }
  [[nodiscard]] const std::int64_t* begin() const { return dims_.data(); }
  [[nodiscard]] const std::int64_t* end() const { return dims_.data() + rank_; }

  friend bool operator==(const Shape& a, const Shape& b) {
    if (a.rank_ != b.rank_) return false;
    for (int i = 0; i < a.rank_; ++i)
      if (a.dims_[i] != b.dims_[i]) return false;
    return true;
  }

  [[nodiscard]] std::string str() const {
    std::string s = "[";
    for (int i = 0; i < rank_; ++i) s += (i ? ", " : "") + std::to_string(dims_[i]);
    return s + "]";
  }

 private:
  std::array<std::int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

inline std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.str(); }

namespace detail {

// out = a * b for non-negative a, b; returns false (leaving out alone) when the product overflows int64. Sizes
// read from files or inferred from them go through this before anything is allocated for them.
inline bool checked_mul(std::int64_t a, std::int64_t b, std::int64_t& out) {
  if (a != 0 && b > std::numeric_limits<std::int64_t>::max() / a) return false;
  out = a * b;
  return true;
}

}  // namespace detail

}  // namespace mint
