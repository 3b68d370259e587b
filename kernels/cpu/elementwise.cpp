// CPU elementwise kernels: the memory helpers (fill, axpy), relu and the residual add.
// Every loop is a flat pass over n contiguous floats; OpenMP splits it across threads only when n is
// large enough to pay for waking them (see kParallelMin).
#include <cstdint>

#include "kernels/cpu/kernels.h"

namespace raisin::cpu {

namespace {
// Below this many elements a single thread is faster than a parallel region.
constexpr int64_t kParallelMin = 1 << 15;
}  // namespace

void fill(int64_t n, float value, float* y) {
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = value;
}

// y += alpha · x
void axpy(int64_t n, float alpha, const float* x, float* y) {
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

// y = max(x, 0); a NaN input stays NaN so that it is not hidden from the caller.
void relu_forward(int64_t n, const float* x, float* y) {
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

// dx += dy where the forward output y is positive (the gradient at 0 is taken as 0, as in PyTorch).
// (dy is loaded unconditionally so that the select vectorises; a conditional load does not.)
void relu_backward(int64_t n, const float* y, const float* dy, float* dx) {
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float g = dy[i];
    dx[i] += y[i] > 0.0f ? g : 0.0f;
  }
}

// y = a + b (y may alias a or b).
void add_forward(int64_t n, const float* a, const float* b, float* y) {
#pragma omp parallel for simd if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

}  // namespace raisin::cpu
