// The training step's scalars on the device, the twins of kernels/cpu/step.cpp: schedule_step (one
// thread: the step's learning rate, multiplier and progress) and step_metrics (one block: the step's
// row of metrics). Both keep a step free of host round trips for its learning rate and its reports.
//
// Agreement with the CPU: progress is advanced with __dmul_rn so that nvcc cannot fuse its multiply and
// add into one fma (the CPU rounds twice), and the accuracy is summed in double in index order, so both
// are bit-equal to the CPU; the learning rate can differ in its last float bit only where the device's
// cos and pow round differently from the C library's.
#include "kernels/cuda/compat.h"

#include <cstdint>

#include "kernels/cuda/device.h"
#include "kernels/cuda/kernels.h"

namespace raisin::cuda {

namespace {

constexpr int kMetricThreads = 256;

__global__ void schedule_step_kernel(kernels::LrSchedule schedule, double epochs_per_step, const double* multiplier,
                                     double fallback_multiplier, double* scalars, float* lr) {
  const double m = multiplier ? multiplier[0] : fallback_multiplier;
  lr[0] = float(m * double(kernels::scheduled_lr(schedule, scalars[kernels::kStepProgress])));
  scalars[kernels::kStepMultiplier] = m;
  scalars[kernels::kStepProgress] += __dmul_rn(m, epochs_per_step);
}

// Each thread finds the argmax (first maximum) of one row of a tile of kMetricThreads rows and leaves its
// ω or 0 in shared memory; thread 0 adds the tile's entries in order, tile after tile.
__global__ void step_metrics_kernel(kernels::LossShape s, const float* logits, const int32_t* labels,
                                    const float* weights, const float* mean_loss, const float* lr,
                                    const double* scalars, const int64_t* row_index, double* rows) {
  __shared__ double hit_weight[kMetricThreads];
  const int t = int(threadIdx.x);
  double correct = 0;  // thread 0's running sum
  for (int start = 0; start < s.batch; start += kMetricThreads) {
    const int j = start + t;
    double hit = 0;
    if (j < s.batch) {
      const float* z = logits + int64_t(j) * s.classes;
      int best = 0;
      for (int k = 1; k < s.classes; ++k)
        if (z[k] > z[best]) best = k;
      if (best == labels[j]) hit = weights ? double(weights[j]) : 1.0;
    }
    hit_weight[t] = hit;
    __syncthreads();
    if (t == 0) {
      const int rows = min(kMetricThreads, s.batch - start);
      for (int r = 0; r < rows; ++r) correct += hit_weight[r];
    }
    __syncthreads();
  }
  if (t == 0) {
    double* row = rows + row_index[0] * kernels::kStepMetricCount;
    row[kernels::kMetricLoss] = mean_loss[0];
    row[kernels::kMetricAccuracy] = correct / s.batch;
    row[kernels::kMetricLr] = lr[0];
    row[kernels::kMetricMultiplier] = scalars[kernels::kStepMultiplier];
    row[kernels::kMetricProgress] = scalars[kernels::kStepProgress];
  }
}

}  // namespace

void schedule_step(const kernels::LrSchedule& schedule, double epochs_per_step, const double* multiplier,
                   double fallback_multiplier, double* scalars, float* lr) {
  RAISIN_LAUNCH(schedule_step_kernel, 1, 1, 0, current_stream())(schedule, epochs_per_step, multiplier,
                                                                 fallback_multiplier, scalars, lr);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

void step_metrics(const kernels::LossShape& s, const float* logits, const int32_t* labels, const float* weights,
                  const float* mean_loss, const float* lr, const double* scalars, const int64_t* row_index,
                  double* rows) {
  RAISIN_LAUNCH(step_metrics_kernel, 1, kMetricThreads, 0, current_stream())(s, logits, labels, weights, mean_loss,
                                                                              lr, scalars, row_index, rows);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

}  // namespace raisin::cuda
