// The training step replayed from a CUDA graph against the same step launched kernel by kernel: with the
// same net, data, seed and sampler, a run with graphs and a run without must give the same metrics and the
// same final state bit for bit (a replay reads the step, the metrics row and the RAIS counters from device
// memory, so a value baked into the graph shows up as a different dropout mask, crop, draw or row).
// Built twice: over the CUDA emulator (runs in CI: its stream capture records and replays the launches)
// and over the real CUDA backend (skips without a GPU unless RAISIN_REQUIRE_GPU=1).
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/sampler.h"
#include "engine/trainer.h"
#include "models/models.h"
#include "rais/device_sampler.h"
#include "tests/device/cuda_backend_test.h"

namespace raisin {
namespace {

class GraphStep : public test::CudaBackendTest {};

struct TrainedRun {
  std::vector<StepResult> results;
  std::vector<std::pair<std::string, Tensor>> state;  // the model's state dict, on the cpu
  SamplerState sampler_state;
  Trainer::GraphStats graphs;
};

struct RunSetup {
  std::string model = "lenet5";
  int batch = 16;
  int steps = 8;
  int queue = 1;  // steps queued between drains
  bool augment = false;
  std::function<std::unique_ptr<Sampler>(int64_t count)> sampler = [](int64_t count) {
    return std::make_unique<ShuffledSampler>(count, 5);
  };
};

TrainedRun train(const RunSetup& setup, const Dataset& data, bool graphs) {
  const Device device = Device::cuda(0);
  auto model = make_model(setup.model, {data.channels, data.height, data.width, data.classes}, 3);
  model->to(device);
  const std::unique_ptr<Sampler> sampler = setup.sampler(data.count);
  TrainOptions options;
  options.batch = setup.batch;
  options.schedule.kind = Schedule::Kind::cosine;
  options.schedule.base_lr = 0.05f;
  options.schedule.total_epochs = 4;
  options.sgd.momentum = 0.9f;
  options.seed = 9;
  options.crop_padding = setup.augment ? 2 : 0;
  options.flip = setup.augment;
  options.cuda_graphs = graphs;
  Trainer trainer(*model, data, channel_statistics(data), *sampler, options);
  TrainedRun run;
  for (int done = 0; done < setup.steps;) {
    for (int q = 0; q < setup.queue && done < setup.steps; ++q, ++done) trainer.queue_step();
    for (const StepResult& r : trainer.drain()) run.results.push_back(r);
  }
  for (const auto& [name, t] : model->state_dict()) run.state.emplace_back(name, t.to(Device::cpu()));
  sampler->save_state(run.sampler_state);
  run.graphs = trainer.graph_stats();
  return run;
}

void expect_identical(const TrainedRun& eager, const TrainedRun& replayed) {
  ASSERT_EQ(eager.results.size(), replayed.results.size());
  for (size_t i = 0; i < eager.results.size(); ++i) {
    const StepResult &e = eager.results[i], &g = replayed.results[i];
    EXPECT_EQ(g.step, e.step);
    EXPECT_EQ(g.loss, e.loss) << "loss of step " << i;
    EXPECT_EQ(g.accuracy, e.accuracy) << "accuracy of step " << i;
    EXPECT_EQ(g.lr, e.lr) << "lr of step " << i;
    EXPECT_EQ(g.lr_multiplier, e.lr_multiplier) << "multiplier of step " << i;
    EXPECT_EQ(g.progress, e.progress) << "progress of step " << i;
  }
  ASSERT_EQ(eager.state.size(), replayed.state.size());
  for (size_t i = 0; i < eager.state.size(); ++i) {
    const auto& [name, e] = eager.state[i];
    const Tensor& g = replayed.state[i].second;
    ASSERT_EQ(e.shape(), g.shape()) << name;
    ASSERT_EQ(e.dtype(), g.dtype()) << name;
    const size_t bytes = size_t(e.numel()) * dtype_size(e.dtype());
    const void* e_data = e.dtype() == DType::i64 ? static_cast<const void*>(e.i64()) : e.f32();
    const void* g_data = g.dtype() == DType::i64 ? static_cast<const void*>(g.i64()) : g.f32();
    EXPECT_EQ(std::memcmp(e_data, g_data, bytes), 0) << name << " differs";
  }
  EXPECT_EQ(eager.sampler_state.floats, replayed.sampler_state.floats);
  EXPECT_EQ(eager.sampler_state.integers, replayed.sampler_state.integers);
  EXPECT_EQ(eager.sampler_state.reals, replayed.sampler_state.reals);
}

// A host sampler (uploaded draws), steps queued in runs of three: after two eager steps the third is
// captured and every later step replays it, each into its own metrics row.
TEST_F(GraphStep, ReplaysEqualEagerStepsWithAHostSampler) {
  const Dataset data = make_synthetic(96, 1, 28, 28, 10, 4);
  RunSetup setup;
  setup.queue = 3;
  const TrainedRun eager = train(setup, data, false), replayed = train(setup, data, true);
  expect_identical(eager, replayed);
  EXPECT_EQ(eager.graphs.captures, 0);
  EXPECT_EQ(eager.graphs.replays, 0);
  EXPECT_EQ(replayed.graphs.captures, 1);
  EXPECT_EQ(replayed.graphs.replays, setup.steps - Trainer::kEagerStepsBeforeCapture);
  EXPECT_EQ(replayed.graphs.off_reason, "");
}

// Dropout masks and crops follow the step read from device memory.
TEST_F(GraphStep, DropoutAndAugmentationChangeWithEveryReplay) {
  const Dataset data = make_synthetic(16, 3, 32, 32, 10, 8);
  RunSetup setup;
  setup.model = "vgg-small";
  setup.batch = 8;
  setup.steps = 5;
  setup.augment = true;
  setup.sampler = [](int64_t count) { return std::make_unique<UniformIidSampler>(count, 5); };
  const TrainedRun eager = train(setup, data, false), replayed = train(setup, data, true);
  expect_identical(eager, replayed);
  EXPECT_EQ(replayed.graphs.replays, 3);
}

// Batch norm: running statistics on the device, and num_batches_tracked, a host counter, advanced for
// every replay as well.
TEST_F(GraphStep, BatchNormCountsReplayedSteps) {
  const Dataset data = make_synthetic(16, 3, 32, 32, 10, 6);
  RunSetup setup;
  setup.model = "resnet20";
  setup.batch = 4;
  setup.steps = 5;
  const TrainedRun eager = train(setup, data, false), replayed = train(setup, data, true);
  expect_identical(eager, replayed);
  EXPECT_EQ(replayed.graphs.replays, 3);
  for (const auto& [name, t] : replayed.state) {
    if (name.ends_with("num_batches_tracked")) {
      EXPECT_EQ(t.i64()[0], 5) << name;
    }
  }
}

// RAIS on the device: one graph for the shuffled warm-up, another once importance sampling starts (the
// draws, weights, records and r̂ then come from the replays), with PT solves and rebuilds of p between
// replays. 96 examples at batch 16: 6 warm-up steps, the first solve swapped in 3 steps later.
TEST_F(GraphStep, RaisSamplerGetsAGraphPerPhase) {
  const Dataset data = make_synthetic(96, 1, 28, 28, 10, 4);
  RunSetup setup;
  setup.steps = 20;
  setup.queue = 4;
  setup.sampler = [](int64_t count) {
    rais::RaisOptions options;
    options.record_batches = 3;
    options.refresh = 4;
    options.gain_ratio.alpha = 0.1;
    return std::make_unique<rais::DeviceRaisSampler>(count, 1, Device::cuda(0), options);
  };
  const TrainedRun eager = train(setup, data, false), replayed = train(setup, data, true);
  expect_identical(eager, replayed);
  EXPECT_EQ(eager.sampler_state.integer("importance"), 1) << "importance sampling never started";
  EXPECT_EQ(replayed.graphs.captures, 2);
  // Warm-up steps 0-8 (the solve launched at step 6 is swapped in at step 9), then steps 9-19.
  EXPECT_EQ(replayed.graphs.replays, (9 - 2) + (11 - 2));
  bool weighted = false;
  for (const StepResult& r : replayed.results) weighted |= r.lr_multiplier != 1.0;
  EXPECT_TRUE(weighted) << "r̂ never left 1: the replays did not use the importance phase's graph";
}

// A sampler whose device draw waits for the device, which a capture refuses: the trainer says why, once,
// runs every step eagerly and gets the same results.
class WaitingSampler : public UniformIidSampler {
 public:
  using UniformIidSampler::UniformIidSampler;
  bool draws_on_device() const override { return true; }
  uint64_t prepare_on_device(int64_t step, int batch) override {
    draw(step, batch, host_, weights_);
    if (!indices_.defined()) indices_ = Tensor::empty({batch}, DType::i32, Device::cuda(0));
    backend(Device::cuda(0)).copy_to_device(indices_.i32(), host_.data(), host_.size() * sizeof(int32_t));
    return 0;
  }
  DeviceDraw draw_on_device() override {
    backend(Device::cuda(0)).synchronize();
    return {indices_, Tensor()};
  }

 private:
  std::vector<int32_t> host_;
  std::vector<float> weights_;
  Tensor indices_;
};

TEST_F(GraphStep, ARefusedCaptureFallsBackToEagerSteps) {
  const Dataset data = make_synthetic(96, 1, 28, 28, 10, 4);
  RunSetup setup;
  setup.steps = 6;
  setup.sampler = [](int64_t count) { return std::make_unique<WaitingSampler>(count, 5); };
  const TrainedRun eager = train(setup, data, false);
  ::testing::internal::CaptureStderr();
  const TrainedRun fallback = train(setup, data, true);
  const std::string printed = ::testing::internal::GetCapturedStderr();
  expect_identical(eager, fallback);
  EXPECT_EQ(fallback.graphs.captures, 0);
  EXPECT_EQ(fallback.graphs.replays, 0);
  EXPECT_NE(fallback.graphs.off_reason.find("cudaStreamSynchronize"), std::string::npos) << fallback.graphs.off_reason;
  EXPECT_NE(printed.find("CUDA graphs off"), std::string::npos) << printed;
  EXPECT_EQ(printed.find("CUDA graphs off"), printed.rfind("CUDA graphs off")) << "said more than once: " << printed;
}

}  // namespace
}  // namespace raisin
