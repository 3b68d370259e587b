// Device helpers for warp and block reductions, used by the per-channel and per-example kernels.
// Every helper is an all-reduce: it returns the result in every participating thread. The order of
// the operations is fixed (a shuffle tree to lane 0, then a broadcast of lane 0's value), so results
// are reproducible from run to run and identical in all threads even for an `op` that is not
// bitwise commutative (Welford merges) or that the compiler contracts into FMAs.
// Header only; include it from kernels/cuda/*.cu after kernels/cuda/compat.h.
#pragma once

namespace raisin::cuda {

constexpr unsigned kFullWarp = 0xffffffffu;

// Shuffles of the scalar types the reductions use. A kernel that reduces its own struct declares
// shfl_down and shfl for it next to the struct (found by argument-dependent lookup).
__device__ __forceinline__ float shfl_down(float v, int delta) { return __shfl_down_sync(kFullWarp, v, delta); }
__device__ __forceinline__ int shfl_down(int v, int delta) { return __shfl_down_sync(kFullWarp, v, delta); }
__device__ __forceinline__ float shfl(float v, int lane) { return __shfl_sync(kFullWarp, v, lane); }
__device__ __forceinline__ int shfl(int v, int lane) { return __shfl_sync(kFullWarp, v, lane); }

struct SumOp {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
struct MaxOp {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const { return b > a ? b : a; }
};
struct MinOp {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const { return b < a ? b : a; }
};

// Reduces v over the first kLanes lanes of the warp (a power of two ≤ 32) and returns the result in
// every lane. The whole warp must call it; lanes ≥ kLanes contribute nothing (their partners are
// outside the tree) but must hold some value of type T.
template <int kLanes = 32, typename T, typename Op>
__device__ __forceinline__ T warp_allreduce(T v, Op op) {
  static_assert(kLanes >= 1 && kLanes <= 32 && (kLanes & (kLanes - 1)) == 0, "kLanes: a power of two ≤ 32");
  for (int delta = kLanes / 2; delta > 0; delta /= 2) v = op(v, shfl_down(v, delta));
  return shfl(v, 0);
}

// Reduces v over a block of exactly kThreads threads (a power of two, 32 to 1024; blockDim.x must
// equal kThreads) and returns the result in every thread. kThreads == 32 is a plain warp reduction
// without shared memory or barriers, so a block may also hold several independent warps that reduce
// separately. `scratch` is a __shared__ array of kThreads / 32 elements, declared by the kernel; it is
// free for reuse when this returns. Every thread of the block must call it (it holds barriers).
template <int kThreads, typename T, typename Op>
__device__ __forceinline__ T block_allreduce(T v, Op op, T* scratch) {
  static_assert(kThreads >= 32 && kThreads <= 1024 && (kThreads & (kThreads - 1)) == 0,
                "kThreads: a power of two from 32 to 1024");
  v = warp_allreduce(v, op);
  if constexpr (kThreads > 32) {
    constexpr int kWarps = kThreads / 32;
    const int lane = int(threadIdx.x) % 32;
    if (lane == 0) scratch[threadIdx.x / 32] = v;
    __syncthreads();
    v = warp_allreduce<kWarps>(scratch[lane % kWarps], op);
    __syncthreads();
  }
  return v;
}

}  // namespace raisin::cuda
