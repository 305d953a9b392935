// mint/core/tensor.hpp -- Tensor<Device>: float32, contiguous, row-major, with shared storage.
//
// Semantics follow PyTorch, which is what mint's users know: copying a Tensor shares its buffer (cheap),
// `clone()` makes an independent copy, `reshape()` returns a view of the same buffer with a new shape.
// Every shape mismatch throws mint::Error naming what was expected and what was given.
#pragma once

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "mint/core/allocator.hpp"
#include "mint/core/device.hpp"
#include "mint/core/error.hpp"
#include "mint/core/shape.hpp"

namespace mint {

// How a backward op writes an input gradient it is given: Add (dx += d/dx, the default: dx may already hold
// another path's gradient, e.g. a residual) or Overwrite (dx = d/dx: dx may be a fresh Tensor::empty, which
// saves the zero fill and, on a GEMM that honours beta = 0, the read of dx).
enum class GradInto { Add, Overwrite };

// Storage for a device tag. The CPU one is 64-byte aligned (one AVX-512 register, one cache line) and comes
// from the block cache in mint/core/allocator.hpp, so iteration after iteration reuses the same memory.
template <class Device>
struct Storage;

template <>
struct Storage<Cpu> {
  static std::shared_ptr<float> allocate(std::int64_t n) {
    if (n == 0) return {};
    std::size_t bytes = static_cast<std::size_t>(n) * sizeof(float);
    auto& cache = cpu::detail::BlockCache::instance();
    auto* p = static_cast<float*>(cache.allocate(bytes));
    return std::shared_ptr<float>(p, [bytes](float* q) { cpu::detail::BlockCache::instance().deallocate(q, bytes); });
  }
  static void fill(float* p, std::int64_t n, float v) { std::fill(p, p + n, v); }
  static void copy(float* dst, const float* src, std::int64_t n) {
    if (n) std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(float));
  }
  // `rows` runs of `width` floats, row r from src + r * src_pitch to dst + r * dst_pitch (pitches in floats).
  static void copy_2d(float* dst, std::int64_t dst_pitch, const float* src, std::int64_t src_pitch, std::int64_t width,
                      std::int64_t rows) {
    for (std::int64_t r = 0; r < rows; ++r) copy(dst + r * dst_pitch, src + r * src_pitch, width);
  }
  // Host <-> storage copies (the CPU storage is host memory).
  static void from_host(float* dst, const float* host, std::int64_t n) { copy(dst, host, n); }
  static void to_host(float* host, const float* src, std::int64_t n) { copy(host, src, n); }
};

template <class Device = Cpu>
class Tensor {
 public:
  using device_type = Device;

  Tensor() = default;
  // Zero-initialised tensor of the given shape.
  explicit Tensor(const Shape& shape) : Tensor(empty(shape)) { fill(0.0f); }

  // Uninitialised tensor: for outputs that an op overwrites completely.
  static Tensor empty(const Shape& shape) {
    Tensor t;
    t.shape_ = shape;
    t.data_ = Storage<Device>::allocate(shape.numel());
    return t;
  }
  static Tensor zeros(const Shape& shape) { return Tensor(shape); }
  static Tensor full(const Shape& shape, float v) {
    Tensor t = empty(shape);
    t.fill(v);
    return t;
  }
  static Tensor from(const Shape& shape, const std::vector<float>& values)
    requires std::is_same_v<Device, Cpu>
  {
    check(static_cast<std::int64_t>(values.size()) == shape.numel(), "Tensor::from: ", values.size(),
          " values given for shape ", shape.str(), " (", shape.numel(), " elements)");
    Tensor t = empty(shape);
    Storage<Device>::copy(t.data(), values.data(), shape.numel());
    return t;
  }

  [[nodiscard]] const Shape& shape() const { return shape_; }
  [[nodiscard]] int rank() const { return shape_.rank(); }
  [[nodiscard]] std::int64_t dim(int i) const {
    check(i >= -rank() && i < rank(), "Tensor::dim: axis ", i, " out of range for shape ", shape_.str());
    return shape_[i < 0 ? i + rank() : i];
  }
  [[nodiscard]] std::int64_t numel() const { return shape_.numel(); }
  [[nodiscard]] bool defined() const { return static_cast<bool>(data_) || (rank() > 0 && numel() == 0); }
  [[nodiscard]] float* data() { return data_.get(); }
  [[nodiscard]] const float* data() const { return data_.get(); }

