// The engine's GPU path against its CPU path: the same net, data, seed and sampler trained for a few
// steps on Device::cuda and on the cpu must give the same losses and parameters within float tolerance.
// Built twice: over the CUDA emulator (runs in CI; there cuBLAS/cuDNN calls route to the CPU kernels)
// and over the real CUDA backend (skips without a GPU unless RAISIN_REQUIRE_GPU=1).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/sampler.h"
#include "engine/trainer.h"
#include "models/models.h"
#include "tests/device/cuda_backend_test.h"

namespace raisin {
namespace {

class DeviceTraining : public test::CudaBackendTest {};

struct TrainingRun {
  std::vector<double> losses;
  std::vector<std::pair<std::string, Tensor>> initial, final;  // state dicts, on the cpu
  Evaluation evaluation;
};

std::vector<std::pair<std::string, Tensor>> host_state(const Module& model) {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& [name, t] : model.state_dict()) {
    Tensor copy = Tensor::empty(t.shape(), t.dtype());  // a copy also when t is on the cpu
    copy.copy_from(t);
    out.emplace_back(name, copy);
  }
  return out;
}

TrainingRun train(const std::string& model_name, const Dataset& data, const Normalization& normalization, Device device,
                  int steps, int batch, bool augment) {
  auto model = make_model(model_name, {data.channels, data.height, data.width, data.classes}, 3);
  model->to(device);
  UniformIidSampler sampler(data.count, 5);
  TrainOptions options;
  options.batch = batch;
  options.schedule.kind = Schedule::Kind::constant;
  options.schedule.base_lr = 0.05f;
  options.seed = 9;
  options.crop_padding = augment ? 2 : 0;
  options.flip = augment;
  Trainer trainer(*model, data, normalization, sampler, options);
  TrainingRun run;
  run.initial = host_state(*model);
  for (int i = 0; i < steps; ++i) run.losses.push_back(trainer.step().loss);
  run.evaluation = trainer.evaluate(data, 64);
  run.final = host_state(*model);
  return run;
}

// Losses and evaluation within loss_rtol; for every f32 tensor of the state (parameters and running
// statistics), the change training made on the device against the change on the cpu:
// ‖Δgpu − Δcpu‖ / ‖Δcpu‖ ≤ update_rtol. (Comparing the changes, not the values, keeps the check sharp:
// the weights hardly move in a few steps.)
void expect_same_training(const TrainingRun& cpu, const TrainingRun& gpu, double loss_rtol, double update_rtol) {
  ASSERT_EQ(cpu.losses.size(), gpu.losses.size());
  for (size_t i = 0; i < cpu.losses.size(); ++i)
    EXPECT_NEAR(gpu.losses[i], cpu.losses[i], loss_rtol * std::abs(cpu.losses[i])) << "loss of step " << i;
  EXPECT_NEAR(gpu.evaluation.loss, cpu.evaluation.loss, loss_rtol * cpu.evaluation.loss);
  EXPECT_NEAR(gpu.evaluation.accuracy, cpu.evaluation.accuracy, 1.0 / double(cpu.evaluation.count));  // one near tie may flip
  ASSERT_EQ(cpu.final.size(), gpu.final.size());
  for (size_t i = 0; i < cpu.final.size(); ++i) {
    const auto& [name, after_cpu] = cpu.final[i];
    ASSERT_EQ(name, gpu.final[i].first);
    const Tensor &after_gpu = gpu.final[i].second, &before = cpu.initial[i].second;
    if (after_cpu.dtype() != DType::f32) {
      EXPECT_EQ(after_cpu.i64()[0], after_gpu.i64()[0]) << name;  // num_batches_tracked
      continue;
    }
    double diff = 0, change = 0;
    for (int64_t j = 0; j < after_cpu.numel(); ++j) {
      const double dc = double(after_cpu.f32()[j]) - before.f32()[j], dg = double(after_gpu.f32()[j]) - before.f32()[j];
      diff += (dg - dc) * (dg - dc);
      change += dc * dc;
    }
    EXPECT_LE(std::sqrt(diff), update_rtol * std::sqrt(change)) << name << ": the update differs by "
                                                                << std::sqrt(diff / std::max(change, 1e-300));
  }
}

TEST_F(DeviceTraining, Lenet5MatchesTheCpu) {
  const Dataset data = make_synthetic(96, 1, 28, 28, 10, 4);
  const Normalization normalization = channel_statistics(data);
  const TrainingRun cpu = train("lenet5", data, normalization, Device::cpu(), 4, 16, false);
  const TrainingRun gpu = train("lenet5", data, normalization, Device::cuda(0), 4, 16, false);
  expect_same_training(cpu, gpu, 1e-4, 1e-3);
}

// Batch norm, residual adds, global pooling, stride-2 convolutions and augmentation on the device, over
// one step. The update tolerance is loose (3%; about 1% measured on the emulator) because this net is
// that sensitive at batch 8: on the cpu alone, a 1e-6 relative perturbation of the batch-norm outputs
// moves the first step's updates by ~1% and the second's by 1-4% (Σ dy over a channel cancels to a small
// fraction of Σ |dy|). The GPU's batch statistics are float, the CPU's double. A wrong kernel is off by O(1).
TEST_F(DeviceTraining, Resnet20WithAugmentationMatchesTheCpu) {
  const Dataset data = make_synthetic(24, 3, 32, 32, 10, 6);
  const Normalization normalization = channel_statistics(data);
  const TrainingRun cpu = train("resnet20", data, normalization, Device::cpu(), 1, 8, true);
  const TrainingRun gpu = train("resnet20", data, normalization, Device::cuda(0), 1, 8, true);
  expect_same_training(cpu, gpu, 1e-4, 3e-2);
}

// Dropout masks come from the same Philox stream on both backends.
TEST_F(DeviceTraining, VggSmallWithDropoutMatchesTheCpu) {
  const Dataset data = make_synthetic(16, 3, 32, 32, 10, 8);
  const Normalization normalization = channel_statistics(data);
  const TrainingRun cpu = train("vgg-small", data, normalization, Device::cpu(), 2, 8, false);
  const TrainingRun gpu = train("vgg-small", data, normalization, Device::cuda(0), 2, 8, false);
  expect_same_training(cpu, gpu, 1e-4, 1e-3);
}

}  // namespace
}  // namespace raisin
