// mint/backend/cuda/allocator.hpp -- the caching device allocator behind Tensor<Cuda> storage.
//
// cudaMalloc/cudaFree synchronise the device and cost tens of microseconds, so, like the CPU BlockCache
// (mint/core/allocator.hpp), freed blocks go on free lists keyed by their rounded size and are handed out
// again. Sizes round up to 512 B below 1 MiB and to 2 MiB above (so activations of varying kept-token counts
// still share blocks). Reuse is safe without events because every mint op runs on the one stream of
// cuda::stream() (see runtime.hpp). If cudaMalloc runs out of memory, the idle blocks are freed and it is tried
// once more. Like the CPU cache, the cache object is never destroyed (tensors in statics die late).
//
// CUDA graphs: a captured graph replays kernels on the exact addresses they had during capture, so those blocks
// must not go to other work while the graph lives. While a GraphPool captures, every block allocated or freed
// belongs to the pool; a pool block freed later returns to the pool, never to the shared free lists, until the
// pool is released (then its idle blocks join the shared lists and its live ones return there when freed).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
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

  struct Pool {
    std::unordered_map<std::size_t, std::vector<void*>> free;  // idle pool blocks by rounded size
    std::unordered_map<void*, std::size_t> owned;               // every block of the pool
    std::vector<std::shared_ptr<void>> keep;                    // uploads the graph reads (UploadCache)
  };

  // A device block of at least `bytes` (the rounded size actually reserved is written back to `bytes`).
  void* allocate(std::size_t& bytes) {
    bytes = round(std::max<std::size_t>(bytes, 1));
    (void)stream();  // a clear "no usable GPU" error before any bookkeeping or cudaMalloc
    {
      std::lock_guard<std::mutex> lock(mutex_);
      live_ += bytes;
      peak_ = std::max(peak_, live_);
      if (capturing_) {  // the capturing pool's own idle blocks first
        auto pit = capturing_->free.find(bytes);
        if (pit != capturing_->free.end() && !pit->second.empty()) {
          void* p = pit->second.back();
          pit->second.pop_back();
          cached_ -= bytes;
          ++hits_;
          return p;
        }
      }
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= bytes;
        ++hits_;
        adopt(p, bytes);
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
    {
      std::lock_guard<std::mutex> lock(mutex_);
      adopt(p, bytes);
    }
    return p;
  }

  void deallocate(void* p, std::size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    live_ -= bytes;
    cached_ += bytes;
    adopt(p, bytes);
    auto o = owner_.find(p);
    if (o != owner_.end()) {
      o->second->free[bytes].push_back(p);
      return;
    }
    free_[bytes].push_back(p);
  }

  // From now until end_capture(), blocks allocated or freed belong to `pool` (one pool captures at a time).
  void begin_capture(Pool* pool) {
    std::lock_guard<std::mutex> lock(mutex_);
    check(!capturing_, "cuda allocator: a graph pool is already capturing");
    capturing_ = pool;
  }
  void end_capture() {
    std::lock_guard<std::mutex> lock(mutex_);
    capturing_ = nullptr;
  }
  // The pool's graph is gone: its idle blocks join the shared free lists, its live blocks return there when freed.
  void release(Pool* pool) {
    std::vector<std::shared_ptr<void>> dying;  // dropped after the lock: an upload's buffer frees into this cache
    std::lock_guard<std::mutex> lock(mutex_);
    dying.swap(pool->keep);
    if (capturing_ == pool) capturing_ = nullptr;
    for (auto& [bytes, blocks] : pool->free)
      for (void* p : blocks) free_[bytes].push_back(p);
    for (const auto& [p, bytes] : pool->owned) owner_.erase(p);
    pool->free.clear();
    pool->owned.clear();
  }
  [[nodiscard]] bool capturing() {
    std::lock_guard<std::mutex> lock(mutex_);
    return capturing_ != nullptr;
  }
  // While a pool captures, it keeps `p` alive until it is released.
  void keep_alive(std::shared_ptr<void> p) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (capturing_) capturing_->keep.push_back(std::move(p));
  }

  // Frees every idle block (waits for the stream first: a block may still be read by a queued kernel).
  // Not during a capture (no synchronisation can be captured): then it frees nothing.
  void empty() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (free_.empty() || capturing_) return;
    (void)cudaStreamSynchronize(stream());
    for (auto& [bytes, blocks] : free_)
      for (void* p : blocks) {
        (void)cudaFree(p);  // (pool blocks are never on these lists)
        cached_ -= bytes;
      }
    free_.clear();
  }

  // Starts a new peak measurement at the bytes live now.
  void reset_peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    peak_ = live_;
  }

  struct Stats {
    std::size_t live, peak, cached, mallocs, hits;
  };
  Stats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {live_, peak_, cached_, mallocs_, hits_};
  }

 private:
  // While a pool captures, block p (of the rounded size) becomes the pool's. Call with mutex_ held.
  void adopt(void* p, std::size_t bytes) {
    if (!capturing_ || owner_.count(p)) return;
    owner_[p] = capturing_;
    capturing_->owned[p] = bytes;
  }

  std::mutex mutex_;
  std::unordered_map<std::size_t, std::vector<void*>> free_;
  Pool* capturing_ = nullptr;
  std::unordered_map<void*, Pool*> owner_;  // blocks that belong to a live graph pool
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

