// Training throughput of whole steps (gather, forward, fused loss, backward, SGD) for the built-in
// models on the CPU, in images/s: the raisin side of bench/compare_pytorch_cpu.sh; and what each
// sampler costs per step (BM_SamplerStep).
//   raisin_train_bench [--benchmark_filter=lenet5] ...
//   raisin_train_bench --benchmark_filter=SamplerStep --benchmark_repetitions=20
//       --benchmark_enable_random_interleaving=true     (repetitions of all samplers interleaved)
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <string>

#include "engine/dataset.h"
#include "engine/sampler.h"
#include "engine/trainer.h"
#include "models/models.h"
#include "rais/rais_sampler.h"

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

// lenet5 on Fashion-MNIST (60,000 training images; a synthetic set of that size when it is not
// installed), batch 128, constant lr 0.01, with each sampler. One training run per sampler lives across
// the benchmark's repetitions (so interleaved repetitions continue it); rais is first trained through
// its shuffled warm-up epoch, so the timed steps draw by importance, rebuild p every 16 steps and
// refit PT every 32, as `raisin train --sampler rais` does (rais_pt_thread: PT on its own thread,
// --rais-pt-thread yes). 64 steps per repetition: two whole refit periods. Real time per step and process
// CPU time (all threads, a PT thread's included). On a shared machine, compare repetitions that ran
// next to each other (random interleaving) rather than single numbers.
struct SamplerRun {
  std::unique_ptr<Module> model;
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<Trainer> trainer;
};

const TrainTest& fashion_mnist() {
  static const TrainTest data = [] {
    try {
      return load_dataset("fashion-mnist");
    } catch (const std::exception&) {
      TrainTest synthetic;
      synthetic.train = make_synthetic(60000, 1, 28, 28, 10, 1);
      synthetic.normalization = channel_statistics(synthetic.train);
      return synthetic;
    }
  }();
  return data;
}

SamplerRun& sampler_run(const std::string& name) {
  static std::map<std::string, SamplerRun> runs;
  auto [it, fresh] = runs.try_emplace(name);
  SamplerRun& run = it->second;
  if (!fresh) return run;
  const TrainTest& data = fashion_mnist();
  run.model = make_model("lenet5", {1, 28, 28, 10}, 1);
  if (name == "uniform") run.sampler = std::make_unique<ShuffledSampler>(data.train.count, 1);
  else if (name == "uniform-iid") run.sampler = std::make_unique<UniformIidSampler>(data.train.count, 1);
  else {
    rais::RaisOptions options;
    options.refresh = 16;  // raisin train's default
    options.background_solve = name == "rais-pt-thread";
    run.sampler = std::make_unique<rais::RaisSampler>(data.train.count, 1, options);
  }
  TrainOptions options;
  options.schedule.kind = Schedule::Kind::constant;
  options.schedule.base_lr = 0.01f;
  run.trainer = std::make_unique<Trainer>(*run.model, data.train, data.normalization, *run.sampler, options);
  const bool importance = name.starts_with("rais");
  const int64_t warm_up = importance ? rais::steps_per_epoch(data.train.count, options.batch) + 64 : 1;
  for (int64_t s = 0; s < warm_up; ++s) run.trainer->step();
  return run;
}

void BM_SamplerStep(benchmark::State& state, const char* sampler) {
  SamplerRun& run = sampler_run(sampler);
  for (auto _ : state) benchmark::DoNotOptimize(run.trainer->step());
  state.counters["r_hat"] = run.sampler->lr_multiplier();
}

BENCHMARK_CAPTURE(BM_SamplerStep, uniform, "uniform")->Iterations(64)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();
BENCHMARK_CAPTURE(BM_SamplerStep, uniform_iid, "uniform-iid")->Iterations(64)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();
BENCHMARK_CAPTURE(BM_SamplerStep, rais, "rais")->Iterations(64)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();
BENCHMARK_CAPTURE(BM_SamplerStep, rais_pt_thread, "rais-pt-thread")->Iterations(64)->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();

BENCHMARK_CAPTURE(BM_TrainStep, lenet5, "lenet5", 1, 28)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep, mlp, "mlp", 1, 28)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep, resnet20, "resnet20", 3, 32)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep, vgg_small, "vgg-small", 3, 32)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace raisin

BENCHMARK_MAIN();
