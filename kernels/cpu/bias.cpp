// CPU per-channel bias kernels (forward add, fused add + ReLU, backward sum) and the plain sum
// reduction. The CUDA backend uses the bias kernels after cuBLAS/cuDNN; the CPU linear and conv
// kernels fold their bias in themselves, so on the CPU these are the reference twins.
#include <cstdint>

#include "kernels/cpu/kernels.h"

namespace raisin::cpu {

void bias_add_forward(const kernels::ImageShape& s, const float* b, float* y) {
  const int64_t spatial = s.spatial();
#pragma omp parallel for collapse(2) if (s.numel() >= (1 << 15))
  for (int n = 0; n < s.batch; ++n)
    for (int c = 0; c < s.channels; ++c) {
      float* plane = y + (int64_t(n) * s.channels + c) * spatial;
      for (int64_t i = 0; i < spatial; ++i) plane[i] += b[c];
    }
}

// A NaN stays NaN (as relu_forward does).
void bias_relu_forward(const kernels::ImageShape& s, const float* b, float* y) {
  const int64_t spatial = s.spatial();
#pragma omp parallel for collapse(2) if (s.numel() >= (1 << 15))
  for (int n = 0; n < s.batch; ++n)
    for (int c = 0; c < s.channels; ++c) {
      float* plane = y + (int64_t(n) * s.channels + c) * spatial;
      for (int64_t i = 0; i < spatial; ++i) {
        const float v = plane[i] + b[c];
        plane[i] = v < 0.0f ? 0.0f : v;
      }
    }
}

void bias_add_backward(const kernels::ImageShape& s, const float* dy, float* db) {
  const int64_t spatial = s.spatial();
  for (int c = 0; c < s.channels; ++c) {
    double sum = 0.0;
    for (int n = 0; n < s.batch; ++n) {
      const float* plane = dy + (int64_t(n) * s.channels + c) * spatial;
      for (int64_t i = 0; i < spatial; ++i) sum += plane[i];
    }
    db[c] += float(sum);
  }
}

void reduce_sum(int64_t n, const float* x, float* out) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  out[0] = float(sum);
}

}  // namespace raisin::cpu
