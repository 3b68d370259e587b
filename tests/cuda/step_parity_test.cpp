// CUDA parity for the training step's scalars (kernels/cuda/step.cu against kernels/cpu/step.cpp).
// schedule_step over many steps with a changing multiplier (from device memory and the fallback): the
// progress and multiplier slots must equal the CPU's bit for bit (no fma), and so must the learning rate,
// except that on a GPU the cosine schedule may differ in the last float bit through the device's cos.
// step_metrics over batches that span several tiles of the kernel's block, with tied logits, with and
// without weights: the row must equal the CPU's bit for bit (the accuracy is summed in the same order).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/kernels.h"
#include "tests/cuda/parity.h"
#include "tests/support/check.h"

namespace raisin {
namespace {

using kernels::LrSchedule;

// How many floats lie between a and b (0 when equal); both finite and of the same sign here.
int64_t ulps_apart(float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, sizeof a);
  std::memcpy(&ib, &b, sizeof b);
  return std::llabs(int64_t(ia) - int64_t(ib));
}

// The emulator computes with the host's cos and pow, so it must match exactly.
int64_t allowed_lr_ulps(const LrSchedule& schedule) {
#if defined(RAISIN_CUDA_EMULATED) && RAISIN_CUDA_EMULATED
  (void)schedule;
  return 0;
#else
  return schedule.kind == LrSchedule::Kind::cosine ? 1 : 0;
#endif
}

const LrSchedule kSchedules[] = {
    {.kind = LrSchedule::Kind::cosine, .base_lr = 0.1f, .total_epochs = 3, .warmup_epochs = 0.25},
    {.kind = LrSchedule::Kind::step, .base_lr = 0.4f, .step_epochs = 0.7, .gamma = 0.3f},
    {.kind = LrSchedule::Kind::constant, .base_lr = 0.05f, .warmup_epochs = 0.5},
};

TEST_F(CudaParity, ScheduleStepMatchesCpuOverManySteps) {
  const double epochs_per_step = 128.0 / 50000.0;
  for (const LrSchedule& schedule : kSchedules)
    for (bool from_memory : {true, false}) {
      SCOPED_TRACE(::testing::Message() << "schedule kind " << int(schedule.kind) << " multiplier "
                                        << (from_memory ? "in device memory" : "fallback"));
      double scalars[kernels::kStepScalarCount] = {0, 0};
      DeviceBuffer<double> dev_scalars(std::vector<double>(kernels::kStepScalarCount, 0.0));
      DeviceBuffer<double> dev_multiplier(std::vector<double>{1.0});
      DeviceBuffer<float> dev_lr(size_t(1));
      for (int step = 0; step < 1500; ++step) {
        const double m = 0.55 + 0.0011 * (step % 900);
        RAISIN_CUDA_CHECK(cudaMemcpy(dev_multiplier.ptr, &m, sizeof m, cudaMemcpyHostToDevice));
        float lr = -1;
        cpu::schedule_step(schedule, epochs_per_step, from_memory ? &m : nullptr, m, scalars, &lr);
        cuda::schedule_step(schedule, epochs_per_step, from_memory ? dev_multiplier.ptr : nullptr, m,
                            dev_scalars.ptr, dev_lr.ptr);
        const float gpu_lr = dev_lr.host()[0];
        const std::vector<double> gpu_scalars = dev_scalars.host();
        ASSERT_LE(ulps_apart(gpu_lr, lr), allowed_lr_ulps(schedule)) << "step " << step << ": " << gpu_lr << " vs " << lr;
        ASSERT_EQ(gpu_scalars[kernels::kStepProgress], scalars[kernels::kStepProgress]) << "step " << step;
        ASSERT_EQ(gpu_scalars[kernels::kStepMultiplier], scalars[kernels::kStepMultiplier]) << "step " << step;
      }
      EXPECT_GT(scalars[kernels::kStepProgress], 3.0);  // past the cosine's end and several step decays
    }
}

// Logits rounded to a few levels, so rows often tie for the maximum.
std::vector<float> tied_logits(size_t n, uint64_t seed) {
  const std::vector<int32_t> levels = test::random_ints(n, seed, 4);
  return std::vector<float>(levels.begin(), levels.end());
}

TEST_F(CudaParity, StepMetricsMatchesCpu) {
  const double scalars[kernels::kStepScalarCount] = {1.375, 0.9};
  const float mean_loss = 2.25f, lr = 0.0625f;
  DeviceBuffer<double> dev_scalars(std::vector<double>(scalars, scalars + kernels::kStepScalarCount));
  DeviceBuffer<float> dev_loss(std::vector<float>{mean_loss}), dev_lr(std::vector<float>{lr});
  for (const kernels::LossShape s : {kernels::LossShape{1, 1}, kernels::LossShape{7, 3}, kernels::LossShape{256, 10},
                                     kernels::LossShape{257, 10}, kernels::LossShape{600, 100}})
    for (bool tied : {true, false})
      for (bool weighted : {true, false}) {
        SCOPED_TRACE(::testing::Message() << "batch " << s.batch << " classes " << s.classes << " tied " << tied
                                          << " weighted " << weighted);
        const size_t n = size_t(s.batch) * size_t(s.classes);
        const std::vector<float> logits = tied ? tied_logits(n, 1) : test::random_floats(n, 2);
        // Labels biased towards small classes, so that some rows are right.
        const std::vector<int32_t> labels = test::random_ints(size_t(s.batch), 3, s.classes < 3 ? s.classes : 3);
        const std::vector<float> weights = test::random_floats(size_t(s.batch), 4, 0.1f, 5.0f);
        double row[kernels::kStepMetricCount];
        const int64_t first_row = 0, second_row = 1;
        cpu::step_metrics(s, logits.data(), labels.data(), weighted ? weights.data() : nullptr, &mean_loss, &lr,
                          scalars, &first_row, row);
        DeviceBuffer<float> dev_logits(logits), dev_weights(weights);
        DeviceBuffer<int32_t> dev_labels(labels);
        // The GPU writes the second row of two, as told by the index in device memory.
        DeviceBuffer<double> dev_rows(size_t(2 * kernels::kStepMetricCount));
        DeviceBuffer<int64_t> dev_row_index(std::vector<int64_t>{second_row});
        cuda::step_metrics(s, dev_logits.ptr, dev_labels.ptr, weighted ? dev_weights.ptr : nullptr, dev_loss.ptr,
                           dev_lr.ptr, dev_scalars.ptr, dev_row_index.ptr, dev_rows.ptr);
        const std::vector<double> gpu_rows = dev_rows.host();
        for (int k = 0; k < kernels::kMetricFaultBuffer; ++k) {  // the slots step_metrics writes
          EXPECT_EQ(gpu_rows[kernels::kStepMetricCount + k], row[k]) << "metric " << k;
          EXPECT_TRUE(std::isnan(gpu_rows[k])) << "the first row is not the step's";
        }
        if (s.batch >= 256) {
          EXPECT_GT(row[kernels::kMetricAccuracy], 0.0);  // some rows were right
        }
      }
}

}  // namespace
}  // namespace raisin
