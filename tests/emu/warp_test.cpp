// CUDA emulator self-tests for warps: shuffles and votes give the GPU's answers (expected values follow
// the CUDA programming guide's definitions), and warp-synchronous code without _sync intrinsics fails.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/cuda/compat.h"
#include "tests/cuda/parity.h"

namespace raisin {
namespace {

constexpr unsigned kFull = 0xffffffffu;
constexpr int kColumns = 10;

__global__ void warp_kernel(int* out) {
  const int t = threadIdx.x, lane = t % 32, warp = t / 32;
  int* row = out + t * kColumns;
  row[0] = __shfl_sync(kFull, 100 * warp + lane, (lane + 3) % 32);
  row[1] = __shfl_xor_sync(kFull, lane, 5);
  row[2] = __shfl_down_sync(kFull, lane, 4);
  row[3] = __shfl_up_sync(kFull, lane, 4);
  row[4] = __shfl_down_sync(kFull, lane, 2, 8);
  row[5] = int(__ballot_sync(kFull, lane % 3 == 0));
  row[6] = __any_sync(kFull, lane == 31) + 2 * __any_sync(kFull, lane > 40);
  row[7] = __all_sync(kFull, lane < 32) + 2 * __all_sync(kFull, lane < 31);
  float sum = float(lane + warp);  // butterfly reduction: every lane ends with the warp's sum
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(kFull, sum, offset);
  row[8] = int(sum);
  __syncwarp();
  row[9] = __shfl_sync(kFull, lane, 2, 16);
}

TEST(EmuWarp, ShufflesAndVotesGiveTheHardwareAnswers) {
  const int threads = 64;
  DeviceBuffer<int> out(threads * kColumns);
  RAISIN_LAUNCH(warp_kernel, 1, threads, 0, nullptr)(out.ptr);
  RAISIN_CUDA_CHECK(cudaGetLastError());
  const std::vector<int> got = out.host();
  unsigned every_third = 0;
  for (int lane = 0; lane < 32; lane += 3) every_third |= 1u << lane;
  for (int t = 0; t < threads; ++t) {
    const int lane = t % 32, warp = t / 32;
    const int* row = got.data() + t * kColumns;
    EXPECT_EQ(row[0], 100 * warp + (lane + 3) % 32) << "shfl, thread " << t;
    EXPECT_EQ(row[1], lane ^ 5) << "shfl_xor, thread " << t;
    EXPECT_EQ(row[2], lane < 28 ? lane + 4 : lane) << "shfl_down, thread " << t;
    EXPECT_EQ(row[3], lane >= 4 ? lane - 4 : lane) << "shfl_up, thread " << t;
    EXPECT_EQ(row[4], lane % 8 < 6 ? lane + 2 : lane) << "shfl_down width 8, thread " << t;
    EXPECT_EQ(unsigned(row[5]), every_third) << "ballot, thread " << t;
    EXPECT_EQ(row[6], 1) << "any, thread " << t;
    EXPECT_EQ(row[7], 1) << "all, thread " << t;
    EXPECT_EQ(row[8], 31 * 32 / 2 + 32 * warp) << "xor reduction, thread " << t;
    EXPECT_EQ(row[9], lane / 16 * 16 + 2) << "shfl width 16, thread " << t;
  }
}

// The pre-Volta idiom: the last warp reduces shared memory with no synchronisation, relying on lockstep.
// The emulator runs each lane alone up to its next synchronisation point, so lane 0 adds s[16], s[8], ...
// before the other lanes updated them and the sum comes out wrong (deterministically: 7 instead of 64),
// just as it may on a GPU with independent thread scheduling. __syncwarp between the steps fixes it.
__global__ void lockstep_sum_kernel(int* result, bool with_syncwarp) {
  __shared__ int s[64];
  const int t = threadIdx.x;
  s[t] = 1;
  __syncthreads();
  if (t < 32) {
    volatile int* v = s;
    for (int stride = 32; stride > 0; stride /= 2) {
      const int value = v[t] + v[t + stride];
      if (with_syncwarp) __syncwarp();
      v[t] = value;
      if (with_syncwarp) __syncwarp();
    }
    if (t == 0) *result = v[0];
  }
}

TEST(EmuWarp, WarpSynchronousCodeWithoutSyncIsWrongAndSyncwarpFixesIt) {
  DeviceBuffer<int> result(1);
  RAISIN_LAUNCH(lockstep_sum_kernel, 1, 64, 0, nullptr)(result.ptr, false);
  RAISIN_CUDA_CHECK(cudaGetLastError());
  EXPECT_EQ(result.host()[0], 7);
  RAISIN_LAUNCH(lockstep_sum_kernel, 1, 64, 0, nullptr)(result.ptr, true);
  RAISIN_CUDA_CHECK(cudaGetLastError());
  EXPECT_EQ(result.host()[0], 64);
}

}  // namespace
}  // namespace raisin
