// mint/backend/cuda/allocator.hpp -- the caching device allocator behind Tensor<Cuda> storage.
//
// cudaMalloc/cudaFree synchronise the device and cost tens of microseconds, so, like the CPU BlockCache
// (mint/core/allocator.hpp), freed blocks go on free lists keyed by their rounded size and are handed out
// again. Sizes round up to 512 B below 1 MiB and to 2 MiB above (so activations of varying kept-token counts
// still share blocks). Reuse is safe without events because every mint op runs on the one stream of
// cuda::stream() (see runtime.hpp). If cudaMalloc runs out of memory, the idle blocks are freed and it is tried
// once more. Like the CPU cache, the cache object is never destroyed (tensors in statics die late).
#pragma once

#include <algorithm>
#include <cstddef>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "mint/backend/cuda/runtime.hpp"

namespace mint::cuda {

namespace detail {

class DeviceCache {
 public:
  static DeviceCache& instance() {
    static auto* cache = new DeviceCache;
    return *cache;
  }

  static std::size_t round(std::size_t bytes) {
    constexpr std::size_t kSmall = 512, kLarge = std::size_t{2} << 20, kSplit = std::size_t{1} << 20;
    return bytes < kSplit ? (bytes + kSmall - 1) / kSmall * kSmall : (bytes + kLarge - 1) / kLarge * kLarge;
  }

  // A device block of at least `bytes` (the rounded size actually reserved is written back to `bytes`).
  void* allocate(std::size_t& bytes) {
    bytes = round(std::max<std::size_t>(bytes, 1));
    (void)stream();  // a clear "no usable GPU" error before any bookkeeping or cudaMalloc
    {
      std::lock_guard<std::mutex> lock(mutex_);
      live_ += bytes;
      peak_ = std::max(peak_, live_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= bytes;
        ++hits_;
        return p;
      }
      ++mallocs_;
    }
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, bytes);
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      empty();
      err = cudaMalloc(&p, bytes);
    }
    if (err != cudaSuccess) {
      std::lock_guard<std::mutex> lock(mutex_);
      live_ -= bytes;
    }
    MINT_CUDA_CHECK(err);
    return p;
  }

  void deallocate(void* p, std::size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    live_ -= bytes;
    free_[bytes].push_back(p);
    cached_ += bytes;
  }

  // Frees every idle block (waits for the stream first: a block may still be read by a queued kernel).
  void empty() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (free_.empty()) return;
    (void)cudaStreamSynchronize(stream());
    for (auto& [bytes, blocks] : free_)
      for (void* p : blocks) (void)cudaFree(p);
    free_.clear();
    cached_ = 0;
  }

  struct Stats {
    std::size_t live, peak, cached, mallocs, hits;
  };
  Stats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {live_, peak_, cached_, mallocs_, hits_};
  }

 private:
  std::mutex mutex_;
  std::unordered_map<std::size_t, std::vector<void*>> free_;
  std::size_t live_ = 0, peak_ = 0, cached_ = 0, mallocs_ = 0, hits_ = 0;
};

// An untyped device buffer from the cache (index lists, reduction scratch), returned on destruction.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t bytes) : bytes_(bytes), p_(DeviceCache::instance().allocate(bytes_)) {}
  ~DeviceBuffer() { DeviceCache::instance().deallocate(p_, bytes_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <class T>
  T* as() const { return static_cast<T*>(p_); }

 private:
  std::size_t bytes_;
  void* p_;
};

}  // namespace detail

// Frees every idle cached device block (tensors in use are untouched).
inline void empty_cache() { detail::DeviceCache::instance().empty(); }
// Device bytes in live tensors, their peak, idle cached bytes, and how many requests went to cudaMalloc / were
// served from the cache.
inline detail::DeviceCache::Stats memory_stats() { return detail::DeviceCache::instance().stats(); }

}  // namespace mint::cuda