// Read-only device copies of small int32 arrays (keep sets, labels) by content: uploading the same values again
// returns the same device pointer without a copy (a compare of n ints on the host). A CUDA graph replays on
// the pointer it captured, so a capturing pool keeps the entries it used alive, and an upload that would need a
// copy during a capture (a pageable host copy cannot be captured) throws: run one iteration uncaptured first.
class UploadCache {
 public:
  static UploadCache& instance() {
    static auto* c = new UploadCache;
    return *c;
  }

  const std::int32_t* get(const std::int32_t* data, std::size_t n) {
    std::shared_ptr<Entry> hit;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++clock_;
      for (auto& e : entries_)
        if (e->host.size() == n && (n == 0 || std::memcmp(e->host.data(), data, n * sizeof(std::int32_t)) == 0)) {
          e->used = clock_;
          hit = e;
          break;
        }
    }
    auto& cache = DeviceCache::instance();
    if (!hit) {
      check(!cache.capturing(), "cuda upload cache: a new index/label array during CUDA graph capture (a host copy "
                                "cannot be captured); run the same iteration once uncaptured first");
      auto e = std::make_shared<Entry>();
      e->host.assign(data, data + n);
      e->dev = std::make_unique<DeviceBuffer>(std::max<std::size_t>(n, 1) * sizeof(std::int32_t));
      if (n)
        MINT_CUDA_CHECK(cudaMemcpyAsync(e->dev->as<std::int32_t>(), e->host.data(), n * sizeof(std::int32_t),
                                        cudaMemcpyHostToDevice, stream()));  // the entry owns the host copy
      std::lock_guard<std::mutex> lock(mutex_);
      e->used = clock_;
      if (entries_.size() >= kCapacity) {  // evict the least recently used (a graph's pool may still hold it)
        auto lru = std::min_element(entries_.begin(), entries_.end(),
                                    [](const auto& a, const auto& b) { return a->used < b->used; });
        entries_.erase(lru);
      }
      entries_.push_back(e);
      hit = e;
    }
    cache.keep_alive(hit);
    return hit->dev->as<std::int32_t>();
  }

 private:
  struct Entry {
    std::vector<std::int32_t> host;
    std::unique_ptr<DeviceBuffer> dev;
    std::uint64_t used = 0;
  };
  static constexpr std::size_t kCapacity = 16;
  std::mutex mutex_;
  std::vector<std::shared_ptr<Entry>> entries_;
  std::uint64_t clock_ = 0;
};

}  // namespace detail

// Frees every idle cached device block (tensors in use are untouched).
inline void empty_cache() { detail::DeviceCache::instance().empty(); }
// Device bytes in live tensors, their peak, idle cached bytes, and how many requests went to cudaMalloc / were
// served from the cache.
inline detail::DeviceCache::Stats memory_stats() { return detail::DeviceCache::instance().stats(); }
// The peak of memory_stats() starts again from the bytes live now.
inline void reset_peak_memory() { detail::DeviceCache::instance().reset_peak(); }

}  // namespace mint::cuda
