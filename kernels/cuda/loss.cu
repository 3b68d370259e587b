// CUDA fused softmax-cross-entropy: the twin of kernels/cpu/loss.cpp. For each example i (logits
// z_i, label y_i, weight ω_i or 1 when weights is null) the forward writes
//   example_loss[i] = logsumexp(z_i) − z_i[y_i]
//   dlogits[i]      = ω_i · (softmax(z_i) − onehot(y_i)) / batch      (overwritten)
//   proxy_norm[i]   = ‖softmax(z_i) − onehot(y_i)‖₂                   (may be null)
// and a second, single-block launch sums mean_loss[0] = (1/batch) Σ_i ω_i · example_loss[i] in a fixed
// tree (reproducible; no float atomics). One warp handles an example (a block of 256 threads holds 8)
// up to kWarpClasses classes, a whole block beyond. Nothing is checked on the host and nothing waits
// for the GPU; a label outside [0, classes) turns the example's outputs (and so the mean) into NaN
// instead of reading out of bounds.
//
// Stability as on the CPU, in float: exponentials of z − max(z) ≤ 0; the loss as
// (max − z_y) + log1p(Σ_{j≠argmax} e_j); the label's entry as −(Σ_{j≠y} e_j)/Σ e; the norm scaled by
// Σ_{j≠y} e_j so that the squares of tiny probabilities do not underflow.
#include "kernels/cuda/compat.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <limits>

#include "kernels/cuda/device.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/reduce.cuh"

namespace raisin::cuda {

namespace {

constexpr int kBlockThreads = 256;
constexpr int kWarpClasses = 1024;  // up to here one warp per example
constexpr int kMeanThreads = 256;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// log(1 + s) for s ≥ 0, accurate also where 1 + s rounds (Goldberg's trick; logf(1 + s) would
// return 0 for s below float epsilon).
__device__ __forceinline__ float log1p_accurate(float s) {
  const float u = 1.0f + s;
  return u == 1.0f ? s : logf(u) * (s / (u - 1.0f));
}

// kThreads threads per example: 32 (a warp; the block holds blockDim.x / 32 examples) or the whole block.
template <int kThreads>
__global__ void forward_kernel(int batch, int classes, const float* logits, const int32_t* labels,
                               const float* weights, float* example_loss, float* dlogits, float* proxy_norm) {
  __shared__ float scratch_float[kThreads / 32];
  __shared__ int scratch_int[kThreads / 32];
  const int i = int(blockIdx.x) * (int(blockDim.x) / kThreads) + int(threadIdx.x) / kThreads;
  const int lane = int(threadIdx.x) % kThreads;
  if (i >= batch) return;  // a whole warp (or block) at once, so no reduction is left waiting
  const float* z = logits + int64_t(i) * classes;
  float* g = dlogits + int64_t(i) * classes;
  const int y = labels[i];

  if (y < 0 || y >= classes) {
    for (int j = lane; j < classes; j += kThreads) g[j] = kNaN;
    if (lane == 0) {
      example_loss[i] = kNaN;
      if (proxy_norm) proxy_norm[i] = kNaN;
    }
    return;
  }

  // max, and its first index (as on the CPU: its e_j = 1 is left out of Σ_{j≠argmax} e_j)
  float lane_max = -INFINITY;
  int lane_argmax = INT_MAX;
  for (int j = lane; j < classes; j += kThreads) {
    const float v = z[j];
    if (lane_argmax == INT_MAX || v > lane_max) lane_max = v, lane_argmax = j;
  }
  const float zmax = block_allreduce<kThreads>(lane_max, MaxOp{}, scratch_float);
  const int jmax = block_allreduce<kThreads>(lane_max == zmax ? lane_argmax : INT_MAX, MinOp{}, scratch_int);

  // Σ_{j≠argmax} e_j and Σ_{j≠y} e_j with e_j = exp(z_j − max)
  float sum_not_max = 0.0f, sum_not_label = 0.0f;
#pragma unroll 4
  for (int j = lane; j < classes; j += kThreads) {
    const float e = expf(z[j] - zmax);
    if (j != jmax) sum_not_max += e;
    if (j != y) sum_not_label += e;
  }
  sum_not_max = block_allreduce<kThreads>(sum_not_max, SumOp{}, scratch_float);
  sum_not_label = block_allreduce<kThreads>(sum_not_label, SumOp{}, scratch_float);
  if (lane == 0) example_loss[i] = (zmax - z[y]) + log1p_accurate(sum_not_max);

  // softmax − onehot, weighted and batch-averaged; and Σ_{j≠y} (e_j / Σ_{j≠y} e_j)² for the norm
  const float inv_sum = 1.0f / (1.0f + sum_not_max);
  const float scale = (weights ? weights[i] : 1.0f) / float(batch);
  const float label_diff = -sum_not_label * inv_sum;
  const float inv_not_label = sum_not_label > 0.0f ? 1.0f / sum_not_label : 0.0f;
  float ratio_sq = 0.0f;
#pragma unroll 4
  for (int j = lane; j < classes; j += kThreads) {
    if (j == y) {
      g[j] = scale * label_diff;
    } else {
      const float e = expf(z[j] - zmax);
      g[j] = scale * (e * inv_sum);
      const float r = e * inv_not_label;
      ratio_sq += r * r;
    }
  }
  if (!proxy_norm) return;  // uniform across the example's threads
  ratio_sq = block_allreduce<kThreads>(ratio_sq, SumOp{}, scratch_float);
  // ‖d‖² = Σ_{j≠y} e_j²/Σ² + (Σ_{j≠y} e_j)²/Σ² = (Σ_{j≠y} e_j / Σ)² · (1 + Σ_{j≠y} r_j²)
  if (lane == 0) proxy_norm[i] = sum_not_label * inv_sum * sqrtf(1.0f + ratio_sq);
}

// Sums the terms (ω_i / batch) · ℓ_i: every partial sum of these nonnegative terms is at most the mean,
// so none overflows where the mean itself is finite (Σ ω_i ℓ_i can, for logits near FLT_MAX).
__global__ void mean_loss_kernel(int batch, const float* example_loss, const float* weights, float* mean_loss) {
  __shared__ float scratch[kMeanThreads / 32];
  const float inv_batch = 1.0f / float(batch);
  float sum = 0.0f;
  for (int i = threadIdx.x; i < batch; i += kMeanThreads)
    sum += ((weights ? weights[i] : 1.0f) * inv_batch) * example_loss[i];
  sum = block_allreduce<kMeanThreads>(sum, SumOp{}, scratch);
  if (threadIdx.x == 0) mean_loss[0] = sum;
}

__global__ void backward_kernel(int64_t n, const float* dmean_loss, const float* dlogits, float* dlogits_out) {
  const float scale = dmean_loss[0];
  for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < n; k += int64_t(gridDim.x) * blockDim.x)
    dlogits_out[k] += scale * dlogits[k];
}

}  // namespace

