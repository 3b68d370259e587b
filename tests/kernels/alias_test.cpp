// Tests for the CPU alias table kernels (kernels/cpu/alias.cpp): the parallel-construction table represents
// p = w / Σ w (implied probabilities within 1e-12) for random, skewed, zero-weight, uniform and single-item
// weights and sizes that cross tile and scan-chunk boundaries; zero-weight items can never be drawn; and
// alias_draw follows the documented Philox formula (signatures.inc, rais/alias.h) to the bit.
// (tests/rais/alias_kernel_test.cpp checks that its draws equal rais::AliasTable's for the same table.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/philox.h"
#include "tests/support/check.h"

namespace {

struct Table {
  std::vector<double> prob;
  std::vector<int32_t> alias;
};

Table build(const std::vector<double>& weights) {
  const int64_t n = int64_t(weights.size());
  Table table{std::vector<double>(size_t(n), NAN), std::vector<int32_t>(size_t(n), -1)};
  std::vector<double> workspace(size_t(raisin::cpu::alias_workspace_doubles(n)), NAN);
  raisin::cpu::alias_build(n, weights.data(), table.prob.data(), table.alias.data(), workspace.data());
  return table;
}

// (prob_i + Σ_{j: alias_j = i} (1 − prob_j)) / n, after checking that every slot is a valid table entry.
std::vector<double> implied_probabilities(const Table& table) {
  const size_t n = table.prob.size();
  std::vector<double> implied(n, 0.0);
  for (size_t i = 0; i < n; ++i) {
    EXPECT_GE(table.prob[i], 0.0) << "slot " << i;
    EXPECT_LE(table.prob[i], 1.0) << "slot " << i;
    EXPECT_GE(table.alias[i], 0) << "slot " << i;
    EXPECT_LT(table.alias[i], int32_t(n)) << "slot " << i;
    if (table.alias[i] < 0 || table.alias[i] >= int32_t(n)) continue;
    implied[i] += table.prob[i];
    implied[size_t(table.alias[i])] += 1.0 - table.prob[i];
  }
  for (double& p : implied) p /= double(n);
  return implied;
}

void expect_represents(const std::vector<double>& weights, const std::string& what) {
  SCOPED_TRACE(what + ", n = " + std::to_string(weights.size()));
  double total = 0.0;
  for (double w : weights) total += w;
  const Table table = build(weights);
  const std::vector<double> implied = implied_probabilities(table);
  double worst = 0.0;
  size_t worst_at = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const double error = std::fabs(implied[i] - weights[i] / total);
    if (error > worst) worst = error, worst_at = i;
  }
  EXPECT_LE(worst, 1e-12) << "item " << worst_at << ": implied " << implied[worst_at] << ", p "
                          << weights[worst_at] / total;
  // A zero-weight item has prob 0 and is no slot's alias: it can never be drawn.
  for (size_t i = 0; i < weights.size(); ++i) {
    if (weights[i] == 0.0) {
      EXPECT_EQ(table.prob[i], 0.0) << "zero-weight item " << i;
    }
    const size_t a = size_t(table.alias[i]);
    if (a < weights.size() && weights[a] == 0.0) ADD_FAILURE() << "slot " << i << " aliases zero-weight item " << a;
  }
}

std::vector<double> uniform_weights(size_t n, uint64_t seed) {
  const std::vector<float> u = raisin::test::random_floats(n, seed, 0.0f, 1.0f);
  return std::vector<double>(u.begin(), u.end());
}

// Log-uniform over 12 orders of magnitude: a few items carry most of the mass.
std::vector<double> skewed_weights(size_t n, uint64_t seed) {
  std::vector<double> w = uniform_weights(n, seed);
  for (double& x : w) x = std::pow(10.0, 12.0 * x - 6.0);
  return w;
}

// Every third item has weight 0, and a run of zeros crosses a tile boundary.
std::vector<double> with_zeros(size_t n, uint64_t seed) {
  std::vector<double> w = uniform_weights(n, seed);
  for (size_t i = 0; i < n; i += 3) w[i] = 0.0;
  for (size_t i = 1000; i < std::min<size_t>(n, 1100); ++i) w[i] = 0.0;
  return w;
}

TEST(AliasKernel, RepresentsRandomWeights) {
  // Sizes around the 1024-value tile and a size with more than 1024 tiles (the top scan's carry).
  for (size_t n : {2, 3, 1023, 1024, 1025, 5000, 1100001}) expect_represents(uniform_weights(n, n), "uniform random");
}

TEST(AliasKernel, RepresentsSkewedWeights) {
  for (size_t n : {7, 3000, 70001}) expect_represents(skewed_weights(n, n + 1), "log-uniform");
  // One item holds almost all of the mass.
  std::vector<double> spike(2049, 1e-9);
  spike[1500] = 1.0;
  expect_represents(spike, "one spike");
}

TEST(AliasKernel, RepresentsZeroWeights) {
  for (size_t n : {4, 2500}) expect_represents(with_zeros(n, n + 2), "a third zeros");
  std::vector<double> one_left(3000, 0.0);
  one_left[2999] = 2.5;
  expect_represents(one_left, "a single positive weight");
}

TEST(AliasKernel, SingleItem) {
  const Table table = build({0.3});
  EXPECT_EQ(table.prob, std::vector<double>{1.0});
  EXPECT_EQ(table.alias, std::vector<int32_t>{0});
}

TEST(AliasKernel, EqualWeightsGiveTheIdentityTable) {
  const Table table = build(std::vector<double>(3000, 0.25));
  for (size_t i = 0; i < table.prob.size(); ++i) {
    ASSERT_EQ(table.prob[i], 1.0) << "slot " << i;
    ASSERT_EQ(table.alias[i], int32_t(i)) << "slot " << i;
  }
}

TEST(AliasKernel, DrawFollowsTheDocumentedFormula) {
  const std::vector<double> weights = with_zeros(777, 9);
  const Table table = build(weights);
  const int64_t n = int64_t(weights.size());
  constexpr int kBatch = 1000;
  // Seeds and steps with both 32-bit halves set, so that dropping a high word is caught.
  for (const auto& [seed, step] : {std::pair<uint64_t, uint64_t>{0x0123456789abcdefull, 0xfedcba9876543210ull},
                                   std::pair<uint64_t, uint64_t>{5, 0}}) {
    std::vector<int32_t> out(kBatch, -1);
    const int64_t step_in_memory = int64_t(step);
    raisin::cpu::alias_draw(n, table.prob.data(), table.alias.data(), seed, &step_in_memory, kBatch, out.data());
    for (int j = 0; j < kBatch; ++j) {
      const raisin::kernels::Philox4 w = raisin::kernels::philox_block(seed, step, uint64_t(j));
      const uint64_t hi = (uint64_t(w.v[0]) << 32) | w.v[1];
      const uint64_t lo = (uint64_t(w.v[2]) << 32) | w.v[3];
      const auto slot = size_t((static_cast<unsigned __int128>(hi) * uint64_t(n)) >> 64);
      const double coin = double(lo >> 11) * 0x1.0p-53;
      ASSERT_EQ(out[size_t(j)], coin < table.prob[slot] ? int32_t(slot) : table.alias[slot]) << "draw " << j;
      ASSERT_NE(weights[size_t(out[size_t(j)])], 0.0) << "draw " << j << " picked a zero-weight item";
    }
  }
}

}  // namespace
