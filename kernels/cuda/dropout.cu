// CUDA dropout, the twin of kernels/cpu/dropout.cpp: element i is kept iff
// philox_uniform(word i % 4 of philox_block(seed, stream, i / 4)) ≥ p with stream = (step[0] << 20) + call, and a kept element is scaled by
// 1/(1 − p). The same Philox stream as the CPU, so both backends drop exactly the same elements.
//
// Launch shape: one thread per group of four consecutive elements (one Philox block), grid-stride.
// A thread's four accesses fall in one 16-byte span, so a warp's four loads together cover 512
// contiguous bytes and are served by the same cache lines; one Philox evaluation serves four elements.
#include <cstdint>

#include "kernels/cuda/compat.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/kernels.h"
#include "kernels/philox.h"

namespace raisin::cuda {

namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t groups) {
  const int64_t blocks = (groups + kThreads - 1) / kThreads;
  return int(blocks < 65535 ? (blocks > 0 ? blocks : 1) : 65535);
}

__device__ __forceinline__ uint64_t dropout_stream(const int64_t* step, uint32_t call) {
  return (uint64_t(step[0]) << 20) + call;
}

__global__ void dropout_forward_kernel(int64_t n, float p, float scale, uint64_t seed, const int64_t* step,
                                       uint32_t call, const float* x, float* y) {
  const uint64_t stream = dropout_stream(step, call);
  const int64_t groups = (n + 3) / 4;
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g < groups; g += int64_t(gridDim.x) * blockDim.x) {
    const kernels::Philox4 r = kernels::philox_block(seed, stream, uint64_t(g));
    for (int j = 0; j < 4; ++j) {
      const int64_t i = 4 * g + j;
      if (i >= n) break;
      y[i] = kernels::philox_uniform(r.v[j]) >= p ? x[i] * scale : 0.0f;
    }
  }
}

// dx += dy / (1 − p) where the element was kept.
__global__ void dropout_backward_kernel(int64_t n, float p, float scale, uint64_t seed, const int64_t* step,
                                        uint32_t call, const float* dy, float* dx) {
  const uint64_t stream = dropout_stream(step, call);
  const int64_t groups = (n + 3) / 4;
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g < groups; g += int64_t(gridDim.x) * blockDim.x) {
    const kernels::Philox4 r = kernels::philox_block(seed, stream, uint64_t(g));
    for (int j = 0; j < 4; ++j) {
      const int64_t i = 4 * g + j;
      if (i >= n) break;
      if (kernels::philox_uniform(r.v[j]) >= p) dx[i] += dy[i] * scale;
    }
  }
}

}  // namespace

// Precondition as on the CPU: 0 ≤ p < 1. The scale is computed on the host with the CPU's expression.
void dropout_forward(int64_t n, float p, uint64_t seed, const int64_t* step, uint32_t call, const float* x, float* y) {
  if (n <= 0) return;
  const float scale = 1.0f / (1.0f - p);
  RAISIN_LAUNCH(dropout_forward_kernel, blocks_for((n + 3) / 4), kThreads, 0, current_stream())(n, p, scale, seed,
                                                                                               step, call, x, y);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

void dropout_backward(int64_t n, float p, uint64_t seed, const int64_t* step, uint32_t call, const float* dy,
                      float* dx) {
  if (n <= 0) return;
  const float scale = 1.0f / (1.0f - p);
  RAISIN_LAUNCH(dropout_backward_kernel, blocks_for((n + 3) / 4), kThreads, 0, current_stream())(n, p, scale, seed,
                                                                                                step, call, dy, dx);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

}  // namespace raisin::cuda
