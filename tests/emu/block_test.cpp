// CUDA emulator self-tests for blocks: shared memory with __syncthreads, thread and block indices, dynamic
// shared memory, atomics across blocks, and per-thread floating-point state.
#include <gtest/gtest.h>

#include <cfenv>
#include <numeric>
#include <vector>

#include "kernels/cuda/compat.h"
#include "tests/cuda/parity.h"

namespace raisin {
namespace {

constexpr int kReduceThreads = 256;

// Tree reduction in shared memory: correct only if every __syncthreads is a real block barrier.
__global__ void block_sum_kernel(int n, const int* x, int* block_sums) {
  __shared__ int partial[kReduceThreads];
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  partial[threadIdx.x] = i < n ? x[i] : 0;
  __syncthreads();
  for (int stride = kReduceThreads / 2; stride > 0; stride /= 2) {
    if (int(threadIdx.x) < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) block_sums[blockIdx.x] = partial[0];
}

TEST(EmuBlock, SharedMemoryReductionWithBarriersIsExact) {
  const int n = 5000, blocks = (n + kReduceThreads - 1) / kReduceThreads;
  std::vector<int> x(n);
  for (int i = 0; i < n; ++i) x[i] = (i * 7919) % 1001 - 500;
  DeviceBuffer dx(x);
  DeviceBuffer<int> sums(blocks);
  RAISIN_LAUNCH(block_sum_kernel, blocks, kReduceThreads, 0, nullptr)(n, dx.ptr, sums.ptr);
  RAISIN_CUDA_CHECK(cudaGetLastError());
  const std::vector<int> got = sums.host();
  for (int b = 0; b < blocks; ++b) {
    const int end = std::min(n, (b + 1) * kReduceThreads);
    EXPECT_EQ(got[b], std::accumulate(x.begin() + b * kReduceThreads, x.begin() + end, 0)) << "block " << b;
  }
}

// Each thread counts itself at its global linear index and records the dimensions it sees.
__global__ void index_kernel(int* hits, int* dims_ok) {
  const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  atomicAdd(&hits[block * (blockDim.x * blockDim.y * blockDim.z) + thread], 1);
  const bool ok = gridDim.x == 3 && gridDim.y == 2 && gridDim.z == 2 && blockDim.x == 4 && blockDim.y == 3 &&
                  blockDim.z == 2 && threadIdx.x < 4 && threadIdx.y < 3 && threadIdx.z < 2 && blockIdx.x < 3 &&
                  blockIdx.y < 2 && blockIdx.z < 2;
  if (!ok) atomicAdd(dims_ok, 1);
}

TEST(EmuBlock, MultiDimensionalIndicesCoverEveryThreadOnce) {
  const int total = 3 * 2 * 2 * 4 * 3 * 2;
  DeviceBuffer hits(std::vector<int>(total, 0));
  DeviceBuffer bad(std::vector<int>(1, 0));
  RAISIN_LAUNCH(index_kernel, dim3(3, 2, 2), dim3(4, 3, 2), 0, nullptr)(hits.ptr, bad.ptr);
  RAISIN_CUDA_CHECK(cudaGetLastError());
  EXPECT_EQ(hits.host(), std::vector<int>(total, 1));
  EXPECT_EQ(bad.host()[0], 0);
}

// Reverses each block's slice through dynamic shared memory.
__global__ void reverse_kernel(const float* x, float* y) {
  float* buffer = cuda::dynamic_shared<float>();
  const int base = blockIdx.x * blockDim.x;
  buffer[threadIdx.x] = x[base + threadIdx.x];
  __syncthreads();
  y[base + threadIdx.x] = buffer[blockDim.x - 1 - threadIdx.x];
}

TEST(EmuBlock, DynamicSharedMemory) {
  const int threads = 96, blocks = 5;
  const std::vector<float> x = test::random_floats(threads * blocks, 1);
  DeviceBuffer dx(x);
  DeviceBuffer<float> dy(x.size());
  RAISIN_LAUNCH(reverse_kernel, blocks, threads, threads * sizeof(float), nullptr)(dx.ptr, dy.ptr);
  RAISIN_CUDA_CHECK(cudaGetLastError());
  const std::vector<float> y = dy.host();
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < threads; ++t) ASSERT_EQ(y[b * threads + t], x[b * threads + threads - 1 - t]);
}

__global__ void atomics_kernel(int* sum, unsigned long long* wide_sum, int* maximum, unsigned* exchanged) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  atomicAdd(sum, i % 7 - 3);
  atomicAdd(wide_sum, 1ull << 33);
  atomicMax(maximum, (i * 37) % 1000);
  atomicCAS(exchanged, 0u, unsigned(i + 1));  // only the first thread to arrive succeeds
}

TEST(EmuBlock, AtomicsFromManyBlocksAreExact) {
  const int blocks = 64, threads = 128;
  DeviceBuffer sum(std::vector<int>{0});
  DeviceBuffer wide(std::vector<unsigned long long>{0});
  DeviceBuffer maximum(std::vector<int>{-1});
  DeviceBuffer exchanged(std::vector<unsigned>{0});
  RAISIN_LAUNCH(atomics_kernel, blocks, threads, 0, nullptr)(sum.ptr, wide.ptr, maximum.ptr, exchanged.ptr);
  RAISIN_CUDA_CHECK(cudaGetLastError());
  int expected = 0;
  for (int i = 0; i < blocks * threads; ++i) expected += i % 7 - 3;
  EXPECT_EQ(sum.host()[0], expected);
  EXPECT_EQ(wide.host()[0], (1ull << 33) * blocks * threads);
  EXPECT_EQ(maximum.host()[0], 999);
  const unsigned winner = exchanged.host()[0];
  EXPECT_GE(winner, 1u);
  EXPECT_LE(winner, unsigned(blocks * threads));
}

// Odd threads return before the barrier; as on the GPU, the barrier still completes for the rest.
__global__ void early_return_kernel(int* out) {
  __shared__ int values[64];
  if (threadIdx.x % 2 == 1) return;
  values[threadIdx.x] = int(threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = values[(threadIdx.x + 2) % 64];
}

TEST(EmuBlock, ReturnedThreadsCountAsArrivedAtABarrier) {
  DeviceBuffer out(std::vector<int>(64, -1));
  RAISIN_LAUNCH(early_return_kernel, 1, 64, 0, nullptr)(out.ptr);
  RAISIN_CUDA_CHECK(cudaGetLastError());
  const std::vector<int> got = out.host();
  for (int t = 0; t < 64; ++t) EXPECT_EQ(got[t], t % 2 ? -1 : (t + 2) % 64) << t;
}

// Thread 0 changes its rounding mode; the others, and the host thread, keep round-to-nearest.
__global__ void rounding_kernel(int* modes) {
  if (threadIdx.x == 0) std::fesetround(FE_TOWARDZERO);
  __syncthreads();
  modes[threadIdx.x] = std::fegetround();
  std::fesetround(FE_TONEAREST);
}

TEST(EmuBlock, EachThreadHasItsOwnFloatingPointControlState) {
  DeviceBuffer modes(std::vector<int>(32, -1));
  RAISIN_LAUNCH(rounding_kernel, 1, 32, 0, nullptr)(modes.ptr);
  RAISIN_CUDA_CHECK(cudaGetLastError());
  const std::vector<int> got = modes.host();
  EXPECT_EQ(got[0], FE_TOWARDZERO);
  for (int t = 1; t < 32; ++t) EXPECT_EQ(got[t], FE_TONEAREST) << t;
  EXPECT_EQ(std::fegetround(), FE_TONEAREST);
}

}  // namespace
}  // namespace raisin
