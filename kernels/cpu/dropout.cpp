// CPU dropout: element i is kept iff u_i ≥ p, where u_i = philox_uniform_at(seed, stream, i)
// (kernels/philox.h) and stream = (step[0] << 20) + call, and a kept element is scaled by 1/(1 − p). Forward and backward regenerate the
// same mask from (seed, stream), so no mask is stored, and the CUDA twin draws the same numbers.
//
// Precondition: 0 ≤ p < 1. p = 1 (drop everything) is not supported, since the scale 1/(1 − p) is
// infinite; callers must handle it themselves (the output and gradient are then simply zero).
// p = 0 keeps every element (u_i ≥ 0 always), so it is a plain copy / add.
#include <cstdint>

#include "kernels/cpu/kernels.h"
#include "kernels/philox.h"

namespace raisin::cpu {

namespace {
// Below this many elements a single thread is faster than a parallel region.
constexpr int64_t kParallelMin = 1 << 14;

uint64_t dropout_stream(const int64_t* step, uint32_t call) { return (uint64_t(step[0]) << 20) + call; }
}  // namespace

// One Philox block yields the uniforms of four consecutive elements (word j of block b is element
// 4b + j, exactly as philox_uniform_at numbers them), so the loop runs over blocks.
void dropout_forward(int64_t n, float p, uint64_t seed, const int64_t* step, uint32_t call, const float* x, float* y) {
  const float scale = 1.0f / (1.0f - p);
  const uint64_t stream = dropout_stream(step, call);
  const int64_t blocks = (n + 3) / 4;
#pragma omp parallel for if (n >= kParallelMin)
  for (int64_t b = 0; b < blocks; ++b) {
    const kernels::Philox4 r = kernels::philox_block(seed, stream, uint64_t(b));
    for (int j = 0; j < 4; ++j) {
      const int64_t i = 4 * b + j;
      if (i >= n) break;
      y[i] = kernels::philox_uniform(r.v[j]) >= p ? x[i] * scale : 0.0f;
    }
  }
}

// dx += dy / (1 − p) where the element was kept.
void dropout_backward(int64_t n, float p, uint64_t seed, const int64_t* step, uint32_t call, const float* dy,
                      float* dx) {
  const float scale = 1.0f / (1.0f - p);
  const uint64_t stream = dropout_stream(step, call);
  const int64_t blocks = (n + 3) / 4;
#pragma omp parallel for if (n >= kParallelMin)
  for (int64_t b = 0; b < blocks; ++b) {
    const kernels::Philox4 r = kernels::philox_block(seed, stream, uint64_t(b));
    for (int j = 0; j < 4; ++j) {
      const int64_t i = 4 * b + j;
      if (i >= n) break;
      if (kernels::philox_uniform(r.v[j]) >= p) dx[i] += dy[i] * scale;
    }
  }
}

}  // namespace raisin::cpu
