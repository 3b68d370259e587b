// Test helpers shared by every suite (see check.h).
#include "tests/support/check.h"

#include <cmath>
#include <cstdlib>
#include <random>
#include <sstream>

namespace raisin::test {

std::vector<float> random_floats(size_t n, uint64_t seed, float lo, float hi) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

std::vector<int32_t> random_ints(size_t n, uint64_t seed, int32_t bound) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> dist(0, bound - 1);
  std::vector<int32_t> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

std::vector<float> to_float(const std::vector<double>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = float(v[i]);
  return out;
}

::testing::AssertionResult all_close(const std::string& what, const float* actual, const double* expected,
                                     size_t n, double rtol, double atol) {
  size_t worst = 0, failures = 0;
  double worst_excess = -1, max_rel = 0;
  for (size_t i = 0; i < n; ++i) {
    const double diff = std::abs(double(actual[i]) - expected[i]);
    const double allowed = atol + rtol * std::abs(expected[i]);
    max_rel = std::max(max_rel, diff / std::max(std::abs(expected[i]), 1e-30));
    const bool bad = !(diff <= allowed);  // also catches NaN
    if (bad) ++failures;
    const double excess = std::isnan(diff) ? INFINITY : diff - allowed;
    if (bad && excess > worst_excess) worst_excess = excess, worst = i;
  }
  if (failures == 0) return ::testing::AssertionSuccess();
  std::ostringstream msg;
  msg << what << ": " << failures << " of " << n << " elements differ; worst at [" << worst
      << "]: actual " << actual[worst] << ", expected " << expected[worst] << " (rtol " << rtol << ", atol "
      << atol << ", largest relative error " << max_rel << ")";
  return ::testing::AssertionFailure() << msg.str();
}

::testing::AssertionResult all_close(const std::string& what, const std::vector<float>& actual,
                                     const std::vector<double>& expected, double rtol, double atol) {
  if (actual.size() != expected.size())
    return ::testing::AssertionFailure() << what << ": size " << actual.size() << " vs expected "
                                         << expected.size();
  return all_close(what, actual.data(), expected.data(), actual.size(), rtol, atol);
}

std::vector<double> finite_difference_gradient(const std::function<double(const std::vector<double>&)>& f,
                                               std::vector<double> x, double h) {
  std::vector<double> grad(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double up = f(x);
    x[i] = saved - h;
    const double down = f(x);
    x[i] = saved;
    grad[i] = (up - down) / (2 * h);
  }
  return grad;
}

void expect_backward_xwb(const std::function<void(float* dx, float* dw, float* db)>& backward,
                         const std::vector<double>& gx, const std::vector<double>& gw, const std::vector<double>& gb,
                         double rtol, double atol_x, double atol_w) {
  // From zero: the gradients themselves.
  {
    std::vector<float> dx(gx.size(), 0.0f), dw(gw.size(), 0.0f), db(gb.size(), 0.0f);
    backward(dx.data(), dw.data(), db.empty() ? nullptr : db.data());
    EXPECT_TRUE(all_close("dx", dx, gx, rtol, atol_x));
    EXPECT_TRUE(all_close("dw", dw, gw, rtol, atol_w));
    if (!gb.empty()) {
      EXPECT_TRUE(all_close("db", db, gb, rtol, atol_w));
    }
  }

  // Pre-filled buffers: backward adds to them.
  {
    auto dx = random_floats(gx.size(), 71), dw = random_floats(gw.size(), 72), db = random_floats(gb.size(), 73);
    auto ex = to_double(dx), ew = to_double(dw), eb = to_double(db);
    for (size_t i = 0; i < ex.size(); i++) ex[i] += gx[i];
    for (size_t i = 0; i < ew.size(); i++) ew[i] += gw[i];
    for (size_t i = 0; i < eb.size(); i++) eb[i] += gb[i];
    backward(dx.data(), dw.data(), db.empty() ? nullptr : db.data());
    EXPECT_TRUE(all_close("dx accumulated", dx, ex, rtol, atol_x));
    EXPECT_TRUE(all_close("dw accumulated", dw, ew, rtol, atol_w));
    if (!gb.empty()) {
      EXPECT_TRUE(all_close("db accumulated", db, eb, rtol, atol_w));
    }
  }

  // Null pointers: each gradient alone, then none at all.
  {
    std::vector<float> dx(gx.size(), 0.0f);
    backward(dx.data(), nullptr, nullptr);
    EXPECT_TRUE(all_close("dx alone", dx, gx, rtol, atol_x));
    std::vector<float> dw(gw.size(), 0.0f);
    backward(nullptr, dw.data(), nullptr);
    EXPECT_TRUE(all_close("dw alone", dw, gw, rtol, atol_w));
    if (!gb.empty()) {
      std::vector<float> db(gb.size(), 0.0f);
      backward(nullptr, nullptr, db.data());
      EXPECT_TRUE(all_close("db alone", db, gb, rtol, atol_w));
    }
    backward(nullptr, nullptr, nullptr);
  }
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) s += a[i] * b[i];
  return s;
}

bool gpu_required() {
  const char* v = std::getenv("RAISIN_REQUIRE_GPU");
  return v != nullptr && std::string(v) == "1";
}

}  // namespace raisin::test
