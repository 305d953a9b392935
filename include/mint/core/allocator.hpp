// mint/core/allocator.hpp -- the CPU block cache behind Tensor<Cpu> storage.
//
// An inversion or training loop allocates the same activation sizes every iteration. glibc returns large
// blocks to the kernel (mmap/trim), so each iteration page-faulted fresh, kernel-zeroed pages: 25-29% of an
// iteration in the profile (docs/performance.md). Blocks of 64 KiB and more are therefore kept on free lists
// per rounded size and handed out again; smaller ones go straight to operator new (glibc's bins serve them well).
// Idle cached bytes are capped (cpu::set_cache_limit); cpu::empty_cache() gives everything back.
// When a freed block would pass the cap, idle blocks of the sizes requested least recently are given back first:
// after an SMI prune or a PRI detachment every activation changes size, and the old sizes would otherwise fill
// the cap for good, so that every block of the new sizes went back to the system and page-faulted again each
// iteration (SMI at 50% on DeiT-Tiny at batch 128, 4.7 GB of activations: docs/performance.md).
// The cap is the larger of 4 GiB and a quarter of physical memory, so one iteration's activations fit.
// Defining MINT_NO_ALLOC_CACHE (the sanitizer builds do) turns the cache off, so ASan sees every free.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#if defined(__unix__)
#include <unistd.h>
#endif

namespace mint::cpu {

namespace detail {

class BlockCache {
 public:
  static constexpr std::size_t kAlign = 64;
  static constexpr std::size_t kMinCached = 64 * 1024;

  // Never destroyed: tensors held in statics may be freed during static destruction.
  static BlockCache& instance() {
    static auto* cache = new BlockCache;
    return *cache;
  }

  // A block of at least `bytes` (the size actually reserved is written to `bytes`).
  void* allocate(std::size_t& bytes) {
    if (bytes >= kMinCached) bytes = (bytes + 4095) / 4096 * 4096;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      live_ += bytes;
      peak_ = std::max(peak_, live_);
#if !defined(MINT_NO_ALLOC_CACHE)
      if (bytes >= kMinCached) last_request_[bytes] = ++tick_;
      auto it = bytes >= kMinCached ? free_.find(bytes) : free_.end();
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= bytes;
        return p;
      }
#endif
    }
    return ::operator new(bytes, std::align_val_t{kAlign});
  }

  void deallocate(void* p, std::size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      live_ -= bytes;
    }
#if !defined(MINT_NO_ALLOC_CACHE)
    if (bytes >= kMinCached) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + bytes > limit_) evict_stale(bytes, cached_ + bytes - limit_);
      if (cached_ + bytes <= limit_) {
        free_[bytes].push_back(p);
        cached_ += bytes;
        return;
      }
    }
#endif
    ::operator delete(p, std::align_val_t{kAlign});
  }

  void empty() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [bytes, blocks] : free_)
      for (void* p : blocks) ::operator delete(p, std::align_val_t{kAlign});
    free_.clear();
    last_request_.clear();
    cached_ = 0;
  }

  std::size_t cached_bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }

  // Bytes in tensors alive now, and the most alive at once since the last reset_peak().
  std::size_t live_bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return live_;
  }
  std::size_t peak_bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return peak_;
  }
  void reset_peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    peak_ = live_;
  }

  void set_limit(std::size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    limit_ = bytes;
  }

 private:
  // Gives back at least `need` idle bytes held in sizes other than `keep`, least recently requested size first.
  // Called with the mutex held.
  void evict_stale(std::size_t keep, std::size_t need) {
    std::vector<std::pair<std::uint64_t, std::size_t>> order;  // (last request, size)
    for (const auto& [size, blocks] : free_)
      if (size != keep && !blocks.empty()) order.emplace_back(last_request_[size], size);
    std::sort(order.begin(), order.end());
    std::size_t freed = 0;
    for (const auto& [when, size] : order) {
      auto& blocks = free_[size];
      while (!blocks.empty() && freed < need) {
        ::operator delete(blocks.back(), std::align_val_t{kAlign});
        blocks.pop_back();
        cached_ -= size;
        freed += size;
      }
      if (freed >= need) return;
    }
  }

  std::mutex mutex_;
  std::unordered_map<std::size_t, std::vector<void*>> free_;
  std::unordered_map<std::size_t, std::uint64_t> last_request_;  // size -> tick of its latest allocate()
  [[maybe_unused]] std::uint64_t tick_ = 0;  // unused under MINT_NO_ALLOC_CACHE (clang warns)
  std::size_t cached_ = 0;
  std::size_t live_ = 0, peak_ = 0;
  std::size_t limit_ = default_limit();

  static std::size_t default_limit() {
    std::size_t limit = std::size_t{4} << 30;
#if defined(__unix__)
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) limit = std::max(limit, static_cast<std::size_t>(pages) * static_cast<std::size_t>(page) / 4);
#endif
    return limit;
  }
};

}  // namespace detail

// Frees every idle cached block (tensors in use are untouched).
inline void empty_cache() { detail::BlockCache::instance().empty(); }
// Bytes held in idle cached blocks.
inline std::size_t cached_bytes() { return detail::BlockCache::instance().cached_bytes(); }
// Tensor memory alive now, and the peak since reset_peak_bytes() (what "peak activation memory" reports).
inline std::size_t live_bytes() { return detail::BlockCache::instance().live_bytes(); }
inline std::size_t peak_bytes() { return detail::BlockCache::instance().peak_bytes(); }
inline void reset_peak_bytes() { detail::BlockCache::instance().reset_peak(); }
// The most idle bytes the cache keeps; blocks freed beyond it go back to the system.
inline void set_cache_limit(std::size_t bytes) { detail::BlockCache::instance().set_limit(bytes); }

}  // namespace mint::cpu
