// CUDA emulator speed: the raw fiber switch, and emulated kernels without barriers, with __syncthreads
// and with warp shuffles (items = CUDA thread-steps: threads × synchronisation points passed).
#include <benchmark/benchmark.h>

#include <vector>

#include "kernels/cuda/compat.h"
#include "kernels/emu/fiber.h"

namespace {

void* main_sp = nullptr;
void* fiber_sp = nullptr;

void ping_pong_fiber(void*) {
  for (;;) raisin_emu_switch(&fiber_sp, main_sp);
}

void BM_FiberSwitch(benchmark::State& state) {
  const raisin::emu::FiberStack stack = raisin::emu::acquire_stack();
  fiber_sp = raisin::emu::fiber_initial_sp(stack, ping_pong_fiber, nullptr,
                                           raisin::emu::current_floating_point_control());
  for (auto _ : state) raisin_emu_switch(&main_sp, fiber_sp);  // there and back: two switches
  state.SetItemsProcessed(2 * state.iterations());             // items/s = switches/s
  raisin::emu::release_stack(stack);
}
BENCHMARK(BM_FiberSwitch);

__global__ void axpy_kernel(int n, float alpha, const float* x, float* y) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] += alpha * x[i];
}

void BM_EmuKernelWithoutBarriers(benchmark::State& state) {
  const int n = 1 << 18;
  std::vector<float> x(n, 1.0f), y(n, 0.0f);
  for (auto _ : state) {
    RAISIN_LAUNCH(axpy_kernel, (n + 255) / 256, 256, 0, nullptr)(n, 0.5f, x.data(), y.data());
    RAISIN_CUDA_CHECK(cudaGetLastError());
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * n);
}
BENCHMARK(BM_EmuKernelWithoutBarriers)->Unit(benchmark::kMillisecond)->UseRealTime();

constexpr int kThreads = 256;

__global__ void block_sum_kernel(const float* x, float* sums) {
  __shared__ float partial[kThreads];
  partial[threadIdx.x] = x[blockIdx.x * kThreads + threadIdx.x];
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (int(threadIdx.x) < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) sums[blockIdx.x] = partial[0];
}

void BM_EmuKernelWithBarriers(benchmark::State& state) {
  const int blocks = 256, barriers = 9;
  std::vector<float> x(blocks * kThreads, 1.0f), sums(blocks);
  for (auto _ : state) {
    RAISIN_LAUNCH(block_sum_kernel, blocks, kThreads, 0, nullptr)(x.data(), sums.data());
    RAISIN_CUDA_CHECK(cudaGetLastError());
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * blocks * kThreads * barriers);
}
BENCHMARK(BM_EmuKernelWithBarriers)->Unit(benchmark::kMillisecond)->UseRealTime();

__global__ void warp_sum_kernel(const float* x, float* sums) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  float v = x[i];
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  if (threadIdx.x % 32 == 0) sums[i / 32] = v;
}

void BM_EmuKernelWithShuffles(benchmark::State& state) {
  const int blocks = 256, shuffles = 5;
  std::vector<float> x(blocks * kThreads, 1.0f), sums(blocks * kThreads / 32);
  for (auto _ : state) {
    RAISIN_LAUNCH(warp_sum_kernel, blocks, kThreads, 0, nullptr)(x.data(), sums.data());
    RAISIN_CUDA_CHECK(cudaGetLastError());
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * blocks * kThreads * shuffles);
}
BENCHMARK(BM_EmuKernelWithShuffles)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
