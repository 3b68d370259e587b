// The cpu backend's asynchronous transfers (engine/backend.h): pinned memory is ordinary aligned host
// memory, the async copies are plain copies, fence tickets increase and every fence has passed at once.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "engine/backend.h"

namespace raisin {
namespace {

TEST(CpuAsyncCopies, PinnedRoundTripThroughDeviceMemory) {
  const Backend& cpu = cpu_backend();
  const size_t n = 1001, bytes = n * sizeof(float);
  auto* up = static_cast<float*>(cpu.allocate_pinned(bytes));
  auto* down = static_cast<float*>(cpu.allocate_pinned(bytes));
  ASSERT_NE(up, nullptr);
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(up) % 64, 0u);
  for (size_t i = 0; i < n; ++i) up[i] = float(i) * 0.25f;
  void* device = cpu.allocate(bytes);
  cpu.copy_to_device_async(device, up, bytes);
  std::memset(down, 0, bytes);
  cpu.copy_to_host_async(down, device, bytes);
  cpu.fence_wait(cpu.fence());
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(down[i], float(i) * 0.25f) << i;
  cpu.copy_to_device_async(device, up, 0);  // empty copies are allowed
  cpu.release(device, bytes);
  cpu.release_pinned(up, bytes);
  cpu.release_pinned(down, bytes);
}

TEST(CpuAsyncCopies, FenceTicketsIncreaseAcrossThreads) {
  const Backend& cpu = cpu_backend();
  const uint64_t first = cpu.fence();
  EXPECT_GT(cpu.fence(), first);
  std::vector<uint64_t> other(100);
  std::thread taker([&] {
    for (uint64_t& t : other) t = cpu.fence();
  });
  taker.join();
  for (size_t k = 1; k < other.size(); ++k) EXPECT_GT(other[k], other[k - 1]);
  EXPECT_GT(cpu.fence(), other.back());
  cpu.fence_wait(first);  // long passed
  cpu.fence_wait(0);
}

}  // namespace
}  // namespace raisin
