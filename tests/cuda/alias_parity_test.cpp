// CUDA parity for the alias table (kernels/cuda/alias.cu against kernels/cpu/alias.cpp). Both backends run
// the same split-method construction with prefix sums in the same order, so the GPU's table must equal
// the CPU's bit for bit (prob and alias) — no tolerance — for random, skewed and zero-weight inputs, a
// single item, and sizes around the 1024-value tile; GPU draws must equal CPU draws for the same table;
// and 10^6 GPU draws must match p = w / Σ w by a chi-square test (RAIS.md §7, property 6).
#include <gtest/gtest.h>

#include <cmath>
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

std::vector<double> random_weights(size_t n, uint64_t seed) {
  const std::vector<float> u = test::random_floats(n, seed, 0.0f, 1.0f);
  return std::vector<double>(u.begin(), u.end());
}

// Log-uniform over 12 orders of magnitude, and every fifth item of weight 0.
std::vector<double> skewed_with_zeros(size_t n, uint64_t seed) {
  std::vector<double> w = random_weights(n, seed);
  for (size_t i = 0; i < n; ++i) w[i] = i % 5 == 0 ? 0.0 : std::pow(10.0, 12.0 * w[i] - 6.0);
  return w;
}

struct Table {
  std::vector<double> prob;
  std::vector<int32_t> alias;
};

Table cpu_build(const std::vector<double>& weights) {
  const int64_t n = int64_t(weights.size());
  Table table{std::vector<double>(size_t(n)), std::vector<int32_t>(size_t(n))};
  std::vector<double> workspace(size_t(cpu::alias_workspace_doubles(n)));
  cpu::alias_build(n, weights.data(), table.prob.data(), table.alias.data(), workspace.data());
  return table;
}

// The device table stays on the device for draws; .host() copies it back.
struct DeviceTable {
  explicit DeviceTable(const std::vector<double>& weights)
      : n(int64_t(weights.size())), prob(weights.size()), alias(weights.size()) {
    DeviceBuffer<double> dev_weights(weights);
    DeviceBuffer<double> workspace(size_t(cuda::alias_workspace_doubles(n)));  // poisoned: NaN
    cuda::alias_build(n, dev_weights.ptr, prob.ptr, alias.ptr, workspace.ptr);
  }
  int64_t n;
  DeviceBuffer<double> prob;
  DeviceBuffer<int32_t> alias;
};

void expect_same_table(const std::vector<double>& weights, const std::string& what) {
  SCOPED_TRACE(what + ", n = " + std::to_string(weights.size()));
  const Table expected = cpu_build(weights);
  const DeviceTable table(weights);
  const std::vector<double> prob = table.prob.host();
  const std::vector<int32_t> alias = table.alias.host();
  for (size_t i = 0; i < weights.size(); ++i) {
    // Bit equality (== also fails on the NaN poison of an unwritten slot).
    ASSERT_EQ(prob[i], expected.prob[i]) << "prob of slot " << i;
    ASSERT_EQ(alias[i], expected.alias[i]) << "alias of slot " << i;
  }
}

TEST_F(CudaParity, AliasBuildMatchesCpuBitForBit) {
  expect_same_table({0.7}, "single item");
  expect_same_table({0.0, 3.0, 0.0}, "one positive weight");
  expect_same_table(std::vector<double>(2000, 0.5), "equal weights");
  // Partial tiles, exact tiles and several tiles.
  for (size_t n : {2, 31, 1023, 1024, 1025, 4099, 20000}) expect_same_table(random_weights(n, n), "random");
  for (size_t n : {6, 1500, 9001}) expect_same_table(skewed_with_zeros(n, n + 7), "skewed with zeros");
}

// More than 1024 tiles: the top-level scan's carry across its chunks.
TEST_F(CudaParity, AliasBuildMatchesCpuBeyondOneScanChunk) {
  expect_same_table(random_weights(1024 * 1024 + 3, 11), "random");
}

