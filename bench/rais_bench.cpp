// Micro-benchmarks of the RAIS sampler's work on the CPU (../shared/RAIS.md §3-§5): features from
// per-example state, the robust distribution, the alias-table rebuild and one step's 128 draws, for
// n = 60k (MNIST-sized) and 1M, d = 4 (items/s counts examples, draws for BM_Draw); and a cold PT
// solve for |D| = 4096 records and d = 4..32 features.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "rais/alias.h"
#include "rais/distribution.h"
#include "rais/pt.h"

namespace {

using namespace raisin::rais;

constexpr int kBatch = 128;

// Per-example state midway through training: a mix of never, recently and long-ago seen examples.
struct State {
  int64_t n;
  int64_t step;
  int64_t epoch;
  std::vector<float> last_norm;
  std::vector<int64_t> last_seen;
  std::vector<float> features;
  std::vector<double> c{0.05, 0.9, 0.7, 1.0};
  std::vector<double> d{0.02, 0.3, 0.5, 0.4};

  explicit State(int64_t count) : n(count), step(3 * steps_per_epoch(count, kBatch)), epoch(steps_per_epoch(count, kBatch)) {
    last_norm.resize(size_t(n));
    last_seen.resize(size_t(n));
    features.resize(size_t(n) * kFeatureCount);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int64_t i = 0; i < n; ++i) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      last_norm[size_t(i)] = float(x % 1000) / 700.0f;
      const int64_t age = int64_t((x >> 20) % uint64_t(2 * epoch));
      last_seen[size_t(i)] = i % 97 == 0 ? -1 : step - age;
    }
    compute_features(last_norm.data(), last_seen.data(), n, step, epoch, features.data());
  }
};

void BM_Features(benchmark::State& st) {
  State s(st.range(0));
  for (auto _ : st) {
    compute_features(s.last_norm.data(), s.last_seen.data(), s.n, s.step, s.epoch, s.features.data());
    benchmark::DoNotOptimize(s.features.data());
  }
  st.SetItemsProcessed(st.iterations() * s.n);
}

void BM_Distribution(benchmark::State& st) {
  State s(st.range(0));
  RobustDistribution out;
  for (auto _ : st) {
    robust_distribution(s.features.data(), s.n, kFeatureCount, s.c.data(), s.d.data(), 0.1, out);
    benchmark::DoNotOptimize(out.p.data());
  }
  st.SetItemsProcessed(st.iterations() * s.n);
}

void BM_AliasBuild(benchmark::State& st) {
  State s(st.range(0));
  const RobustDistribution dist = robust_distribution(s.features.data(), s.n, kFeatureCount, s.c.data(), s.d.data(), 0.1);
  AliasTable table;
  for (auto _ : st) {
    table.build(dist.p);
    benchmark::DoNotOptimize(table.probs().data());
  }
  st.SetItemsProcessed(st.iterations() * s.n);
}

void BM_Draw(benchmark::State& st) {
  State s(st.range(0));
  const RobustDistribution dist = robust_distribution(s.features.data(), s.n, kFeatureCount, s.c.data(), s.d.data(), 0.1);
  AliasTable table;
  table.build(dist.p);
  std::vector<int32_t> out(kBatch);
  uint64_t step = 0;
  for (auto _ : st) {
    table.draw_batch(1, step++, kBatch, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  st.SetItemsProcessed(st.iterations() * kBatch);
}

// One exact refresh (refresh = 1): features, distribution, alias rebuild and the step's 128 draws.
void BM_FullStep(benchmark::State& st) {
  State s(st.range(0));
  RobustDistribution dist;
  AliasTable table;
  std::vector<int32_t> out(kBatch);
  uint64_t step = 0;
  for (auto _ : st) {
    compute_features(s.last_norm.data(), s.last_seen.data(), s.n, s.step, s.epoch, s.features.data());
    robust_distribution(s.features.data(), s.n, kFeatureCount, s.c.data(), s.d.data(), 0.1, dist);
    table.build(dist.p);
    table.draw_batch(1, step++, kBatch, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  st.SetItemsProcessed(st.iterations() * s.n);
}

// PT on |D| = 4096 synthetic records v = ⟨c₀, s⟩ + noise with d features (the first constant).
void BM_PtSolve(benchmark::State& st) {
  const int dim = int(st.range(0));
  const size_t records = 4096;
  PtData data;
  data.num_features = size_t(dim);
  data.a.assign(size_t(dim), 0.0);
  uint64_t x = 0x2545F4914F6CDD1Dull;
  auto uniform = [&x] {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return double(x >> 11) * 0x1.0p-53;
  };
  for (size_t j = 0; j < records; ++j) {
    double v = 0;
    for (int k = 0; k < dim; ++k) {
      const double s = k == 0 ? 1.0 : (uniform() < 0.5 ? uniform() : 0.0);
      data.features.push_back(s);
      data.a[size_t(k)] += s * 15;  // as if n ≈ 15·|D| examples
      v += s * (0.1 + 0.8 / (k + 1));
    }
    data.v.push_back(v * (0.8 + 0.4 * uniform()));
    data.w.push_back(0.5 + uniform());
  }
  for (auto _ : st) {
    PtResult result = solve_pt(data);
    if (!result.ok) st.SkipWithError(result.message.c_str());
    benchmark::DoNotOptimize(result);
  }
}

BENCHMARK(BM_Features)->Arg(60000)->Arg(1000000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Distribution)->Arg(60000)->Arg(1000000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_AliasBuild)->Arg(60000)->Arg(1000000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Draw)->Arg(60000)->Arg(1000000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_FullStep)->Arg(60000)->Arg(1000000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PtSolve)->Arg(4)->Arg(8)->Arg(16)->Arg(32)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
