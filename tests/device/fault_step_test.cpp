// Steps with a non-finite value are not applied (trainer.h: find_nonfinite before the update, its verdict
// read by SGD and the sampler on the device): a host sampler hands the trainer a NaN importance weight at
// chosen steps, so those steps' losses are NaN. On the cpu and on the device (steps replayed from a CUDA
// graph), each such step reports the loss as its fault and leaves the parameters and momentum exactly as
// they were; the other steps train as usual.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "engine/sampler.h"
#include "engine/trainer.h"
#include "models/models.h"
#include "tests/device/cuda_backend_test.h"

namespace raisin {
namespace {

class FaultStep : public test::CudaBackendTest {};

// Uniform draws with unit weights, except a NaN weight for the first example of each step in `poisoned`.
class PoisoningSampler : public UniformIidSampler {
 public:
  PoisoningSampler(int64_t count, std::set<int64_t> poisoned) : UniformIidSampler(count, 5), poisoned_(poisoned) {}
  void draw(int64_t step, int batch, std::vector<int32_t>& indices, std::vector<float>& weights) override {
    UniformIidSampler::draw(step, batch, indices, weights);
    weights.assign(size_t(batch), 1.0f);
    if (poisoned_.count(step)) weights[0] = NAN;
  }

 private:
  std::set<int64_t> poisoned_;
};

// The model's parameters and the optimizer's momentum, on the cpu.
std::vector<std::vector<float>> snapshot(const Module& model, const Sgd& sgd) {
  std::vector<std::vector<float>> out;
  auto add = [&](const Tensor& t) {
    const Tensor host = t.to(Device::cpu());
    out.emplace_back(host.f32(), host.f32() + host.numel());
  };
  for (const auto& [name, p] : model.named_parameters()) add(p->value);
  for (const auto& [name, m] : sgd.state()) add(m);
  return out;
}

void expect_faulty_steps_not_applied(Device device) {
  SCOPED_TRACE(device.str());
  const Dataset data = make_synthetic(96, 1, 28, 28, 10, 4);
  auto model = make_model("lenet5", {1, 28, 28, 10}, 3);
  model->to(device);
  const std::set<int64_t> poisoned = {3, 6, 7};
  PoisoningSampler sampler(data.count, poisoned);
  TrainOptions options;
  options.batch = 16;
  options.schedule.kind = Schedule::Kind::constant;
  options.schedule.base_lr = 0.05f;
  options.sgd.momentum = 0.9f;
  Trainer trainer(*model, data, channel_statistics(data), sampler, options);
  std::vector<std::vector<float>> before = snapshot(*model, trainer.optimizer());
  for (int64_t step = 0; step < 10; ++step) {
    trainer.queue_step();
    const StepResult r = trainer.drain().back();
    const std::vector<std::vector<float>> after = snapshot(*model, trainer.optimizer());
    if (poisoned.count(step)) {
      EXPECT_EQ(r.fault, 0) << "step " << step << ": the loss should be the fault";
      EXPECT_TRUE(std::isnan(r.fault_value));
      EXPECT_EQ(trainer.describe_fault(r), "step " + std::to_string(step) + ": the loss is NaN");
      EXPECT_EQ(after, before) << "step " << step << " was applied";
    } else {
      EXPECT_EQ(r.fault, -1) << "step " << step;
      EXPECT_EQ(trainer.describe_fault(r), "");
      EXPECT_TRUE(std::isfinite(r.loss));
      EXPECT_NE(after, before) << "step " << step << " was not applied";
    }
    for (const auto& values : after)
      for (float v : values) ASSERT_TRUE(std::isfinite(v)) << "step " << step;
    before = after;
  }
  if (!device.is_cpu()) {
    EXPECT_GT(trainer.graph_stats().replays, 0) << "the faults should be caught in replays too";
  }
}

TEST_F(FaultStep, StepsWithANonFiniteLossAreNotApplied) {
  expect_faulty_steps_not_applied(Device::cpu());
  expect_faulty_steps_not_applied(Device::cuda(0));
}

// Trainer::step, one step at a time, throws naming the step and the fault.
TEST_F(FaultStep, StepThrowsNamingTheFault) {
  const Dataset data = make_synthetic(64, 1, 28, 28, 10, 4);
  auto model = make_model("mlp", {1, 28, 28, 10}, 3);
  PoisoningSampler sampler(data.count, {1});
  TrainOptions options;
  options.batch = 8;
  Trainer trainer(*model, data, channel_statistics(data), sampler, options);
  trainer.step();
  try {
    trainer.step();
    FAIL() << "a step with a NaN loss was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("step 1: the loss is NaN"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace raisin
