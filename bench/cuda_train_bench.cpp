// Whole training steps on the GPU (gather and augmentation on the device, forward, fused loss, backward,
// SGD) for the built-in models, in images/s, and the cost of RAIS there: the same step with the `rais`
// sampler (on the device) against `uniform-iid` (RAIS.md §6). Steps are queued in runs of 32 and read
// back once per run and replayed from a CUDA graph, as `raisin train --device cuda` does; the *_no_graphs
// variants launch every kernel of every step (--cuda-graphs off). Skips without a GPU.
//   raisin_cuda_train_bench [--benchmark_filter=resnet20]
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "engine/cuda/backend.h"
#include "engine/dataset.h"
#include "engine/sampler.h"
#include "engine/trainer.h"
#include "models/models.h"
#include "rais/device_sampler.h"

namespace raisin {
namespace {

// model name, channels, side, sampler ("uniform", "uniform-iid" or "rais"), CUDA graphs: lenet5 on 1x28x28
// (Fashion-MNIST's shape), the rest on 3x32x32 (CIFAR's, with crop and flip).
void BM_GpuTrainStep(benchmark::State& state, const char* model_name, int channels, int side, const char* sampler_name,
                     bool graphs) {
  if (const std::string reason = register_cuda_backend(); !reason.empty()) {
    state.SkipWithError(reason.c_str());
    return;
  }
  const int batch = int(state.range(0));
  const Dataset data = make_synthetic(8192, channels, side, side, 10, 1);
  const Normalization normalization = channel_statistics(data);
  auto model = make_model(model_name, {channels, side, side, 10}, 1);
  model->to(Device::cuda(0));
  std::unique_ptr<Sampler> sampler;
  const std::string name = sampler_name;
  if (name == "rais") {
    rais::RaisOptions rais_options;
    rais_options.background_solve = true;
    sampler = std::make_unique<rais::DeviceRaisSampler>(data.count, 1, Device::cuda(0), rais_options);
  }
  else if (name == "uniform-iid") sampler = std::make_unique<UniformIidSampler>(data.count, 1);
  else sampler = std::make_unique<ShuffledSampler>(data.count, 1);
  TrainOptions options;
  options.batch = batch;
  options.schedule.kind = Schedule::Kind::constant;
  options.schedule.base_lr = 0.01f;
  options.crop_padding = side == 32 ? 4 : 0;
  options.flip = side == 32;
  options.cuda_graphs = graphs;
  Trainer trainer(*model, data, normalization, *sampler, options);
  constexpr int kRun = 32;  // steps per read-back
  auto run = [&] {
    for (int i = 0; i < kRun; ++i) trainer.queue_step();
    return trainer.drain();
  };
  for (int i = 0; i < 4; ++i) run();  // warm-up: cuDNN plans, arena size, RAIS past its warm-up epoch
  for (auto _ : state) benchmark::DoNotOptimize(run());
  if (graphs && trainer.graph_stats().replays == 0) {
    state.SkipWithError(("no CUDA graph: " + trainer.graph_stats().off_reason).c_str());
    return;
  }
  state.SetItemsProcessed(state.iterations() * kRun * batch);
  state.counters["images/s"] = benchmark::Counter(double(state.iterations()) * kRun * batch, benchmark::Counter::kIsRate);
}

BENCHMARK_CAPTURE(BM_GpuTrainStep, lenet5, "lenet5", 1, 28, "uniform", true)->Arg(128)->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_GpuTrainStep, resnet20, "resnet20", 3, 32, "uniform", true)->Arg(128)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_GpuTrainStep, vgg_small, "vgg-small", 3, 32, "uniform", true)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_GpuTrainStep, resnet20_uniform_iid, "resnet20", 3, 32, "uniform-iid", true)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_GpuTrainStep, resnet20_rais, "resnet20", 3, 32, "rais", true)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_GpuTrainStep, lenet5_no_graphs, "lenet5", 1, 28, "uniform", false)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_GpuTrainStep, resnet20_no_graphs, "resnet20", 3, 32, "uniform", false)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace raisin

BENCHMARK_MAIN();
