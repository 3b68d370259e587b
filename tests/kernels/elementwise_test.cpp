// Tests for the CPU elementwise kernels (kernels/cpu/elementwise.cpp): fill, axpy, add and relu,
// against double-precision references, with relu's backward checked by finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "tests/support/check.h"

namespace {

using raisin::test::all_close;
using raisin::test::random_floats;
using raisin::test::to_double;

// Sizes from empty to well past the kernels' OpenMP threshold, odd ones included.
const std::vector<int64_t> kSizes = {0, 1, 7, 1000, 100003};

// Finite-difference step: relu is linear on each side of 0 and the test inputs stay 0.1 away from it,
// so a step this size is exact up to rounding, which it keeps ~1e-10 (a 1e-6 step leaves ~3e-8).
constexpr double kStep = 1e-4;

std::vector<double> relu_reference(const std::vector<double>& x) {
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] > 0 ? x[i] : 0.0;
  return y;
}

// Random values with |x| in [0.1, 1] and a random sign: far enough from relu's kink at 0 for central
// differences with a small step.
std::vector<float> values_away_from_zero(size_t n, uint64_t seed) {
  std::vector<float> magnitude = random_floats(n, seed, 0.1f, 1.0f);
  std::vector<float> sign = random_floats(n, seed + 1);
  for (size_t i = 0; i < n; ++i) magnitude[i] *= sign[i] < 0 ? -1.0f : 1.0f;
  return magnitude;
}

TEST(Elementwise, FillWritesExactlyNValues) {
  for (int64_t n : kSizes) {
    SCOPED_TRACE(n);
    std::vector<float> y(size_t(n) + 1, -7.0f);  // the last element is a guard
    raisin::cpu::fill(n, 2.5f, y.data());
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y[i], 2.5f) << "at " << i;
    EXPECT_EQ(y[n], -7.0f) << "fill wrote past n";
  }
}

TEST(Elementwise, AxpyMatchesReference) {
  for (int64_t n : kSizes) {
    SCOPED_TRACE(n);
    const float alpha = -0.37f;
    const std::vector<float> x = random_floats(n, 11);
    std::vector<float> y = random_floats(n, 12);
    std::vector<double> expected(n);
    for (int64_t i = 0; i < n; ++i) expected[i] = double(y[i]) + double(alpha) * double(x[i]);
    raisin::cpu::axpy(n, alpha, x.data(), y.data());
    EXPECT_TRUE(all_close("axpy", y, expected, 1e-6, 1e-7));
  }
}

TEST(Elementwise, AddForwardMatchesReference) {
  for (int64_t n : kSizes) {
    SCOPED_TRACE(n);
    const std::vector<float> a = random_floats(n, 21), b = random_floats(n, 22);
    std::vector<double> expected(n);
    for (int64_t i = 0; i < n; ++i) expected[i] = double(a[i]) + double(b[i]);
    std::vector<float> y(n, NAN);
    raisin::cpu::add_forward(n, a.data(), b.data(), y.data());
    // One float rounding of an exact sum: relative error at most 2^-24.
    EXPECT_TRUE(all_close("add", y, expected, 1e-7, 0.0));
    // In place (y aliases a), as a residual connection may do.
    std::vector<float> inplace = a;
    raisin::cpu::add_forward(n, inplace.data(), b.data(), inplace.data());
    EXPECT_TRUE(all_close("add in place", inplace, expected, 1e-7, 0.0));
  }
}

TEST(Relu, ForwardMatchesReference) {
  for (int64_t n : kSizes) {
    SCOPED_TRACE(n);
    std::vector<float> x = random_floats(n, 31, -2.0f, 2.0f);
    if (n > 1) x[1] = 0.0f;
    std::vector<float> y(n, NAN);
    raisin::cpu::relu_forward(n, x.data(), y.data());
    EXPECT_TRUE(all_close("relu", y, relu_reference(to_double(x)), 0.0, 0.0));
  }
}

TEST(Relu, ForwardPropagatesNaN) {
  const std::vector<float> x = {NAN, -1.0f, 1.0f};
  std::vector<float> y(3);
  raisin::cpu::relu_forward(3, x.data(), y.data());
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_EQ(y[2], 1.0f);
}

// L(x) = dot(r, relu(x)); the backward with dy = r must give ∂L/∂x.
TEST(Relu, BackwardMatchesFiniteDifferences) {
  for (int64_t n : {int64_t(1), int64_t(7), int64_t(1000)}) {
    SCOPED_TRACE(n);
    const std::vector<float> x = values_away_from_zero(n, 41);
    const std::vector<float> r = random_floats(n, 42);
    const std::vector<double> rd = to_double(r);
    const std::vector<double> expected = raisin::test::finite_difference_gradient(
        [&](const std::vector<double>& v) { return raisin::test::dot(rd, relu_reference(v)); }, to_double(x),
        kStep);
    std::vector<float> y(n), dx(n, 0.0f);
    raisin::cpu::relu_forward(n, x.data(), y.data());
    raisin::cpu::relu_backward(n, y.data(), r.data(), dx.data());
    EXPECT_TRUE(all_close("relu dx", dx, expected, 1e-7, 1e-9));
  }
}

// The backward adds into dx (a tensor feeding several ops gathers all its gradients), also past the
// OpenMP threshold; the gradient at exactly 0 is 0.
TEST(Relu, BackwardAccumulatesIntoDx) {
  for (int64_t n : kSizes) {
    SCOPED_TRACE(n);
    std::vector<float> x = values_away_from_zero(n, 51);
    if (n > 1) x[1] = 0.0f;
    const std::vector<float> dy = random_floats(n, 52), before = random_floats(n, 53);
    std::vector<double> expected(n);
    for (int64_t i = 0; i < n; ++i) expected[i] = double(before[i]) + (x[i] > 0 ? double(dy[i]) : 0.0);
    std::vector<float> y(n), dx = before;
    raisin::cpu::relu_forward(n, x.data(), y.data());
    raisin::cpu::relu_backward(n, y.data(), dy.data(), dx.data());
    EXPECT_TRUE(all_close("relu dx accumulated", dx, expected, 1e-7, 0.0));
  }
}

}  // namespace