void softmax_cross_entropy_forward(const kernels::LossShape& s, const float* logits, const int32_t* labels,
                                   const float* weights, float* example_loss, float* mean_loss,
                                   float* dlogits, float* proxy_norm) {
  const cudaStream_t stream = current_stream();
  if (s.batch > 0 && s.classes > 0) {
    if (s.classes <= kWarpClasses) {
      constexpr int kExamplesPerBlock = kBlockThreads / 32;
      RAISIN_LAUNCH((forward_kernel<32>), (s.batch + kExamplesPerBlock - 1) / kExamplesPerBlock, kBlockThreads, 0,
                    stream)(s.batch, s.classes, logits, labels, weights, example_loss, dlogits, proxy_norm);
    } else {
      RAISIN_LAUNCH((forward_kernel<kBlockThreads>), s.batch, kBlockThreads, 0, stream)(
          s.batch, s.classes, logits, labels, weights, example_loss, dlogits, proxy_norm);
    }
    RAISIN_CUDA_CHECK(cudaGetLastError());
  }
  RAISIN_LAUNCH(mean_loss_kernel, 1, kMeanThreads, 0, stream)(s.batch, example_loss, weights, mean_loss);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

void softmax_cross_entropy_backward(const kernels::LossShape& s, const float* dmean_loss, const float* dlogits,
                                    float* dlogits_out) {
  const int64_t n = int64_t(s.batch) * s.classes;
  if (!dlogits_out || n <= 0) return;
  const int blocks = int(std::min<int64_t>((n + kBlockThreads - 1) / kBlockThreads, 65535));
  RAISIN_LAUNCH(backward_kernel, blocks, kBlockThreads, 0, current_stream())(n, dmean_loss, dlogits, dlogits_out);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

}  // namespace raisin::cuda
