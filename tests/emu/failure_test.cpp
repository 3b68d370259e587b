// CUDA emulator self-tests for failures: invalid launch configurations, barrier divergence, deadlocks and
// fiber stack overflows are launch errors whose message names the kernel, the threads and the call sites,
// and the emulator works normally after each of them.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernels/cuda/compat.h"
#include "tests/cuda/parity.h"

namespace raisin {
namespace {

constexpr unsigned kFull = 0xffffffffu;

__global__ void store_kernel(int* out) { out[blockIdx.x * blockDim.x + threadIdx.x] = 1; }

// The message RAISIN_CUDA_CHECK(cudaGetLastError()) throws after a launch; fails when it throws nothing.
std::string launch_error_message() {
  try {
    RAISIN_CUDA_CHECK(cudaGetLastError());
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "the launch did not fail";
  return "";
}

void expect_contains(const std::string& message, const std::string& part) {
  EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' missing from: " << message;
}

// A small launch that must succeed: the emulator recovered from the failure before it.
void expect_emulator_works() {
  DeviceBuffer out(std::vector<int>(64, 0));
  RAISIN_LAUNCH(store_kernel, 2, 32, 0, nullptr)(out.ptr);
  RAISIN_CUDA_CHECK(cudaGetLastError());
  EXPECT_EQ(out.host(), std::vector<int>(64, 1));
}

TEST(EmuFailure, InvalidConfigurationsAreLaunchErrors) {
  DeviceBuffer out(std::vector<int>(2048, 0));
  const struct {
    dim3 grid, block;
    size_t shared_bytes;
    cudaError_t error;
  } cases[] = {
      {1, 1025, 0, cudaErrorInvalidConfiguration},
      {1, dim3(32, 32, 2), 0, cudaErrorInvalidConfiguration},
      {1, dim3(1, 1, 65), 0, cudaErrorInvalidConfiguration},
      {0, 32, 0, cudaErrorInvalidConfiguration},
      {dim3(1, 65536), 32, 0, cudaErrorInvalidConfiguration},
      {1, 32, 48 * 1024 + 1, cudaErrorInvalidValue},
  };
  for (const auto& c : cases) {
    RAISIN_LAUNCH(store_kernel, c.grid, c.block, c.shared_bytes, nullptr)(out.ptr);
    const cudaError_t error = cudaGetLastError();
    EXPECT_EQ(error, c.error) << cudaGetErrorString(error);
    expect_contains(cudaGetErrorString(error), "store_kernel");
    EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "the error is cleared once read";
  }
  EXPECT_EQ(out.host(), std::vector<int>(2048, 0)) << "a rejected launch runs nothing";
  expect_emulator_works();
}

constexpr int kFirstBarrierLine = __LINE__ + 4;
constexpr int kSecondBarrierLine = __LINE__ + 5;
__global__ void divergent_kernel() {
  if (threadIdx.x < 40)
    __syncthreads();
  else
    __syncthreads();
}

TEST(EmuFailure, BarrierDivergenceNamesBothCallSites) {
  RAISIN_LAUNCH(divergent_kernel, 2, 64, 0, nullptr)();
  const std::string message = launch_error_message();
  expect_contains(message, "cudaErrorLaunchFailure");
  expect_contains(message, "barrier divergence");
  expect_contains(message, "divergent_kernel");
  expect_contains(message, "block (0,0,0)");
  expect_contains(message, "thread (0,0,0)");
  expect_contains(message, "thread (40,0,0)");
  expect_contains(message, "failure_test.cpp:" + std::to_string(kFirstBarrierLine));
  expect_contains(message, "failure_test.cpp:" + std::to_string(kSecondBarrierLine));
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess) << "the failure was read and cleared";
  expect_emulator_works();
}

constexpr int kShuffleLine = __LINE__ + 4;
__global__ void returned_lanes_kernel(int* out) {
  if (threadIdx.x >= 16) return;
  // Lanes 16..31 have returned: this shuffle can never complete.
  out[threadIdx.x] = __shfl_down_sync(kFull, int(threadIdx.x), 1);
}

TEST(EmuFailure, ShuffleWithReturnedLanesIsADeadlock) {
  DeviceBuffer out(std::vector<int>(32, 0));
  RAISIN_LAUNCH(returned_lanes_kernel, 1, 32, 0, nullptr)(out.ptr);
  const std::string message = launch_error_message();
  expect_contains(message, "deadlock");
  expect_contains(message, "returned_lanes_kernel");
  expect_contains(message, "__shfl_down_sync(mask 0xffffffff) at ");
  expect_contains(message, "failure_test.cpp:" + std::to_string(kShuffleLine));
  expect_contains(message, "lane 16 (thread (16,0,0)) has returned");
  expect_emulator_works();
}

constexpr int kBallotLine = __LINE__ + 4;
constexpr int kBarrierLine = __LINE__ + 4;
__global__ void shuffle_against_barrier_kernel(int* out) {
  if (threadIdx.x % 32 < 8)
    out[threadIdx.x] = int(__ballot_sync(kFull, 1));
  __syncthreads();
}

TEST(EmuFailure, WarpOperationAgainstABarrierIsADeadlock) {
  DeviceBuffer out(std::vector<int>(64, 0));
  RAISIN_LAUNCH(shuffle_against_barrier_kernel, 3, 64, 0, nullptr)(out.ptr);
  const std::string message = launch_error_message();
  expect_contains(message, "deadlock");
  expect_contains(message, "__ballot_sync(mask 0xffffffff) at ");
  expect_contains(message, "failure_test.cpp:" + std::to_string(kBallotLine));
  expect_contains(message, "waits at __syncthreads() at ");
  expect_contains(message, "failure_test.cpp:" + std::to_string(kBarrierLine));
  expect_emulator_works();
}

__global__ void partial_warp_kernel(int* out) { out[threadIdx.x] = __shfl_xor_sync(kFull, int(threadIdx.x), 1); }

TEST(EmuFailure, FullMaskInAPartialWarpIsAnError) {
  DeviceBuffer out(std::vector<int>(48, 0));
  RAISIN_LAUNCH(partial_warp_kernel, 1, 48, 0, nullptr)(out.ptr);
  const std::string message = launch_error_message();
  expect_contains(message, "lane 16 does not exist: the block has 48 threads");
  expect_emulator_works();
}

// Recursion with a 1 KiB frame per level: deep enough to run off a 64 KiB fiber stack.
__device__ int deep(volatile char* previous, int depth) {
  volatile char frame[1024];
  frame[0] = char(depth);
  frame[1023] = previous != nullptr ? previous[0] : 0;
  return depth == 0 ? frame[1023] : deep(frame, depth - 1) + frame[0];
}

__global__ void recursion_kernel(int depth, int* out) { out[blockIdx.x * blockDim.x + threadIdx.x] = deep(nullptr, depth); }

TEST(EmuFailure, StackOverflowIsALaunchError) {
  DeviceBuffer out(std::vector<int>(128, 0));
  RAISIN_LAUNCH(recursion_kernel, 4, 32, 0, nullptr)(8, out.ptr);
  RAISIN_CUDA_CHECK(cudaGetLastError());  // shallow recursion fits
  RAISIN_LAUNCH(recursion_kernel, 4, 32, 0, nullptr)(1000, out.ptr);
  const std::string message = launch_error_message();
  expect_contains(message, "recursion_kernel");
  expect_contains(message, "block (0,0,0): thread (0,0,0) overflowed its 64 KiB fiber stack");
  expect_emulator_works();
}

}  // namespace
}  // namespace raisin