TEST_F(CudaParity, AliasDrawMatchesCpu) {
  for (size_t n : {1, 5, 777, 100003}) {
    const std::vector<double> weights = skewed_with_zeros(n, n + 3);
    const Table table = cpu_build(weights);
    DeviceBuffer<double> prob(table.prob);
    DeviceBuffer<int32_t> alias(table.alias);
    // Seeds and steps with both 32-bit halves set, so that dropping a high word is caught; an odd batch.
    for (const auto& [seed, step] : {std::pair<uint64_t, uint64_t>{0x0123456789abcdefull, 0xfedcba9876543210ull},
                                     std::pair<uint64_t, uint64_t>{3, 1}}) {
      SCOPED_TRACE(::testing::Message() << "n " << n << " seed " << seed << " step " << step);
      for (int batch : {1, 1000}) {
        std::vector<int32_t> expected(static_cast<size_t>(batch));
        const int64_t step_in_memory = int64_t(step);
        cpu::alias_draw(int64_t(n), table.prob.data(), table.alias.data(), seed, &step_in_memory, batch,
                        expected.data());
        DeviceBuffer<int32_t> out(static_cast<size_t>(batch));
        DeviceBuffer<int64_t> dev_step(std::vector<int64_t>{step_in_memory});
        cuda::alias_draw(int64_t(n), prob.ptr, alias.ptr, seed, dev_step.ptr, batch, out.ptr);
        EXPECT_EQ(out.host(), expected);
      }
    }
  }
}

// Upper 1e-6 quantile of chi-square with df degrees of freedom (Wilson–Hilferty; z = Φ⁻¹(1 − 1e-6)).
double chi_square_threshold(double df) {
  const double z = 4.753424308822899, a = 2.0 / (9.0 * df);
  const double cube = 1.0 - a + z * std::sqrt(a);
  return df * cube * cube * cube;
}

// 10^6 draws from a table built on the device, in batches of 2^16 over consecutive steps.
TEST_F(CudaParity, AliasDrawFrequenciesMatchP) {
  constexpr int kItems = 300, kBatch = 1 << 16;
  constexpr int64_t kDraws = 1000000;
  const std::vector<double> weights = skewed_with_zeros(kItems, 42);
  double total = 0.0;
  for (double w : weights) total += w;
  const DeviceTable table(weights);
  DeviceBuffer<int32_t> out(static_cast<size_t>(kBatch));
  std::vector<int64_t> counts(kItems, 0);
  int64_t done = 0;
  for (uint64_t step = 0; done < kDraws; ++step) {
    const int take = int(std::min<int64_t>(kBatch, kDraws - done));
    DeviceBuffer<int64_t> dev_step(std::vector<int64_t>{int64_t(step)});
    cuda::alias_draw(kItems, table.prob.ptr, table.alias.ptr, 0x5eed, dev_step.ptr, take, out.ptr);
    const std::vector<int32_t> draws = out.host();
    for (int j = 0; j < take; ++j) {
      ASSERT_GE(draws[size_t(j)], 0);
      ASSERT_LT(draws[size_t(j)], kItems);
      ++counts[size_t(draws[size_t(j)])];
    }
    done += take;
  }
  double chi_square = 0.0;
  int positive = 0;
  for (int i = 0; i < kItems; ++i) {
    const double expected = double(kDraws) * weights[size_t(i)] / total;
    if (weights[size_t(i)] == 0.0) {
      EXPECT_EQ(counts[size_t(i)], 0) << "zero-weight item " << i << " was drawn";
      continue;
    }
    ++positive;
    const double diff = double(counts[size_t(i)]) - expected;
    chi_square += diff * diff / expected;
  }
  EXPECT_LT(chi_square, chi_square_threshold(positive - 1)) << positive << " items with p > 0";
}

}  // namespace
}  // namespace raisin
