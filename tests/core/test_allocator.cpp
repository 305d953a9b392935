// The CPU block cache: large blocks are reused, small ones are not cached, the idle limit holds.
#include <catch2/catch.hpp>

#include "mint/core/tensor.hpp"

using namespace mint;

#if !defined(MINT_NO_ALLOC_CACHE)
TEST_CASE("large tensor storage is reused after it is freed", "[core][allocator]") {
  cpu::empty_cache();
  const float* first;
  {
    auto a = Tensor<>::empty(Shape{1 << 16});  // 256 KiB
    first = a.data();
  }
  REQUIRE(cpu::cached_bytes() == (std::size_t{1} << 18));
  auto b = Tensor<>::empty(Shape{1 << 16});
  REQUIRE(b.data() == first);
  REQUIRE(cpu::cached_bytes() == 0);
  REQUIRE(reinterpret_cast<std::uintptr_t>(b.data()) % 64 == 0);
}

TEST_CASE("small blocks bypass the cache, the idle limit and empty_cache hold", "[core][allocator]") {
  cpu::empty_cache();
  { auto s = Tensor<>::empty(Shape{100}); }
  REQUIRE(cpu::cached_bytes() == 0);
  cpu::set_cache_limit(std::size_t{1} << 18);  // one 256 KiB block
  {
    auto a = Tensor<>::empty(Shape{1 << 16}), b = Tensor<>::empty(Shape{1 << 16});
  }
  REQUIRE(cpu::cached_bytes() == (std::size_t{1} << 18));  // the second went back to the system
  cpu::empty_cache();
  REQUIRE(cpu::cached_bytes() == 0);
  cpu::set_cache_limit(std::size_t{4} << 30);
}

// After a prune every activation changes size: the new sizes must displace the stale ones in a full cache.
TEST_CASE("a full cache gives back the least recently requested sizes first", "[core][allocator]") {
  cpu::empty_cache();
  cpu::set_cache_limit(std::size_t{1} << 19);  // 512 KiB: two blocks of 256 KiB
  {
    auto a = Tensor<>::empty(Shape{1 << 16}), b = Tensor<>::empty(Shape{1 << 16});
  }
  REQUIRE(cpu::cached_bytes() == (std::size_t{1} << 19));
  const float* first = nullptr;
  {
    auto c = Tensor<>::empty(Shape{3 << 14});  // 192 KiB, a new size: freeing it evicts one stale 256 KiB block
    first = c.data();
  }
  REQUIRE(cpu::cached_bytes() == (std::size_t{1} << 18) + (std::size_t{3} << 16));
  {
    auto d = Tensor<>::empty(Shape{3 << 14});
    REQUIRE(d.data() == first);  // the new size is served from the cache
  }
  cpu::empty_cache();
  cpu::set_cache_limit(std::size_t{4} << 30);
}
#endif

TEST_CASE("reused storage is zeroed by Tensor(shape)", "[core][allocator]") {
  {
    auto a = Tensor<>::full(Shape{1 << 16}, 3.0f);
  }
  Tensor<> z(Shape{1 << 16});
  for (std::int64_t i = 0; i < z.numel(); i += 997) REQUIRE(z[i] == 0.0f);
}
