// The training step's scalars on the CPU: the learning rate and progress of a step (schedule_step) and
// its row of metrics (step_metrics), exactly what engine/trainer.cpp computes on the host.
#include "kernels/cpu/kernels.h"

namespace raisin::cpu {

void schedule_step(const kernels::LrSchedule& schedule, double epochs_per_step, const double* multiplier,
                   double fallback_multiplier, double* scalars, float* lr) {
  const double m = multiplier ? multiplier[0] : fallback_multiplier;
  lr[0] = float(m * double(kernels::scheduled_lr(schedule, scalars[kernels::kStepProgress])));
  scalars[kernels::kStepMultiplier] = m;
  scalars[kernels::kStepProgress] += m * epochs_per_step;
}

void step_metrics(const kernels::LossShape& s, const float* logits, const int32_t* labels, const float* weights,
                  const float* mean_loss, const float* lr, const double* scalars, const int64_t* row_index,
                  double* rows) {
  double* row = rows + row_index[0] * kernels::kStepMetricCount;
  double correct = 0;  // in double, in index order (the CUDA twin adds in the same order)
  for (int j = 0; j < s.batch; ++j) {
    const float* z = logits + int64_t(j) * s.classes;
    int best = 0;
    for (int k = 1; k < s.classes; ++k)
      if (z[k] > z[best]) best = k;
    if (best == labels[j]) correct += weights ? double(weights[j]) : 1.0;
  }
  row[kernels::kMetricLoss] = mean_loss[0];
  row[kernels::kMetricAccuracy] = correct / s.batch;
  row[kernels::kMetricLr] = lr[0];
  row[kernels::kMetricMultiplier] = scalars[kernels::kStepMultiplier];
  row[kernels::kMetricProgress] = scalars[kernels::kStepProgress];
}

}  // namespace raisin::cpu
