// Tests for Vose's alias table (rais/alias.h, ../shared/RAIS.md §7 property 6 on the CPU): the table
// represents p exactly (up to rounding), 10^6 Philox draws match p by a chi-square test, draws are
// reproducible from (seed, step, j), zero-probability items are never drawn, and degenerate inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

#include "kernels/philox.h"
#include "rais/alias.h"
#include "tests/support/check.h"

namespace {

using raisin::rais::AliasTable;

// Upper 1e-6 quantile of chi-square with df degrees of freedom (Wilson–Hilferty; z = Φ⁻¹(1 − 1e-6)).
// Accurate to a fraction of a percent for df ≥ 10, far below what matters for the test.
double chi_square_threshold(double df) {
  const double z = 4.753424308822899, a = 2.0 / (9.0 * df);
  const double cube = 1.0 - a + z * std::sqrt(a);
  return df * cube * cube * cube;
}

struct DrawStats {
  double chi_square = 0.0;
  double threshold = 0.0;
  int64_t zero_hits = 0;  // draws of items with p = 0
};

// Draws `draws` samples over steps of 128 draws from one seed and compares counts with p.
DrawStats draw_and_compare(const std::vector<double>& weights, uint64_t seed, int64_t draws = 1000000) {
  AliasTable table;
  table.build(weights);
  const int64_t n = table.size();
  std::vector<int64_t> counts(size_t(n), 0);
  const int batch = 128;
  std::vector<int32_t> out(batch);
  int64_t done = 0;
  for (uint64_t step = 0; done < draws; ++step) {
    const int take = int(std::min<int64_t>(batch, draws - done));
    table.draw_batch(seed, step, take, out.data());
    for (int j = 0; j < take; ++j) {
      EXPECT_GE(out[size_t(j)], 0);
      EXPECT_LT(out[size_t(j)], n);
      ++counts[size_t(out[size_t(j)])];
    }
    done += take;
  }
  DrawStats stats;
  int64_t bins = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double p = table.probability(int32_t(i));
    if (p == 0.0) {
      stats.zero_hits += counts[size_t(i)];
      continue;
    }
    const double expected = p * double(draws), diff = double(counts[size_t(i)]) - expected;
    stats.chi_square += diff * diff / expected;
    ++bins;
  }
  stats.threshold = chi_square_threshold(double(bins - 1));
  return stats;
}

// Skewed: weights ∝ i + 1 with every seventh item zero and two heavy spikes (a third of the mass).
std::vector<double> skewed_weights() {
  std::vector<double> w(200);
  for (size_t i = 0; i < w.size(); ++i) w[i] = i % 7 == 3 ? 0.0 : double(i + 1);
  w[17] = 4000.0;
  w[150] = 3000.0;
  return w;
}

std::vector<double> near_uniform_weights(size_t n, uint64_t seed) {
  const std::vector<float> noise = raisin::test::random_floats(n, seed, -1.0f, 1.0f);
  std::vector<double> w(n);
  for (size_t i = 0; i < n; ++i) w[i] = 1.0 + 0.01 * noise[i];
  return w;
}

void expect_represents(const AliasTable& table, const std::vector<double>& weights, double tol) {
  double total = 0.0;
  for (double w : weights) total += w;
  const std::vector<double> implied = table.implied_probabilities();
  ASSERT_EQ(implied.size(), weights.size());
  for (size_t i = 0; i < weights.size(); ++i) {
    const double p = weights[i] / total;
    EXPECT_NEAR(table.probability(int32_t(i)), p, 1e-15 + 1e-14 * p) << "item " << i;
    EXPECT_NEAR(implied[i], p, tol) << "item " << i;
    if (weights[i] == 0.0) {
      EXPECT_EQ(implied[i], 0.0) << "item " << i;
    }
  }
  for (size_t s = 0; s < weights.size(); ++s) {
    EXPECT_GE(table.probs()[s], 0.0);
    EXPECT_LE(table.probs()[s], 1.0);
    EXPECT_GT(weights[size_t(table.aliases()[s])], 0.0) << "slot " << s << " aliases a zero-weight item";
  }
}