  float& operator[](std::int64_t i)
    requires std::is_same_v<Device, Cpu>
  {
    return data_.get()[i];
  }
  float operator[](std::int64_t i) const
    requires std::is_same_v<Device, Cpu>
  {
    return data_.get()[i];
  }

  void fill(float v) { Storage<Device>::fill(data(), numel(), v); }

  [[nodiscard]] Tensor clone() const {
    Tensor t = empty(shape_);
    Storage<Device>::copy(t.data(), data(), numel());
    return t;
  }

  // A view of the same buffer with a new shape of the same element count.
  [[nodiscard]] Tensor reshape(const Shape& shape) const {
    check(shape.numel() == numel(), "Tensor::reshape: cannot view shape ", shape_.str(), " (", numel(),
          " elements) as ", shape.str(), " (", shape.numel(), " elements)");
    Tensor t = *this;
    t.shape_ = shape;
    return t;
  }

 private:
  Shape shape_;
  std::shared_ptr<float> data_;
};

// Throws naming `what`, the expected shape and the given one.
template <class D>
void check_shape(const Tensor<D>& t, const Shape& expected, const char* what) {
  check(t.shape() == expected, what, ": expected shape ", expected.str(), ", got ", t.shape().str());
}

template <class D>
void check_rank(const Tensor<D>& t, int rank, const char* what) {
  check(t.rank() == rank, what, ": expected a rank-", rank, " tensor, got shape ", t.shape().str());
}

// Copies between host memory and any backend (for Cpu, a clone). Synchronous: the result is ready at return.
template <class Device>
Tensor<Device> to_backend(const Tensor<Cpu>& t) {
  auto d = Tensor<Device>::empty(t.shape());
  Storage<Device>::from_host(d.data(), t.data(), t.numel());
  return d;
}
template <class Device>
Tensor<Cpu> to_cpu(const Tensor<Device>& t) {
  auto h = Tensor<Cpu>::empty(t.shape());
  Storage<Device>::to_host(h.data(), t.data(), t.numel());
  return h;
}

// dst[d0 + r * dst_pitch + j] = src[s0 + r * src_pitch + j] for r < rows, j < width (floats; one backend).
template <class Device>
void copy_rows(Tensor<Device>& dst, std::int64_t d0, std::int64_t dst_pitch, const Tensor<Device>& src, std::int64_t s0,
               std::int64_t src_pitch, std::int64_t width, std::int64_t rows) {
  check(rows >= 0 && width >= 0 && d0 >= 0 && s0 >= 0 && width <= dst_pitch && width <= src_pitch &&
            d0 + (rows > 0 ? (rows - 1) * dst_pitch + width : 0) <= dst.numel() &&
            s0 + (rows > 0 ? (rows - 1) * src_pitch + width : 0) <= src.numel(),
        "copy_rows: ", rows, " rows of ", width, " (pitches ", dst_pitch, ", ", src_pitch, ") do not fit ",
        dst.shape().str(), " <- ", src.shape().str());
  if (rows && width) Storage<Device>::copy_2d(dst.data() + d0, dst_pitch, src.data() + s0, src_pitch, width, rows);
}

// Throws if any element is NaN or infinite, naming `what` and the first bad index.
inline void check_finite(const Tensor<Cpu>& t, const char* what) {
  const float* p = t.data();
  std::uint32_t bad = 0;  // exponent bits all ones <=> NaN or Inf; branch-free, so the scan vectorises
#pragma omp simd reduction(| : bad)
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    std::uint32_t u;
    std::memcpy(&u, p + i, sizeof u);
    bad |= static_cast<std::uint32_t>((u & 0x7f800000u) == 0x7f800000u);
  }
  if (!bad) return;
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    if (!std::isfinite(p[i]))
      throw Error(detail::concat(what, ": non-finite value ", p[i], " at flat index ", i, " of shape ",
                                 t.shape().str()));
  }
}

}  // namespace mint
