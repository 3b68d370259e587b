// CUDA parity for the RAIS kernels (kernels/cuda/rais.cu against kernels/cpu/rais.cpp). Both backends do
// the same double operations in the same order (the distribution's sums in the tile order of
// signatures.inc, no fused multiply-adds), so every output must equal the CPU's bit for bit — no
// tolerance: features with every case of the per-example state; p for sizes around the 1024-example
// tile, with and without a uniform share, centre-only, all-equal and zero-total; weights and records with
// and without p; observe with many repeated examples; and the gain-ratio state over several steps, with
// and without weights, for more classes than one block has threads, through both ends of the clamp.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/kernels.h"
#include "tests/cuda/parity.h"
#include "tests/support/check.h"

namespace raisin {
namespace {

constexpr int kF = 4;

// Per-example state with never-seen, recent, stale and future examples and some non-finite norms.
struct ExampleState {
  std::vector<float> last_norm;
  std::vector<int64_t> last_seen;
};

ExampleState random_state(int64_t n, int64_t step, uint64_t seed) {
  ExampleState s{test::random_floats(size_t(n), seed, -0.2f, 3.0f), {}};
  const std::vector<int32_t> seen = test::random_ints(size_t(n), seed + 1, int32_t(step + 5));
  for (int64_t i = 0; i < n; ++i) {
    s.last_seen.push_back(int64_t(seen[size_t(i)]) - 1);  // −1 … step + 3
    if (i % 97 == 5) s.last_norm[size_t(i)] = NAN;
    if (i % 89 == 7) s.last_norm[size_t(i)] = -INFINITY;
  }
  return s;
}

std::vector<float> cpu_features(const ExampleState& s, int64_t step, int64_t spe) {
  const int64_t n = int64_t(s.last_norm.size());
  std::vector<float> f(size_t(n * kF));
  cpu::rais_features(n, s.last_norm.data(), s.last_seen.data(), &step, spe, f.data());
  return f;
}

TEST_F(CudaParity, RaisFeaturesMatchCpuBitForBit) {
  for (int64_t n : {1, 1023, 1024, 1025, 60000, 300007}) {
    const int64_t step = 700, spe = 30;
    const ExampleState s = random_state(n, step, uint64_t(n));
    DeviceBuffer<float> last_norm(s.last_norm);
    DeviceBuffer<int64_t> last_seen(s.last_seen);
    DeviceBuffer<float> features(size_t(n * kF));
    DeviceBuffer<int64_t> dev_step(std::vector<int64_t>{step});
    cuda::rais_features(n, last_norm.ptr, last_seen.ptr, dev_step.ptr, spe, features.ptr);
    const std::vector<float> expected = cpu_features(s, step, spe), actual = features.host();
    for (size_t e = 0; e < expected.size(); ++e) ASSERT_EQ(actual[e], expected[e]) << "n " << n << " value " << e;
  }
}

void expect_same_distribution(const std::vector<float>& features, const std::vector<double>& c,
                              const std::vector<double>& d, double uniform_share, const std::string& what) {
  const int64_t n = int64_t(features.size()) / kF;
  SCOPED_TRACE(what + ", n = " + std::to_string(n) + ", u = " + std::to_string(uniform_share));
  std::vector<double> expected(static_cast<size_t>(n));
  std::vector<double> cpu_workspace(static_cast<size_t>(cpu::rais_distribution_workspace_doubles(n)));
  cpu::rais_distribution(n, features.data(), c.data(), d.data(), uniform_share, expected.data(),
                         cpu_workspace.data());
  DeviceBuffer<float> dev_features(features);
  DeviceBuffer<double> dev_c(c), dev_d(d), p(static_cast<size_t>(n));
  DeviceBuffer<double> workspace(static_cast<size_t>(cuda::rais_distribution_workspace_doubles(n)));  // NaN
  cuda::rais_distribution(n, dev_features.ptr, dev_c.ptr, dev_d.ptr, uniform_share, p.ptr, workspace.ptr);
  const std::vector<double> actual = p.host();
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(actual[size_t(i)], expected[size_t(i)]) << "p[" << i << "]";
}

TEST_F(CudaParity, RaisDistributionMatchesCpuBitForBit) {
  const std::vector<double> c = {0.05, 0.8, 0.6, 1.7}, d = {0.01, 0.4, 1.1, 0.9}, zero = {0, 0, 0, 0};
  for (int64_t n : {1, 1023, 1024, 1025, 60000, 300007}) {
    const std::vector<float> f = cpu_features(random_state(n, 300, uint64_t(n) + 3), 300, 25);
    for (double u : {0.0, 0.1}) expect_same_distribution(f, c, d, u, "robust");
    expect_same_distribution(f, c, zero, 0.05, "centre only");
  }
  const std::vector<float> f = cpu_features(random_state(5000, 20, 8), 20, 4);
  expect_same_distribution(f, {1, 0, 0, 0}, {0.5, 0, 0, 0}, 0.1, "all equal");
  expect_same_distribution(f, zero, zero, 0.0, "zero total");
  expect_same_distribution(f, {0, 0, 0, 1}, zero, 0.0, "never-seen examples only");
}

TEST_F(CudaParity, RaisRecordDrawsMatchCpu) {
  const int64_t n = 60000, capacity = 3 * 1000, first = 2500;  // the slots wrap around
  const int batch = 1000;
  const std::vector<float> features = cpu_features(random_state(n, 50, 4), 50, 12);
  std::vector<double> p(static_cast<size_t>(n));
  std::vector<double> workspace(static_cast<size_t>(cpu::rais_distribution_workspace_doubles(n)));
  cpu::rais_distribution(n, features.data(), std::vector<double>{0.1, 1, 1, 2}.data(),
                         std::vector<double>{0.1, 0.5, 1, 1}.data(), 0.0, p.data(), workspace.data());
  const std::vector<int32_t> indices = test::random_ints(size_t(batch), 5, int32_t(n));
  DeviceBuffer<double> dev_p(p);
  DeviceBuffer<float> dev_features(features);
  DeviceBuffer<int32_t> dev_indices(indices);
  DeviceBuffer<int64_t> dev_first(std::vector<int64_t>{first});
  for (bool importance : {true, false}) {
    SCOPED_TRACE(importance ? "with p" : "p null");
    const std::vector<float> records(size_t(capacity * kF), -1.0f), record_weights(size_t(capacity), -1.0f);
    std::vector<float> weights(size_t(batch), -1.0f), cpu_records = records, cpu_record_weights = record_weights;
    cpu::rais_record_draws(batch, indices.data(), n, importance ? p.data() : nullptr, features.data(), &first, capacity,
                           weights.data(), cpu_records.data(), cpu_record_weights.data());
    DeviceBuffer<float> dev_weights(std::vector<float>(size_t(batch), -1.0f)), dev_records(records),
        dev_record_weights(record_weights);
    cuda::rais_record_draws(batch, dev_indices.ptr, n, importance ? dev_p.ptr : nullptr, dev_features.ptr, dev_first.ptr,
                            capacity, dev_weights.ptr, dev_records.ptr, dev_record_weights.ptr);
    EXPECT_EQ(dev_weights.host(), weights);
    EXPECT_EQ(dev_records.host(), cpu_records);
    EXPECT_EQ(dev_record_weights.host(), cpu_record_weights);
  }
}

TEST_F(CudaParity, RaisObserveMatchesCpuWithRepeatedExamples) {
  for (int batch : {1, 300, 4096}) {
    SCOPED_TRACE("batch " + std::to_string(batch));
    const int64_t n = 500, capacity = 2 * int64_t(batch), first = 3 * int64_t(batch) / 2, step = 9;
    const std::vector<int32_t> indices = test::random_ints(size_t(batch), uint64_t(batch), int32_t(n));
    const std::vector<float> norms = test::random_floats(size_t(batch), uint64_t(batch) + 1, 0.0f, 2.0f);
    std::vector<float> record_norms(size_t(capacity), -1.0f), last_norm = test::random_floats(size_t(n), 3, 0.0f, 1.0f);
    std::vector<int64_t> last_seen(size_t(n), -1);
    DeviceBuffer<int32_t> dev_indices(indices);
    DeviceBuffer<float> dev_norms(norms), dev_record_norms(record_norms), dev_last_norm(last_norm);
    DeviceBuffer<int64_t> dev_last_seen(last_seen);
    DeviceBuffer<int64_t> dev_step(std::vector<int64_t>{step}), dev_first(std::vector<int64_t>{first});
    cpu::rais_observe(batch, indices.data(), norms.data(), &step, &first, capacity, record_norms.data(),
                      last_norm.data(), last_seen.data(), nullptr);
    cuda::rais_observe(batch, dev_indices.ptr, dev_norms.ptr, dev_step.ptr, dev_first.ptr, capacity, dev_record_norms.ptr,
                       dev_last_norm.ptr, dev_last_seen.ptr, nullptr);
    EXPECT_EQ(dev_record_norms.host(), record_norms);
    EXPECT_EQ(dev_last_norm.host(), last_norm);
    EXPECT_EQ(dev_last_seen.host(), last_seen);
  }
}

TEST_F(CudaParity, GainRatioUpdateMatchesCpuBitForBit) {
  const kernels::GainRatioHyper hyper{0.5, 0.25, 16};
  for (const auto& [batch, classes] : {std::pair<int, int>{128, 10}, std::pair<int, int>{1000, 1000}}) {
    SCOPED_TRACE("batch " + std::to_string(batch) + ", classes " + std::to_string(classes));
    std::vector<double> state = {0, 0, 0, 1, 1, 0, 0};
    DeviceBuffer<double> dev_state(state);
    bool clamped_low = false, clamped_high = false;
    for (int step = 0; step < 12; ++step) {
      // Steps 0-3: ω < 1 and a tiny bias gradient (r̂ above the clamp); from step 8, ω = 30 (below it).
      const bool high = step < 4;
      const std::vector<float> v = test::random_floats(size_t(batch), 10 + step, 0.0f, 1.5f);
      std::vector<float> w = test::random_floats(size_t(batch), 20 + step, high ? 0.1f : 0.5f, high ? 0.9f : 2.0f);
      if (step >= 8) w.assign(size_t(batch), 30.0f);
      const float spread = high ? 1e-6f : 1e-3f;
      const std::vector<float> dlogits = test::random_floats(size_t(batch) * classes, 30 + step, -spread, spread);
      const bool weighted = step % 3 != 0;
      DeviceBuffer<float> dev_v(v), dev_w(w), dev_dlogits(dlogits);
      cpu::gain_ratio_update(batch, classes, v.data(), weighted ? w.data() : nullptr, dlogits.data(), hyper,
                             state.data(), nullptr);
      cuda::gain_ratio_update(batch, classes, dev_v.ptr, weighted ? dev_w.ptr : nullptr, dev_dlogits.ptr, hyper,
                              dev_state.ptr, nullptr);
      ASSERT_EQ(dev_state.host(), state) << "step " << step;
      clamped_low |= state[kernels::kGainValue] == hyper.min;
      clamped_high |= state[kernels::kGainValue] == hyper.max;
    }
    EXPECT_TRUE(clamped_low && clamped_high) << "the steps were meant to hit both ends of the clamp";
  }
}

}  // namespace
}  // namespace raisin