TEST(AliasTable, RepresentsTheDistribution) {
  AliasTable table;
  const std::vector<double> skewed = skewed_weights();
  table.build(skewed);
  expect_represents(table, skewed, 1e-15);

  const std::vector<double> flat = near_uniform_weights(1000, 5);
  table.build(flat);
  expect_represents(table, flat, 1e-15);

  // Extreme dynamic range, many zeros, tiny weights.
  std::vector<double> extreme(5000, 0.0);
  for (size_t i = 0; i < extreme.size(); i += 3) extreme[i] = std::pow(10.0, -double(i % 250));
  extreme[4998] = 1e6;
  table.build(extreme);
  expect_represents(table, extreme, 1e-14);

  // Exactly uniform: every slot accepts itself.
  const std::vector<double> uniform(777, 3.0);
  table.build(uniform);
  for (size_t s = 0; s < uniform.size(); ++s) EXPECT_EQ(table.probs()[s], 1.0);
}

// Property 6 (CPU): 10^6 draws on a skewed p with zeros, a near-uniform p, and a large near-uniform p
// that exercises the slot mapping; a chi-square statistic beyond the 1e-6 upper quantile fails.
TEST(AliasTable, EmpiricalFrequenciesMatch) {
  {
    const DrawStats s = draw_and_compare(skewed_weights(), 20260601);
    EXPECT_LT(s.chi_square, s.threshold) << "skewed p";
    EXPECT_EQ(s.zero_hits, 0);
  }
  {
    const DrawStats s = draw_and_compare(near_uniform_weights(1000, 9), 424242);
    EXPECT_LT(s.chi_square, s.threshold) << "near-uniform p";
  }
  {
    const DrawStats s = draw_and_compare(near_uniform_weights(60000, 11), 7);
    EXPECT_LT(s.chi_square, s.threshold) << "near-uniform p, n = 60000";
  }
  {
    const DrawStats s = draw_and_compare({0.5, 0.25, 0.0, 0.25}, 99);
    EXPECT_LT(s.chi_square, s.threshold * 2.0) << "three items";  // df = 2: Wilson–Hilferty is rough there
    EXPECT_EQ(s.zero_hits, 0);
  }
}

// The test is not vacuous: a table for a different p fails it.
TEST(AliasTable, ChiSquareDetectsAWrongDistribution) {
  std::vector<double> w = near_uniform_weights(1000, 9);
  AliasTable table;
  table.build(w);
  // The counts follow the table; compare them against p with 5% of the items 20% heavier.
  for (size_t i = 0; i < 50; ++i) w[i] *= 1.2;
  std::vector<int64_t> counts(w.size(), 0);
  std::vector<int32_t> out(128);
  for (uint64_t step = 0; step < 7813; ++step) {
    table.draw_batch(3, step, 128, out.data());
    for (int32_t i : out) ++counts[size_t(i)];
  }
  double total = 0.0, draws = 7813.0 * 128.0, chi = 0.0;
  for (double x : w) total += x;
  for (size_t i = 0; i < w.size(); ++i) {
    const double e = w[i] / total * draws;
    chi += (double(counts[i]) - e) * (double(counts[i]) - e) / e;
  }
  EXPECT_GT(chi, chi_square_threshold(999.0));
}

