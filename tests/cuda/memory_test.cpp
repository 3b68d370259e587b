// The caching device allocator: freed blocks are reused by requests of the same size class on the same
// stream without another cudaMalloc, the statistics add up, empty_cache gives the cached blocks back.
// Capture pools: the blocks used while a pool is begun go to nobody else until it is released, also those
// freed after it ended, and then become ordinary cached blocks.
// Asynchronous transfers: round trips through pinned memory with kernels in between, read after a fence;
// fence tickets increase, old ones pass after the pool recycles their events, and another thread can wait.
// Runs on the GPU and, emulated, in CI (where everything completes at once, so only the GPU run shows a
// fence that does not wait). (The engine's per-step Arena over this allocator is tested with the engine:
// tests/engine/tensor_test.cpp, tests/device/.)
#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <thread>
#include <vector>

#include "kernels/cuda/device.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/memory.h"
#include "tests/cuda/parity.h"

namespace raisin {
namespace {

using cuda::CachingAllocator;

// The allocator only uses a stream as a key, never passes it to CUDA: two made-up handles stand for
// two streams.
const cudaStream_t kStreamA = reinterpret_cast<cudaStream_t>(uintptr_t(0x1000));
const cudaStream_t kStreamB = reinterpret_cast<cudaStream_t>(uintptr_t(0x2000));

using CudaMemory = CudaParity;  // the same GPU-or-skip rule

// Writes a recognisable pattern into a device block and reads it back.
void fill_device(void* ptr, size_t floats, float first) {
  std::vector<float> host(floats);
  for (size_t i = 0; i < floats; ++i) host[i] = first + float(i);
  RAISIN_CUDA_CHECK(cudaMemcpy(ptr, host.data(), floats * sizeof(float), cudaMemcpyHostToDevice));
}
bool holds_pattern(const void* ptr, size_t floats, float first) {
  std::vector<float> host(floats);
  RAISIN_CUDA_CHECK(cudaMemcpy(host.data(), ptr, floats * sizeof(float), cudaMemcpyDeviceToHost));
  for (size_t i = 0; i < floats; ++i)
    if (host[i] != first + float(i)) return false;
  return true;
}

TEST(CudaMemorySizeClass, RoundsUpByAtMostAQuarter) {
  EXPECT_EQ(CachingAllocator::size_class(1), 512u);
  EXPECT_EQ(CachingAllocator::size_class(512), 512u);
  EXPECT_EQ(CachingAllocator::size_class(513), 1024u);
  EXPECT_EQ(CachingAllocator::size_class(1 << 20), size_t(1) << 20);
  EXPECT_EQ(CachingAllocator::size_class((1 << 20) + 1), size_t(5) << 18);   // 1.25 MiB
  EXPECT_EQ(CachingAllocator::size_class(size_t(3) << 20), size_t(3) << 20);  // 3 MiB is a class
  EXPECT_EQ(CachingAllocator::size_class((size_t(4) << 20) + 1), size_t(5) << 20);
  size_t previous = 0;
  for (size_t bytes = 1; bytes < (size_t(64) << 20); bytes += bytes / 7 + 1) {
    const size_t size = CachingAllocator::size_class(bytes);
    EXPECT_GE(size, bytes);
    EXPECT_EQ(size % 512, 0u) << bytes;
    EXPECT_LE(size, bytes + bytes / 4 + 511) << bytes;  // ≤ 25% over (≤ 511 bytes up to 1 MiB)
    EXPECT_GE(size, previous) << bytes;                 // classes grow with the request
    previous = size;
  }
}

TEST_F(CudaMemory, ReusesAFreedBlockOfTheSameClassAndStream) {
  CachingAllocator allocator;
  void* a = allocator.allocate(1000, kStreamA);
  fill_device(a, 250, 1.0f);  // a real device block
  EXPECT_TRUE(holds_pattern(a, 250, 1.0f));
  allocator.free(a);
  EXPECT_EQ(allocator.allocate(700, kStreamA), a);  // 700 and 1000 bytes share the 1 KiB class
  EXPECT_EQ(allocator.stats().device_mallocs, 1);

  void* other_class = allocator.allocate(5000, kStreamA);
  EXPECT_NE(other_class, a);
  allocator.free(other_class);
  void* other_stream = allocator.allocate(5000, kStreamB);  // the cached one belongs to stream A
  EXPECT_NE(other_stream, other_class);
  EXPECT_EQ(allocator.stats().device_mallocs, 3);

  EXPECT_EQ(allocator.allocate(0, kStreamA), nullptr);
  allocator.free(nullptr);
}

TEST_F(CudaMemory, StatisticsAddUpAndEmptyCacheKeepsBlocksInUse) {
  CachingAllocator allocator;
  void* a = allocator.allocate(1000, kStreamA);          // 1024
  void* b = allocator.allocate(3 << 20, kStreamA);       // 3 MiB
  void* c = allocator.allocate((1 << 20) + 1, kStreamB); // 1.25 MiB
  const int64_t all = 1024 + (3 << 20) + (5 << 18);
  cuda::AllocatorStats stats = allocator.stats();
  EXPECT_EQ(stats.bytes_in_use, all);
  EXPECT_EQ(stats.peak_bytes_in_use, all);
  EXPECT_EQ(stats.bytes_cached, 0);
  EXPECT_EQ(stats.device_mallocs, 3);

  allocator.free(b);
  allocator.free(c);
  stats = allocator.stats();
  EXPECT_EQ(stats.bytes_in_use, 1024);
  EXPECT_EQ(stats.bytes_cached, (3 << 20) + (5 << 18));
  EXPECT_EQ(stats.peak_bytes_in_use, all);

  fill_device(a, 256, 7.0f);
  allocator.empty_cache();
  stats = allocator.stats();
  EXPECT_EQ(stats.bytes_cached, 0);
  EXPECT_EQ(stats.device_frees, 2);
  EXPECT_EQ(stats.bytes_in_use, 1024);
  EXPECT_TRUE(holds_pattern(a, 256, 7.0f));  // the block in use survived

  void* again = allocator.allocate(3 << 20, kStreamA);  // nothing cached now: a fresh cudaMalloc
  EXPECT_EQ(allocator.stats().device_mallocs, 4);
  allocator.free(again);
  allocator.free(a);
  EXPECT_EQ(allocator.stats().bytes_in_use, 0);
}

TEST_F(CudaMemory, FreeingAForeignPointerIsAnError) {
  CachingAllocator allocator;
  void* a = allocator.allocate(64, kStreamA);
  allocator.free(a);
  EXPECT_THROW(allocator.free(a), std::invalid_argument);  // twice
  int on_the_host = 0;
  EXPECT_THROW(allocator.free(&on_the_host), std::invalid_argument);
}

TEST_F(CudaMemory, BlocksUsedInACapturePoolGoToNobodyElseUntilItIsReleased) {
  CachingAllocator allocator;
  void* cached = allocator.allocate(1000, kStreamA);
  allocator.free(cached);

  const uint64_t pool = allocator.begin_pool();
  void* from_cache = allocator.allocate(1000, kStreamA);  // the general cache serves a pool too
  EXPECT_EQ(from_cache, cached);
  void* scratch = allocator.allocate(1000, kStreamA);
  allocator.free(scratch);                                // into the pool's free list
  EXPECT_EQ(allocator.allocate(900, kStreamA), scratch);  // which the pool reuses first
  allocator.free(scratch);
  void* kept = allocator.allocate(5000, kStreamA);  // still in use when the pool ends
  allocator.end_pool();
  cuda::AllocatorStats stats = allocator.stats();
  EXPECT_EQ(stats.bytes_pooled, 1024);
  EXPECT_EQ(stats.bytes_cached, 0);
  EXPECT_EQ(stats.bytes_in_use, 1024 + 5120);

  void* outside = allocator.allocate(1000, kStreamA);  // the pool's free block is not handed out
  EXPECT_NE(outside, scratch);
  allocator.free(from_cache);  // tagged blocks freed after end_pool go back to the pool
  allocator.free(kept);
  stats = allocator.stats();
  EXPECT_EQ(stats.bytes_pooled, 1024 + 1024 + 5120);
  EXPECT_EQ(stats.bytes_cached, 0);
  void* outside_too = allocator.allocate(1000, kStreamA);
  EXPECT_NE(outside_too, scratch);
  EXPECT_NE(outside_too, from_cache);
  EXPECT_NE(allocator.allocate(5000, kStreamA), kept);
  const int64_t mallocs = allocator.stats().device_mallocs;

  allocator.release_pool(pool);  // its graph is gone: ordinary cached blocks now
  stats = allocator.stats();
  EXPECT_EQ(stats.bytes_pooled, 0);
  EXPECT_EQ(stats.bytes_cached, 1024 + 1024 + 5120);
  void* first = allocator.allocate(1000, kStreamA);
  void* second = allocator.allocate(1000, kStreamA);
  EXPECT_TRUE((first == scratch && second == from_cache) || (first == from_cache && second == scratch));
  EXPECT_EQ(allocator.allocate(5000, kStreamA), kept);
  EXPECT_EQ(allocator.stats().device_mallocs, mallocs);
  EXPECT_EQ(allocator.stats().bytes_cached, 0);
}

TEST_F(CudaMemory, ATaggedBlockFreedAfterItsPoolIsReleasedIsCachedForAll) {
  CachingAllocator allocator;
  const uint64_t first = allocator.begin_pool();
  void* output = allocator.allocate(2000, kStreamA);  // e.g. a graph's output, freed after the graph
  void* scratch = allocator.allocate(3000, kStreamA);
  allocator.free(scratch);
  allocator.end_pool();

  const uint64_t second = allocator.begin_pool();  // another graph's pool does not take the first's blocks
  EXPECT_NE(second, first);
  EXPECT_NE(allocator.allocate(3000, kStreamA), scratch);
  allocator.end_pool();

  allocator.release_pool(first);
  allocator.free(output);
  const cuda::AllocatorStats stats = allocator.stats();
  EXPECT_EQ(stats.bytes_pooled, 0);  // the second pool holds nothing freed
  EXPECT_EQ(stats.bytes_cached, 2048 + 3072);
  EXPECT_EQ(allocator.allocate(2000, kStreamA), output);
  EXPECT_EQ(allocator.allocate(3000, kStreamA), scratch);
  allocator.release_pool(second);
}

TEST_F(CudaMemory, MisusedPoolsAreErrors) {
  CachingAllocator allocator;
  EXPECT_THROW(allocator.end_pool(), std::logic_error);  // none begun
  const uint64_t pool = allocator.begin_pool();
  EXPECT_THROW(allocator.begin_pool(), std::logic_error);     // pools do not nest
  EXPECT_THROW(allocator.release_pool(pool), std::logic_error);  // not ended
  allocator.end_pool();
  allocator.release_pool(pool);
  EXPECT_THROW(allocator.release_pool(pool), std::invalid_argument);  // twice
  EXPECT_THROW(allocator.release_pool(pool + 1), std::invalid_argument);  // never begun
}

TEST_F(CudaMemory, DeviceAllocatorIsOnePerDevice) {
  EXPECT_EQ(&cuda::device_allocator(), &cuda::device_allocator());
  void* p = cuda::device_allocator().allocate(4096, cuda::current_stream());
  EXPECT_NE(p, nullptr);
  cuda::device_allocator().free(p);
}

// ---- asynchronous transfers and fences ----

#if defined(RAISIN_CUDA_EMULATED) && RAISIN_CUDA_EMULATED
constexpr bool kEmulated = true;
#else
constexpr bool kEmulated = false;
#endif

// A pinned host buffer of n floats, given back at the end of the scope.
struct PinnedFloats {
  explicit PinnedFloats(size_t n) : ptr(static_cast<float*>(cuda::allocate_pinned(n * sizeof(float)))) {}
  ~PinnedFloats() { cuda::free_pinned(ptr); }
  PinnedFloats(const PinnedFloats&) = delete;
  PinnedFloats& operator=(const PinnedFloats&) = delete;
  float* ptr;
};

TEST_F(CudaMemory, AsyncRoundTripThroughPinnedMemoryIsReadAfterAFence) {
  const int64_t n = (1 << 20) + 3;
  PinnedFloats up(n), down(n);
  for (int64_t i = 0; i < n; ++i) up.ptr[i] = float(i % 1000) * 0.5f;
  for (int64_t i = 0; i < n; ++i) down.ptr[i] = -1.0f;
  DeviceBuffer<float> x{size_t(n)}, y{size_t(n)};
  cuda::copy_to_device_async(x.ptr, up.ptr, n * sizeof(float));
  cuda::fill(n, 1.0f, y.ptr);
  cuda::axpy(n, 2.0f, x.ptr, y.ptr);  // y = 1 + 2·x, exact
  cuda::copy_to_host_async(down.ptr, y.ptr, n * sizeof(float));
  cuda::fence_wait(cuda::fence());
  int64_t wrong = 0;
  for (int64_t i = 0; i < n; ++i) wrong += down.ptr[i] != 1.0f + float(i % 1000);
  EXPECT_EQ(wrong, 0) << "elements not written back before the fence passed";
  cuda::copy_to_device_async(x.ptr, up.ptr, 0);  // empty copies are allowed
  cuda::copy_to_host_async(down.ptr, y.ptr, 0);
  EXPECT_EQ(cuda::allocate_pinned(0), nullptr);
  cuda::free_pinned(nullptr);
}

TEST_F(CudaMemory, FenceTicketsIncreaseAndOldOnesPassWhenEventsAreRecycled) {
  cuda::FencePool pool(4);
  EXPECT_EQ(pool.passed(), 0u);
  pool.wait(0);  // "no fence": returns at once
  uint64_t previous = 0;
  for (int k = 0; k < 100; ++k) {
    const uint64_t ticket = pool.record(cuda::current_stream());
    EXPECT_EQ(ticket, previous + 1);
    previous = ticket;
  }
  EXPECT_EQ(pool.passed(), 96u);  // each record past the 4th retired the oldest pending ticket
  pool.wait(1);                    // long retired
  pool.wait(97);                   // still pending: waits on its own event
  pool.wait(100);
  EXPECT_THROW(pool.wait(101), std::invalid_argument);  // never handed out
  EXPECT_THROW(cuda::FencePool(0), std::invalid_argument);

  // The process's pool, through the functions the backend table uses.
  const uint64_t first = cuda::fence();
  for (int k = 0; k < 200; ++k) EXPECT_GT(cuda::fence(), first);
  cuda::fence_wait(first);
  EXPECT_GE(cuda::fence_pool().passed(), first);  // recycled by the 200 fences after it
}

TEST_F(CudaMemory, AnotherThreadWaitsForAFenceAndReadsTheResult) {
  // On the GPU enough queued work that a fence which did not wait would show; emulated, a little.
  const int64_t n = kEmulated ? 4099 : int64_t(1) << 24;
  const int rounds = kEmulated ? 3 : 40;
  PinnedFloats down(n);
  for (int64_t i = 0; i < n; ++i) down.ptr[i] = -1.0f;
  DeviceBuffer<float> ones{std::vector<float>(size_t(n), 1.0f)}, y{size_t(n)};
  cuda::fill(n, 0.0f, y.ptr);
  for (int r = 0; r < rounds; ++r) cuda::axpy(n, 1.0f, ones.ptr, y.ptr);
  cuda::copy_to_host_async(down.ptr, y.ptr, n * sizeof(float));
  const uint64_t ticket = cuda::fence();
  int64_t wrong = -1;
  std::thread reader([&] {
    cuda::fence_wait(ticket);
    wrong = 0;
    for (int64_t i = 0; i < n; ++i) wrong += down.ptr[i] != float(rounds);
  });
  reader.join();
  EXPECT_EQ(wrong, 0) << "elements the other thread read before the copy reached them";
}

}  // namespace
}  // namespace raisin
