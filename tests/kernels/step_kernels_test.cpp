// The training step's scalar kernels on the CPU (kernels/cpu/step.cpp): schedule_step against the host
// trainer's arithmetic (lr = float(m · schedule(progress)), progress += m · epochs per step) and values
// worked out by hand; step_metrics against accuracies counted by hand, with ties, weights and no weights.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "kernels/cpu/kernels.h"

namespace raisin {
namespace {

using kernels::LrSchedule;

LrSchedule cosine_schedule() {
  return LrSchedule{.kind = LrSchedule::Kind::cosine, .base_lr = 0.1f, .total_epochs = 10};
}
LrSchedule step_schedule() {
  return LrSchedule{.kind = LrSchedule::Kind::step, .base_lr = 1.0f, .step_epochs = 3, .gamma = 0.5f};
}
LrSchedule warm_constant_schedule() {
  return LrSchedule{.kind = LrSchedule::Kind::constant, .base_lr = 0.2f, .warmup_epochs = 2};
}

// Runs schedule_step `steps` times with half an epoch per step and no multiplier (the fallback m), and
// returns the learning rate of each step.
std::vector<float> lrs_at_half_epochs(const LrSchedule& schedule, double m, int steps) {
  double scalars[kernels::kStepScalarCount] = {0, 0};
  std::vector<float> lrs;
  for (int i = 0; i < steps; ++i) {
    float lr = -1;
    cpu::schedule_step(schedule, 0.5, nullptr, m, scalars, &lr);
    lrs.push_back(lr);
    EXPECT_EQ(scalars[kernels::kStepMultiplier], m);
    EXPECT_EQ(scalars[kernels::kStepProgress], (i + 1) * 0.5 * m);
  }
  return lrs;
}

TEST(ScheduleStep, HandWorkedValuesAtHalfEpochs) {
  // Cosine from 0.1 over 10 epochs: full at 0, half at 5, zero from 10 on.
  const std::vector<float> cosine = lrs_at_half_epochs(cosine_schedule(), 1.0, 24);
  EXPECT_EQ(cosine[0], 0.1f);
  EXPECT_EQ(cosine[10], 0.05f);
  EXPECT_EQ(cosine[20], 0.0f);
  EXPECT_EQ(cosine[23], 0.0f);
  EXPECT_GT(cosine[5], 0.05f);
  EXPECT_LT(cosine[15], 0.05f);
  // Step: 1 for epochs [0, 3), 0.5 for [3, 6), 0.25 from 6.
  const std::vector<float> step = lrs_at_half_epochs(step_schedule(), 1.0, 14);
  for (int i = 0; i < 14; ++i) EXPECT_EQ(step[i], i < 6 ? 1.0f : i < 12 ? 0.5f : 0.25f) << "step " << i;
  // Constant 0.2 after a warmup of 2 epochs, with a multiplier of 2: progress moves 1 epoch a step.
  const std::vector<float> warm = lrs_at_half_epochs(warm_constant_schedule(), 2.0, 4);
  EXPECT_EQ(warm[0], 0.0f);
  EXPECT_EQ(warm[1], float(2.0 * double(0.2f) * 0.5));
  EXPECT_EQ(warm[2], float(2.0 * double(0.2f)));
  EXPECT_EQ(warm[3], float(2.0 * double(0.2f)));
}

// The trainer's loop, step by step: lr = float(m · double(schedule(progress))) and progress += m · e,
// with a multiplier that changes every step (RAIS's r̂), read from memory.
TEST(ScheduleStep, FollowsTheHostTrainerWithAChangingMultiplier) {
  const double epochs_per_step = 128.0 / 50000.0;
  for (LrSchedule schedule : {cosine_schedule(), step_schedule(), warm_constant_schedule()}) {
    schedule.total_epochs = 2;
    schedule.step_epochs = 0.5;
    schedule.warmup_epochs = schedule.kind == LrSchedule::Kind::constant ? 0.3 : 0.0;
    double scalars[kernels::kStepScalarCount] = {0, 0};
    double progress = 0;
    for (int i = 0; i < 1000; ++i) {
      const double m = 0.6 + 0.001 * (i % 700);
      float lr = -1;
      cpu::schedule_step(schedule, epochs_per_step, &m, 123.0, scalars, &lr);
      ASSERT_EQ(lr, float(m * double(kernels::scheduled_lr(schedule, progress)))) << "step " << i;
      progress += m * epochs_per_step;
      ASSERT_EQ(scalars[kernels::kStepProgress], progress) << "step " << i;
      ASSERT_EQ(scalars[kernels::kStepMultiplier], m) << "step " << i;
    }
    EXPECT_GT(progress, 2.0);  // the schedule was followed to its end
  }
}

// Five rows of four classes, with ties (the first maximum wins) and an all-equal row.
struct MetricsCase {
  std::vector<float> logits = {
      0.1f, 0.9f,  0.3f,  0.2f,   // argmax 1, label 1: correct
      0.5f, 0.5f,  0.1f,  0.0f,   // tie between 0 and 1, label 1: wrong
      0.5f, 0.5f,  0.1f,  0.0f,   // the same tie, label 0: correct
      -1.f, -2.f,  -0.5f, -3.f,   // argmax 2, label 3: wrong
      0.0f, 0.0f,  0.0f,  0.0f,   // all equal, label 0: correct
  };
  std::vector<int32_t> labels = {1, 1, 0, 3, 0};
  std::vector<float> weights = {0.5f, 2.0f, 1.25f, 3.0f, 0.25f};
  kernels::LossShape shape{5, 4};
  float mean_loss = 1.75f, lr = 0.03f;
  double scalars[kernels::kStepScalarCount] = {2.5, 0.8};  // progress, multiplier
};

TEST(StepMetrics, CountsFirstMaximaWithAndWithoutWeights) {
  MetricsCase c;
  double row[kernels::kStepMetricCount];
  const int64_t first_row = 0;
  cpu::step_metrics(c.shape, c.logits.data(), c.labels.data(), nullptr, &c.mean_loss, &c.lr, c.scalars, &first_row,
                    row);
  EXPECT_EQ(row[kernels::kMetricLoss], double(1.75f));
  EXPECT_EQ(row[kernels::kMetricAccuracy], 3.0 / 5.0);
  EXPECT_EQ(row[kernels::kMetricLr], double(0.03f));
  EXPECT_EQ(row[kernels::kMetricMultiplier], 0.8);
  EXPECT_EQ(row[kernels::kMetricProgress], 2.5);

  cpu::step_metrics(c.shape, c.logits.data(), c.labels.data(), c.weights.data(), &c.mean_loss, &c.lr, c.scalars,
                    &first_row, row);
  EXPECT_EQ(row[kernels::kMetricAccuracy], (0.5 + 1.25 + 0.25) / 5.0);  // rows 0, 2 and 4
  EXPECT_EQ(row[kernels::kMetricLoss], double(1.75f));
  EXPECT_EQ(row[kernels::kMetricProgress], 2.5);
}

TEST(StepMetrics, SingleClassIsAlwaysRight) {
  const std::vector<float> logits = {3.0f, -1.0f, 0.0f};
  const std::vector<int32_t> labels = {0, 0, 0};
  const float mean_loss = 0, lr = 0.1f;
  const double scalars[kernels::kStepScalarCount] = {0, 1};
  double row[kernels::kStepMetricCount];
  const int64_t first_row = 0;
  cpu::step_metrics({3, 1}, logits.data(), labels.data(), nullptr, &mean_loss, &lr, scalars, &first_row, row);
  EXPECT_EQ(row[kernels::kMetricAccuracy], 1.0);
}

// The row index is read from memory (a CUDA graph replays a step into the next row): only that row changes.
TEST(StepMetrics, WritesTheRowItIsGiven) {
  MetricsCase c;
  std::vector<double> rows(size_t(3 * kernels::kStepMetricCount), -1.0);
  const int64_t row_index = 2;
  cpu::step_metrics(c.shape, c.logits.data(), c.labels.data(), nullptr, &c.mean_loss, &c.lr, c.scalars, &row_index,
                    rows.data());
  for (int k = 0; k < 2 * kernels::kStepMetricCount; ++k) EXPECT_EQ(rows[size_t(k)], -1.0) << k;
  EXPECT_EQ(rows[size_t(2 * kernels::kStepMetricCount + kernels::kMetricAccuracy)], 3.0 / 5.0);
  EXPECT_EQ(rows[size_t(2 * kernels::kStepMetricCount + kernels::kMetricProgress)], 2.5);
}

}  // namespace
}  // namespace raisin
