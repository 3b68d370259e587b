// Test helpers shared by every suite: seeded random data, closeness checks with a useful failure
// message, central finite differences in double precision, and the GPU-or-skip rule.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/error.h"

namespace raisin::test {

// n floats uniform in [lo, hi), reproducible from seed.
std::vector<float> random_floats(size_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f);
// n ints uniform in [0, bound).
std::vector<int32_t> random_ints(size_t n, uint64_t seed, int32_t bound);

std::vector<double> to_double(const std::vector<float>& v);
std::vector<float> to_float(const std::vector<double>& v);

// Passes when |actual_i − expected_i| ≤ atol + rtol·|expected_i| for every i; otherwise names the
// worst element, both values and the largest relative error. `what` labels the comparison.
::testing::AssertionResult all_close(const std::string& what, const float* actual, const double* expected,
                                     size_t n, double rtol, double atol);
::testing::AssertionResult all_close(const std::string& what, const std::vector<float>& actual,
                                     const std::vector<double>& expected, double rtol, double atol);

// ∂f/∂x by central differences (f(x + h e_i) − f(x − h e_i)) / 2h, in double precision.
std::vector<double> finite_difference_gradient(const std::function<double(const std::vector<double>&)>& f,
                                               std::vector<double> x, double h = 1e-6);

// The three checks of a backward kernel with gradients (dx, dw, db) against the expected gx, gw, gb:
// into zeroed buffers; into pre-filled buffers (it must add to them); and with null pointers (each
// gradient alone, then none at all). An empty gb means the kernel has no bias. atol_x applies to dx,
// atol_w to dw and db.
void expect_backward_xwb(const std::function<void(float* dx, float* dw, float* db)>& backward,
                         const std::vector<double>& gx, const std::vector<double>& gw, const std::vector<double>& gb,
                         double rtol, double atol_x, double atol_w);

// Σ_i a_i·b_i, the scalar that turns a vector output into a loss for gradient checks.
double dot(const std::vector<double>& a, const std::vector<double>& b);

// The message of the raisin::Error that `f` throws; a test failure (and "") when it throws nothing or
// another exception.
template <typename F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-raisin exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "no Error thrown";
  return "";
}

// True when RAISIN_REQUIRE_GPU=1 is set: GPU tests must then fail instead of skipping.
bool gpu_required();

}  // namespace raisin::test