TEST(AliasTable, DrawsAreReproducible) {
  AliasTable a, b;
  const std::vector<double> w = near_uniform_weights(1000, 13);
  a.build(w);
  b.build(w);
  std::vector<int32_t> x(128), y(128), z(128), u(128);
  a.draw_batch(17, 5, 128, x.data());
  b.draw_batch(17, 5, 128, y.data());
  EXPECT_EQ(x, y);
  for (int j = 0; j < 128; ++j) EXPECT_EQ(a.draw(17, 5, uint64_t(j)), x[size_t(j)]);
  a.draw_batch(17, 6, 128, z.data());
  EXPECT_NE(x, z) << "different steps must give different draws";
  a.draw_batch(18, 5, 128, u.data());
  EXPECT_NE(x, u) << "different seeds must give different draws";
  // Rebuilding the same table changes nothing.
  a.build(w);
  a.draw_batch(17, 5, 128, z.data());
  EXPECT_EQ(x, z);
}

// The documented formula, spelled out independently of the implementation.
TEST(AliasTable, DrawFollowsTheDocumentedFormula) {
  AliasTable table;
  table.build(skewed_weights());
  const uint64_t n = uint64_t(table.size());
  for (uint64_t step = 0; step < 20; ++step) {
    for (uint64_t j = 0; j < 64; ++j) {
      const raisin::kernels::Philox4 w = raisin::kernels::philox_block(1234, step, j);
      const uint64_t hi = (uint64_t(w.v[0]) << 32) | w.v[1], lo = (uint64_t(w.v[2]) << 32) | w.v[3];
      const uint64_t slot = uint64_t((static_cast<unsigned __int128>(hi) * n) >> 64);
      const double coin = std::ldexp(double(lo >> 11), -53);
      const int32_t expected = coin < table.probs()[slot] ? int32_t(slot) : table.aliases()[slot];
      ASSERT_EQ(table.draw(1234, step, j), expected);
    }
  }
}

TEST(AliasTable, ZeroProbabilityItemsAreNeverDrawn) {
  std::vector<double> w(1000, 0.0);
  w[5] = 1.0;
  AliasTable table;
  table.build(w);
  std::vector<int32_t> out(128);
  for (uint64_t step = 0; step < 2000; ++step) {
    table.draw_batch(1, step, 128, out.data());
    for (int32_t i : out) ASSERT_EQ(i, 5);
  }
  // Half zeros, alternating.
  for (size_t i = 0; i < w.size(); ++i) w[i] = i % 2 ? 1.0 + double(i % 13) : 0.0;
  table.build(w);
  for (uint64_t step = 0; step < 2000; ++step) {
    table.draw_batch(2, step, 128, out.data());
    for (int32_t i : out) ASSERT_EQ(i % 2, 1);
  }
}

TEST(AliasTable, SingleItemAndRebuilds) {
  AliasTable table;
  table.build(std::vector<double>{0.3});
  EXPECT_EQ(table.size(), 1);
  EXPECT_EQ(table.probability(0), 1.0);
  for (uint64_t j = 0; j < 1000; ++j) EXPECT_EQ(table.draw(9, j, j), 0);
  // Grow, then shrink: draws stay in range.
  table.build(near_uniform_weights(5000, 3));
  table.build(std::vector<double>{1.0, 2.0, 3.0});
  std::vector<int32_t> out(128);
  for (uint64_t step = 0; step < 100; ++step) {
    table.draw_batch(4, step, 128, out.data());
    for (int32_t i : out) {
      ASSERT_GE(i, 0);
      ASSERT_LT(i, 3);
    }
  }
}

TEST(AliasTable, RejectsBadWeights) {
  AliasTable table;
  EXPECT_THROW(table.build(std::vector<double>{}), std::invalid_argument);
  EXPECT_THROW(table.build(std::vector<double>{0.0, 0.0}), std::invalid_argument);
  EXPECT_THROW(table.build(std::vector<double>{1.0, -0.5}), std::invalid_argument);
  EXPECT_THROW(table.build(std::vector<double>{1.0, std::nan("")}), std::invalid_argument);
  EXPECT_THROW(table.build(std::vector<double>{1.0, std::numeric_limits<double>::infinity()}),
               std::invalid_argument);
}

}  // namespace
