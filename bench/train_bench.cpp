// Training throughput of whole steps (gather, forward, fused loss, backward, SGD) for the built-in
// models on the CPU, in images/s: the raisin side of bench/compare_pytorch_cpu.sh.
//   raisin_train_bench [--benchmark_filter=lenet5] ...
#include <benchmark/benchmark.h>

#include "engine/dataset.h"
#include "engine/sampler.h"
#include "engine/trainer.h"
#include "models/models.h"

namespace raisin {
namespace {

// model name, channels, side: lenet5 on 1x28x28 (Fashion-MNIST's shape), the rest on 3x32x32 (CIFAR's).
void BM_TrainStep(benchmark::State& state, const char* model_name, int channels, int side) {
  const int batch = int(state.range(0));
  const Dataset data = make_synthetic(4096, channels, side, side, 10, 1);
  const Normalization normalization = channel_statistics(data);
  auto model = make_model(model_name, {channels, side, side, 10}, 1);
  ShuffledSampler sampler(data.count, 1);
  TrainOptions options;
  options.batch = batch;
  options.schedule.kind = Schedule::Kind::constant;
  options.schedule.base_lr = 0.01f;
  Trainer trainer(*model, data, normalization, sampler, options);
  trainer.step();  // warm-up: sizes the arena, faults in its pages
  for (auto _ : state) benchmark::DoNotOptimize(trainer.step());
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["images/s"] = benchmark::Counter(double(state.iterations()) * batch, benchmark::Counter::kIsRate);
}

BENCHMARK_CAPTURE(BM_TrainStep, lenet5, "lenet5", 1, 28)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep, mlp, "mlp", 1, 28)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep, resnet20, "resnet20", 3, 32)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep, vgg_small, "vgg-small", 3, 32)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace raisin

BENCHMARK_MAIN();
