// The caching device allocator and the per-step arena: freed blocks are reused by requests of the same
// size class on the same stream without another cudaMalloc, the statistics add up, empty_cache gives the
// cached blocks back; arena addresses repeat from step to step, and growing adds a chunk without moving
// (or overwriting) what earlier allocations hold. Runs on the GPU and, emulated, in CI.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "kernels/cuda/device.h"
#include "kernels/cuda/memory.h"
#include "tests/cuda/parity.h"

namespace raisin {
namespace {

using cuda::Arena;
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

TEST_F(CudaMemory, DeviceAllocatorIsOnePerDevice) {
  EXPECT_EQ(&cuda::device_allocator(), &cuda::device_allocator());
  void* p = cuda::device_allocator().allocate(4096, cuda::current_stream());
  EXPECT_NE(p, nullptr);
  cuda::device_allocator().free(p);
}

// One step's requests: sizes that leave partial chunks, one larger than a chunk, a zero-byte one.
std::vector<void*> run_step(Arena& arena) {
  std::vector<void*> ptrs;
  for (size_t bytes : {size_t(1000), size_t(3000), size_t(10), size_t(9000), size_t(0), size_t(2500), size_t(1)})
    ptrs.push_back(arena.allocate(bytes));
  return ptrs;
}

TEST_F(CudaMemory, ArenaAddressesRepeatAfterReset) {
  CachingAllocator allocator;
  Arena arena(4096, allocator, kStreamA);
  const std::vector<void*> first = run_step(arena);
  const size_t chunks = arena.chunk_count(), reserved = arena.bytes_reserved();
  const size_t used = arena.bytes_used();
  EXPECT_EQ(used, size_t(1024 + 3072 + 256 + 9216 + 2560 + 256));
  EXPECT_EQ(first[4], nullptr);  // 0 bytes
  for (void* p : first) {
    if (p != nullptr) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % Arena::kAlignment, 0u);
    }
  }
  for (int step = 0; step < 3; ++step) {
    arena.reset();
    EXPECT_EQ(arena.bytes_used(), 0u);
    EXPECT_EQ(run_step(arena), first) << "step " << step;
    EXPECT_EQ(arena.chunk_count(), chunks);  // no growth once the first step has run
    EXPECT_EQ(arena.bytes_reserved(), reserved);
  }
  EXPECT_EQ(arena.peak_bytes_used(), used);
  EXPECT_EQ(allocator.stats().device_mallocs, int64_t(chunks));
}

TEST_F(CudaMemory, ArenaGrowsByAddingChunksWithoutMovingData) {
  CachingAllocator allocator;
  {
    Arena arena(4096, allocator, kStreamA);
    float* a = arena.allocate_array<float>(512);  // 2 KiB of the first chunk
    fill_device(a, 512, 100.0f);
    float* b = arena.allocate_array<float>(768);  // 3 KiB: does not fit after a, so a second chunk
    fill_device(b, 768, 200.0f);
    EXPECT_EQ(arena.chunk_count(), 2u);
    float* c = arena.allocate_array<float>(4096);  // 16 KiB: larger than a chunk, gets one of its own
    fill_device(c, 4096, 300.0f);
    EXPECT_EQ(arena.chunk_count(), 3u);
    EXPECT_EQ(arena.bytes_reserved(), size_t(4096 + 4096 + 16384));
    EXPECT_TRUE(holds_pattern(a, 512, 100.0f));
    EXPECT_TRUE(holds_pattern(b, 768, 200.0f));
    EXPECT_TRUE(holds_pattern(c, 4096, 300.0f));

    // A bigger next step reuses the three chunks in order and appends one for what is new.
    arena.reset();
    EXPECT_EQ(arena.allocate_array<float>(512), a);
    EXPECT_EQ(arena.allocate_array<float>(768), b);
    EXPECT_EQ(arena.allocate_array<float>(4096), c);
    float* d = arena.allocate_array<float>(1024);
    EXPECT_EQ(arena.chunk_count(), 4u);
    EXPECT_TRUE(d != a && d != b && d != c);
    EXPECT_EQ(allocator.stats().bytes_in_use, int64_t(arena.bytes_reserved()));
  }
  EXPECT_EQ(allocator.stats().bytes_in_use, 0);  // the arena gave its chunks back
  EXPECT_EQ(allocator.stats().bytes_cached, int64_t(4096 + 4096 + 16384 + 4096));
}

}  // namespace
}  // namespace raisin
