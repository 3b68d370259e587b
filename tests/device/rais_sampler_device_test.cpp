// The RAIS sampler on the training device (rais/device_sampler.h): on the emulated or real CUDA backend
// against the same sampler on the cpu (the kernels' CPU twins), bit for bit, and against the host sampler
// (rais/rais_sampler.h), to rounding; its checkpoints; and training with it on the device against the cpu.
// Built twice like train_parity_test.cpp: over the CUDA emulator (emu.*, in CI) and over the real backend.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/trainer.h"
#include "models/models.h"
#include "rais/device_sampler.h"
#include "rais/rais_sampler.h"
#include "tests/device/cuda_backend_test.h"

namespace raisin {
namespace {

class DeviceRais : public test::CudaBackendTest {};

constexpr int kClasses = 10;

// The synthetic measurements every run below feeds its sampler: example i's proxy norm at step s, and a
// dlogits row per draw with that norm, so that the gain ratio moves.
float norm_of(int32_t i, int64_t step) { return 0.05f + float(i % 23) * 0.04f * (1.0f + 0.002f * float(step % 50)); }

void measure(const std::vector<int32_t>& indices, const std::vector<float>& weights, int64_t step,
             std::vector<float>& norms, std::vector<float>& dlogits) {
  const int batch = int(indices.size());
  norms.resize(size_t(batch));
  dlogits.assign(size_t(batch) * kClasses, 0.0f);
  for (int j = 0; j < batch; ++j) {
    const int32_t i = indices[size_t(j)];
    norms[size_t(j)] = norm_of(i, step);
    const float w = weights.empty() ? 1.0f : weights[size_t(j)];
    const float entry = w * norms[size_t(j)] / std::sqrt(2.0f) / float(batch);
    dlogits[size_t(j) * kClasses + size_t(i % kClasses)] += entry;
    dlogits[size_t(j) * kClasses + size_t((i + 1) % kClasses)] -= entry;
  }
}

double bias_gradient_sq_norm(const std::vector<float>& dlogits, int batch) {
  double total = 0;
  for (int k = 0; k < kClasses; ++k) {
    double column = 0;
    for (int j = 0; j < batch; ++j) column += dlogits[size_t(j) * kClasses + size_t(k)];
    total += column * column;
  }
  return total;
}

template <typename T>
std::vector<T> host(const Tensor& t, T* (Tensor::*typed)() const) {
  std::vector<T> out(size_t(t.numel()));
  backend(t.device()).copy_to_host(out.data(), (t.*typed)(), out.size() * sizeof(T));
  return out;
}

Tensor on(Device device, Arena& arena, const std::vector<float>& values, const Shape& shape) {
  Tensor t = Tensor::empty(arena, shape);
  backend(device).copy_to_device(t.f32(), values.data(), values.size() * sizeof(float));
  return t;
}

struct Trace {
  std::vector<std::vector<int32_t>> indices;
  std::vector<std::vector<float>> weights;
  std::vector<double> multipliers;
};

// Steps [first, last) of a device sampler with the synthetic measurements.
void drive(rais::DeviceRaisSampler& sampler, Device device, int64_t first, int64_t last, int batch, Trace& trace) {
  Arena arena(0, device);
  std::vector<float> norms, dlogits;
  for (int64_t step = first; step < last; ++step) {
    arena.reset();
    sampler.prepare_on_device(step, batch);
    const DeviceDraw drawn = sampler.draw_on_device();
    trace.indices.push_back(host(drawn.indices, &Tensor::i32));
    trace.weights.push_back(drawn.weights.defined() ? host(drawn.weights, &Tensor::f32) : std::vector<float>());
    double multiplier = 0;
    backend(device).copy_to_host(&multiplier, sampler.device_lr_multiplier(), sizeof multiplier);
    trace.multipliers.push_back(multiplier);
    measure(trace.indices.back(), trace.weights.back(), step, norms, dlogits);
    sampler.observe_on_device({drawn, on(device, arena, norms, {batch}), on(device, arena, dlogits, {batch, kClasses})});
  }
}

rais::RaisOptions small_options() {
  rais::RaisOptions options;
  options.record_batches = 3;
  options.gain_ratio.alpha = 0.1;
  return options;
}

constexpr int64_t kCount = 1500;  // 24 steps per epoch at batch 64: warm-up, then solves every 3 steps
constexpr int kBatch = 64;
constexpr int64_t kSteps = 60;

void expect_same(const Trace& a, const Trace& b) {
  ASSERT_EQ(a.indices.size(), b.indices.size());
  for (size_t s = 0; s < a.indices.size(); ++s) {
    ASSERT_EQ(a.indices[s], b.indices[s]) << "draws of step " << s;
    ASSERT_EQ(a.weights[s], b.weights[s]) << "weights of step " << s;
    ASSERT_EQ(a.multipliers[s], b.multipliers[s]) << "r̂ of step " << s;
  }
}

TEST_F(DeviceRais, SameDrawsWeightsAndMultipliersAsOnTheCpu) {
  rais::DeviceRaisSampler gpu(kCount, 7, Device::cuda(0), small_options()), cpu(kCount, 7, Device::cpu(), small_options());
  Trace on_gpu, on_cpu;
  drive(gpu, Device::cuda(0), 0, kSteps, kBatch, on_gpu);
  drive(cpu, Device::cpu(), 0, kSteps, kBatch, on_cpu);
  expect_same(on_gpu, on_cpu);
  EXPECT_EQ(gpu.probabilities(), cpu.probabilities());
  const rais::RaisStats g = gpu.stats(), c = cpu.stats();
  EXPECT_TRUE(g.importance_sampling);
  EXPECT_GT(g.solves, 5);
  EXPECT_EQ(g.solves, c.solves);
  EXPECT_EQ(g.c, c.c);
  EXPECT_EQ(g.d, c.d);
  EXPECT_EQ(g.largest_weight, c.largest_weight);
  EXPECT_NE(on_gpu.multipliers.back(), 1.0);  // r̂ moved
}

// PT on its own thread (waiting on a fence for its snapshot) gives the same run as PT at launch.
TEST_F(DeviceRais, SameRunWithTheSolveOnItsOwnThread) {
  rais::RaisOptions background = small_options();
  background.background_solve = true;
  rais::DeviceRaisSampler at_launch(kCount, 7, Device::cuda(0), small_options()),
      on_thread(kCount, 7, Device::cuda(0), background);
  Trace a, b;
  drive(at_launch, Device::cuda(0), 0, kSteps, kBatch, a);
  drive(on_thread, Device::cuda(0), 0, kSteps, kBatch, b);
  expect_same(a, b);
  EXPECT_EQ(on_thread.stats().solves, at_launch.stats().solves);
}

// The trace (rais/trace.h) on the device: one set of files per swapped-in solve, each examples file's p
// summing to 1, and the traced run drawing exactly like an untraced one.
TEST_F(DeviceRais, TracesEverySolveWithoutChangingTheDraws) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("raisin_device_trace_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  rais::RaisOptions traced = small_options();
  traced.trace_dir = dir.string();
  rais::DeviceRaisSampler plain(kCount, 7, Device::cuda(0), small_options()), tracing(kCount, 7, Device::cuda(0), traced);
  Trace a, b;
  drive(plain, Device::cuda(0), 0, kSteps, kBatch, a);
  drive(tracing, Device::cuda(0), 0, kSteps, kBatch, b);
  expect_same(a, b);
  const int64_t solves = tracing.stats().solves;
  ASSERT_GT(solves, 5);
  for (int64_t k = 1; k <= solves; ++k) {
    char name[64];
    std::snprintf(name, sizeof name, "solve_%04lld_examples.csv", (long long)k);
    std::ifstream in(dir / name);
    ASSERT_TRUE(in) << name;
    std::string line, header;
    std::getline(in, header);
    ASSERT_EQ(header.substr(header.rfind(',') + 1), "p") << name << ": p is the last column";
    double total = 0;
    int64_t rows = 0;
    while (std::getline(in, line)) {
      total += std::stod(line.substr(line.rfind(',') + 1));
      ++rows;
    }
    EXPECT_EQ(rows, kCount) << name;
    EXPECT_NEAR(total, 1.0, 1e-9) << name;
  }
  std::filesystem::remove_all(dir);
}

// Against the host sampler fed the same measurements: the same shuffled warm-up, the same first (c, d),
// and p where both build it from the same state equal to rounding.
TEST_F(DeviceRais, MatchesTheHostSampler) {
  const rais::RaisOptions options = small_options();
  rais::DeviceRaisSampler device(kCount, 7, Device::cuda(0), options);
  rais::RaisSampler reference(kCount, 7, options);
  const int64_t warmup = rais::steps_per_epoch(kCount, kBatch), swap_in = warmup + options.record_batches;
  Trace trace;
  std::vector<int32_t> indices;
  std::vector<float> weights, norms, dlogits;
  for (int64_t step = 0; step <= swap_in; ++step) {
    drive(device, Device::cuda(0), step, step + 1, kBatch, trace);
    reference.draw(step, kBatch, indices, weights);
    ASSERT_EQ(trace.weights.back().empty(), weights.empty()) << "step " << step;
    EXPECT_NEAR(trace.multipliers.back(), reference.lr_multiplier(), 1e-12) << "step " << step;
    if (step == swap_in) break;  // the importance draws differ: the alias tables are built differently
    ASSERT_EQ(trace.indices.back(), indices) << "step " << step;
    measure(indices, weights, step, norms, dlogits);
    reference.observe({step, indices, norms.data(), weights.empty() ? nullptr : weights.data(),
                       bias_gradient_sq_norm(dlogits, kBatch)});
  }
  const rais::RaisStats d = device.stats(), r = reference.stats();
  ASSERT_TRUE(d.importance_sampling);
  ASSERT_TRUE(r.importance_sampling);
  EXPECT_EQ(d.c, r.c);  // the same records and a gave PT the same problem
  EXPECT_EQ(d.d, r.d);
  const std::vector<double> p = device.probabilities(), expected = reference.probabilities();
  ASSERT_EQ(p.size(), expected.size());
  double sum = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    EXPECT_NEAR(p[i], expected[i], 1e-12 * expected[i]) << "p of example " << i;
    sum += p[i];
  }
  EXPECT_NEAR(sum, 1.0, 1e-12);
  // ω = 1/(n·p) of the first importance draw.
  for (int j = 0; j < kBatch; ++j) {
    const int32_t i = trace.indices.back()[size_t(j)];
    EXPECT_NEAR(trace.weights.back()[size_t(j)], 1.0 / (double(kCount) * expected[size_t(i)]), 1e-6 * trace.weights.back()[size_t(j)]);
  }
}

// Stopped at any step (a solve in flight or not), saved, loaded into a fresh sampler on the same
// device: the rest of the run is the same bit for bit.
TEST_F(DeviceRais, CheckpointsResumeExactly) {
  const Device device = Device::cuda(0);
  rais::DeviceRaisSampler whole(kCount, 3, device, small_options());
  Trace uninterrupted;
  drive(whole, device, 0, kSteps, kBatch, uninterrupted);
  for (int64_t stop : {int64_t(10), int64_t(25), int64_t(31)}) {
    SCOPED_TRACE(::testing::Message() << "stopped at step " << stop);
    rais::DeviceRaisSampler first(kCount, 3, device, small_options());
    Trace head, tail;
    drive(first, device, 0, stop, kBatch, head);
    SamplerState state;
    first.save_state(state);
    rais::DeviceRaisSampler second(kCount, 3, device, small_options());
    second.load_state(state);
    drive(second, device, stop, kSteps, kBatch, tail);
    for (size_t s = 0; s < tail.indices.size(); ++s) {
      head.indices.push_back(tail.indices[s]);
      head.weights.push_back(tail.weights[s]);
      head.multipliers.push_back(tail.multipliers[s]);
    }
    expect_same(head, uninterrupted);
  }
}

// Batch 1 with a host sampler: its draw and multiplier go through the upload ring's smallest slots.
TEST_F(DeviceRais, BatchOfOneWithAHostSampler) {
  const Dataset data = make_synthetic(16, 1, 28, 28, kClasses, 2);
  auto model = make_model("mlp", {1, 28, 28, kClasses}, 3);
  model->to(Device::cuda(0));
  ShuffledSampler sampler(data.count, 1);
  TrainOptions train;
  train.batch = 1;
  Trainer trainer(*model, data, channel_statistics(data), sampler, train);
  for (int i = 0; i < 20; ++i) trainer.queue_step();
  const std::vector<StepResult> results = trainer.drain();
  ASSERT_EQ(results.size(), 20u);
  EXPECT_NEAR(results.back().progress, 20.0 / 16.0, 1e-12);
  EXPECT_EQ(results.back().lr_multiplier, 1.0);
}

TEST_F(DeviceRais, RefusesTheHostObservationAnotherBatchSizeAndAnUnpreparedDraw) {
  rais::DeviceRaisSampler sampler(kCount, 1, Device::cuda(0), small_options());
  EXPECT_THROW(sampler.draw_on_device(), Error);
  sampler.prepare_on_device(0, kBatch);
  EXPECT_THROW(sampler.prepare_on_device(1, kBatch + 1), Error);
  const std::vector<int32_t> indices(kBatch, 0);
  EXPECT_THROW(sampler.observe({0, indices, nullptr, nullptr, 0.0}), Error);
}

// The form changes exactly once, where importance sampling takes over from the shuffled warm-up.
TEST_F(DeviceRais, FormChangesWhenImportanceSamplingStarts) {
  rais::DeviceRaisSampler sampler(kCount, 1, Device::cuda(0), small_options());
  Arena arena(0, Device::cuda(0));
  std::vector<float> norms, dlogits;
  std::vector<uint64_t> forms;
  for (int64_t step = 0; step < 40; ++step) {
    arena.reset();
    forms.push_back(sampler.prepare_on_device(step, kBatch));
    const DeviceDraw drawn = sampler.draw_on_device();
    measure(host(drawn.indices, &Tensor::i32), std::vector<float>(), step, norms, dlogits);
    sampler.observe_on_device({drawn, on(Device::cuda(0), arena, norms, {kBatch}),
                               on(Device::cuda(0), arena, dlogits, {kBatch, kClasses})});
  }
  ASSERT_NE(forms.front(), forms.back()) << "importance sampling never started";
  int changes = 0;
  for (size_t i = 1; i < forms.size(); ++i) changes += forms[i] != forms[i - 1];
  EXPECT_EQ(changes, 1);
  EXPECT_EQ(forms.back(), 1u);
}

// Training with the device sampler: a run on the device and a run on the cpu (the same sampler through
// the CPU twins) past the warm-up and the first solves agree in loss within float tolerance.
TEST_F(DeviceRais, TrainingOnTheDeviceMatchesTheCpu) {
  const Dataset data = make_synthetic(384, 1, 28, 28, kClasses, 4);
  const Normalization normalization = channel_statistics(data);
  std::vector<double> losses[2], multipliers[2];
  const Device devices[2] = {Device::cpu(), Device::cuda(0)};
  for (int k = 0; k < 2; ++k) {
    auto model = make_model("lenet5", {1, 28, 28, kClasses}, 3);
    model->to(devices[k]);
    rais::RaisOptions options = small_options();
    options.record_batches = 2;
    rais::DeviceRaisSampler sampler(data.count, 5, devices[k], options);
    TrainOptions train;
    train.batch = 32;  // 12 steps per epoch
    train.schedule.kind = Schedule::Kind::constant;
    train.schedule.base_lr = 0.05f;
    Trainer trainer(*model, data, normalization, sampler, train);
    for (int i = 0; i < 18; ++i) trainer.queue_step();  // queued, then drained at once
    for (const StepResult& r : trainer.drain()) {
      losses[k].push_back(r.loss);
      multipliers[k].push_back(r.lr_multiplier);
    }
    EXPECT_TRUE(sampler.stats().importance_sampling);
  }
  for (size_t i = 0; i < losses[0].size(); ++i) {
    EXPECT_NEAR(losses[1][i], losses[0][i], 1e-4 * losses[0][i]) << "loss of step " << i;
    EXPECT_NEAR(multipliers[1][i], multipliers[0][i], 1e-4 * multipliers[0][i]) << "r̂ of step " << i;
  }
}

}  // namespace
}  // namespace raisin
