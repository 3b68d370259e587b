// Tests for the CPU dropout kernels (kernels/cpu/dropout.cpp): the mask is exactly the documented
// Philox formula (keep element i iff philox_uniform_at(seed, stream, i) ≥ p), kept values are scaled by
// 1/(1 − p), the kept fraction is 1 − p, (seed, stream) reproduce the mask, and backward reuses it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/philox.h"
#include "tests/support/check.h"

namespace {

using raisin::kernels::philox_uniform_at;
using raisin::test::all_close;
using raisin::test::random_floats;
using raisin::test::to_double;

// A seed and a stream with both 32-bit halves set, so that a kernel dropping the high words is caught:
// the kernels take the step (here in host memory, the cpu's device memory) and the call number, and use
// stream (step << 20) + call.
constexpr uint64_t kSeed = 0x123456789abcdef0ull;
constexpr int64_t kTrainingStep = 0xfedcba9876;
constexpr uint32_t kCall = 3;
constexpr uint64_t kStream = (uint64_t(kTrainingStep) << 20) + kCall;

// Finite-difference step: dropout with a fixed mask is linear, so any step is exact up to rounding.
constexpr double kStep = 1e-4;

// Nonzero inputs, so that a zero output means "dropped".
std::vector<float> nonzero_values(size_t n, uint64_t seed) { return random_floats(n, seed, 0.5f, 1.5f); }

std::vector<bool> reference_mask(int64_t n, float p, uint64_t seed, uint64_t stream) {
  std::vector<bool> keep(n);
  for (int64_t i = 0; i < n; ++i) keep[i] = philox_uniform_at(seed, stream, uint64_t(i)) >= p;
  return keep;
}

std::vector<bool> kept_by_forward(int64_t n, float p, uint64_t seed, int64_t step = kTrainingStep,
                                  uint32_t call = kCall) {
  const std::vector<float> x = nonzero_values(n, 1);
  std::vector<float> y(n, NAN);
  raisin::cpu::dropout_forward(n, p, seed, &step, call, x.data(), y.data());
  std::vector<bool> keep(n);
  for (int64_t i = 0; i < n; ++i) keep[i] = y[i] != 0.0f;
  return keep;
}

// Double-precision dropout with the reference mask.
std::vector<double> dropout_reference(const std::vector<double>& x, float p, uint64_t seed, uint64_t stream) {
  const std::vector<bool> keep = reference_mask(int64_t(x.size()), p, seed, stream);
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = keep[i] ? x[i] / (1.0 - double(p)) : 0.0;
  return y;
}

// Sizes that are not multiples of 4 (one Philox block covers four elements), and one past the OpenMP
// threshold.
TEST(Dropout, ForwardMatchesPhiloxFormula) {
  for (int64_t n : {int64_t(1), int64_t(3), int64_t(1003), int64_t(100001)}) {
    for (float p : {0.1f, 0.3f, 0.75f}) {
      SCOPED_TRACE(::testing::Message() << "n " << n << " p " << p);
      const std::vector<float> x = nonzero_values(n, 10);
      std::vector<float> y(n + 1, NAN);  // y[n] is a guard
      raisin::cpu::dropout_forward(n, p, kSeed, &kTrainingStep, kCall, x.data(), y.data());
      EXPECT_TRUE(std::isnan(y[n])) << "dropout_forward wrote past n";
      y.pop_back();
      EXPECT_TRUE(all_close("dropout y", y, dropout_reference(to_double(x), p, kSeed, kStream), 1e-6, 0.0));
      EXPECT_EQ(kept_by_forward(n, p, kSeed), reference_mask(n, p, kSeed, kStream));
    }
  }
}

// Keep iff u ≥ p, not u > p: with p equal to one of the drawn uniforms, that element is kept, by the
// forward and the backward alike.
TEST(Dropout, KeepsElementWhoseUniformEqualsP) {
  const int64_t n = 64, at = 37;
  const float p = philox_uniform_at(kSeed, kStream, at);
  ASSERT_GT(p, 0.0f);
  const std::vector<bool> keep = kept_by_forward(n, p, kSeed);
  EXPECT_TRUE(keep[at]);
  EXPECT_EQ(keep, reference_mask(n, p, kSeed, kStream));
  const std::vector<float> dy(n, 1.0f);
  std::vector<float> dx(n, 0.0f);
  raisin::cpu::dropout_backward(n, p, kSeed, &kTrainingStep, kCall, dy.data(), dx.data());
  EXPECT_NE(dx[at], 0.0f);
}

// The number kept is Binomial(n, 1 − p): within 6 standard deviations of n(1 − p).
TEST(Dropout, KeptFractionIsOneMinusP) {
  const int64_t n = 1 << 20;
  for (float p : {0.1f, 0.5f, 0.9f}) {
    SCOPED_TRACE(p);
    const std::vector<bool> keep = kept_by_forward(n, p, 2024, 7, 0);
    int64_t kept = 0;
    for (bool k : keep) kept += k;
    const double mean = n * (1.0 - p), sigma = std::sqrt(n * double(p) * (1.0 - p));
    EXPECT_LT(std::abs(double(kept) - mean), 6 * sigma) << "kept " << kept << " of " << n;
  }
}

TEST(Dropout, SameSeedAndStreamGiveSameMaskOthersDiffer) {
  const int64_t n = 4096;
  const float p = 0.5f;
  const std::vector<bool> mask = kept_by_forward(n, p, kSeed);
  EXPECT_EQ(mask, kept_by_forward(n, p, kSeed));
  // Two independent masks with p = 1/2 disagree on half the elements; require at least 40%.
  const auto disagreements = [&](const std::vector<bool>& other) {
    int64_t count = 0;
    for (int64_t i = 0; i < n; ++i) count += mask[i] != other[i];
    return count;
  };
  EXPECT_GT(disagreements(kept_by_forward(n, p, kSeed, kTrainingStep, kCall + 1)), n * 4 / 10) << "next call";
  EXPECT_GT(disagreements(kept_by_forward(n, p, kSeed, kTrainingStep ^ (int64_t(1) << 20))), n * 4 / 10) << "high stream bit";
  EXPECT_GT(disagreements(kept_by_forward(n, p, kSeed, kTrainingStep + 1)), n * 4 / 10) << "next step";
  EXPECT_GT(disagreements(kept_by_forward(n, p, kSeed + 1)), n * 4 / 10) << "next seed";
  EXPECT_GT(disagreements(kept_by_forward(n, p, kSeed ^ (1ull << 40))), n * 4 / 10) << "high seed bit";
}

// dx += dy / (1 − p) exactly where the forward kept the element; the rest of dx is left unchanged.
TEST(Dropout, BackwardUsesForwardMaskAndAccumulates) {
  for (int64_t n : {int64_t(5), int64_t(1003), int64_t(100001)}) {
    SCOPED_TRACE(n);
    const float p = 0.4f;
    const std::vector<bool> keep = kept_by_forward(n, p, kSeed);
    const std::vector<float> dy = random_floats(n, 20), before = random_floats(n, 21);
    std::vector<double> expected(n);
    for (int64_t i = 0; i < n; ++i) expected[i] = before[i] + (keep[i] ? double(dy[i]) / (1.0 - p) : 0.0);
    std::vector<float> dx = before;
    dx.push_back(-7.0f);  // a guard
    raisin::cpu::dropout_backward(n, p, kSeed, &kTrainingStep, kCall, dy.data(), dx.data());
    EXPECT_EQ(dx.back(), -7.0f) << "dropout_backward wrote past n";
    dx.pop_back();
    EXPECT_TRUE(all_close("dropout dx", dx, expected, 1e-6, 1e-7));
  }
}

// L(x) = dot(r, dropout(x)) for the fixed mask of (seed, stream); the backward with dy = r gives ∂L/∂x.
TEST(Dropout, BackwardMatchesFiniteDifferences) {
  const int64_t n = 1003;
  const float p = 0.25f;
  const std::vector<float> x = random_floats(n, 30), r = random_floats(n, 31);
  const std::vector<double> rd = to_double(r);
  const std::vector<double> expected = raisin::test::finite_difference_gradient(
      [&](const std::vector<double>& v) { return raisin::test::dot(rd, dropout_reference(v, p, 5, uint64_t(9) << 20)); },
      to_double(x), kStep);
  std::vector<float> dx(n, 0.0f);
  const int64_t step = 9;
  raisin::cpu::dropout_backward(n, p, 5, &step, 0, r.data(), dx.data());
  EXPECT_TRUE(all_close("dropout dx", dx, expected, 1e-6, 1e-8));
}

// p = 0 keeps everything unscaled: forward is an exact copy, backward an exact add.
TEST(Dropout, ZeroProbabilityIsIdentity) {
  const int64_t n = 100001;
  const std::vector<float> x = random_floats(n, 40), dy = random_floats(n, 41), before = random_floats(n, 42);
  std::vector<float> y(n, NAN);
  raisin::cpu::dropout_forward(n, 0.0f, kSeed, &kTrainingStep, kCall, x.data(), y.data());
  EXPECT_EQ(y, x);
  std::vector<float> dx = before;
  raisin::cpu::dropout_backward(n, 0.0f, kSeed, &kTrainingStep, kCall, dy.data(), dx.data());
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(dx[i], before[i] + dy[i]) << "at " << i;
}

}  // namespace
