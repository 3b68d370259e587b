// Tests for the CPU RAIS kernels (kernels/cpu/rais.cpp) against their specification in signatures.inc,
// computed here independently: the features' cases (never, recent, stale, future, non-finite norms); the
// robust p against ĉ + k·d̂ normalised in long double (robust, centre-only, all-equal, zero-total cases,
// a uniform share, sizes across the 1024-example tiles); the draw's weights and ring-buffer records;
// observe with repeated examples (the last draw wins); and the gain-ratio state over several steps,
// including r̂ = 1 for ω ≡ 1, the clamp and its count. (tests/rais/rais_kernels_test.cpp holds the
// kernels to rais/'s own implementations.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "tests/support/check.h"

namespace {

using namespace raisin;
using namespace raisin::kernels;

constexpr int kF = 4;

TEST(RaisFeatures, FollowTheSpecification) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const int64_t step = 100, spe = 10;
  const std::vector<float> norm = {2.5f, 3.0f, 4.0f, 0.5f, 7.0f, nan, inf, -inf, -1.0f, -0.0f, 1e30f, 6.0f};
  const std::vector<int64_t> seen = {-1, 99, 91, 90, 0, 95, 95, 95, 95, 95, 50, 103};
  const int64_t n = int64_t(norm.size());
  std::vector<float> features(size_t(n * kF), nan);
  cpu::rais_features(n, norm.data(), seen.data(), &step, spe, features.data());
  // never, recent, recent (step − seen = 9), stale (= 10), stale; non-finite or negative norms count 0;
  // a large finite norm stays; a future step counts as recent.
  const std::vector<std::vector<float>> expected = {
      {1, 0, 0, 1},  {1, 3, 0, 0}, {1, 4, 0, 0}, {1, 0, 0.5f, 0}, {1, 0, 7, 0},    {1, 0, 0, 0},
      {1, 0, 0, 0},  {1, 0, 0, 0}, {1, 0, 0, 0}, {1, 0, 0, 0},    {1, 0, 1e30f, 0}, {1, 6, 0, 0}};
  for (int64_t i = 0; i < n; ++i)
    for (int f = 0; f < kF; ++f) EXPECT_EQ(features[size_t(i * kF + f)], expected[size_t(i)][size_t(f)]) << i << "," << f;
  EXPECT_FALSE(std::signbit(features[size_t(9 * kF + 1)]));  // −0 norm → +0
}

// Features as the sampler has them: [1, recent·norm, stale·norm, never].
std::vector<float> random_features(int64_t n, uint64_t seed) {
  const std::vector<float> u = test::random_floats(size_t(n), seed, 0.0f, 1.0f);
  const std::vector<float> norm = test::random_floats(size_t(n), seed + 1, 0.0f, 3.0f);
  std::vector<float> f(size_t(n * kF), 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    f[size_t(i * kF)] = 1.0f;
    const int kind = int(u[size_t(i)] * 3.0f);  // 0 recent, 1 stale, 2 never
    if (kind < 2) f[size_t(i * kF + 1 + kind)] = norm[size_t(i)];
    if (kind == 2) f[size_t(i * kF + 3)] = 1.0f;
  }
  return f;
}

std::vector<double> distribution(const std::vector<float>& features, const std::vector<double>& c,
                                 const std::vector<double>& d, double uniform_share) {
  const int64_t n = int64_t(features.size()) / kF;
  std::vector<double> p(size_t(n), NAN);
  std::vector<double> workspace(size_t(cpu::rais_distribution_workspace_doubles(n)), NAN);
  cpu::rais_distribution(n, features.data(), c.data(), d.data(), uniform_share, p.data(), workspace.data());
  return p;
}

// p_i = w_i·(1 − u)/Σw + u/n with w = ĉ + k·d̂, k = sqrt(n/Σd̂), sums in long double.
std::vector<double> expected_distribution(const std::vector<float>& features, const std::vector<double>& c,
                                          const std::vector<double>& d, double uniform_share) {
  const int64_t n = int64_t(features.size()) / kF;
  std::vector<long double> c_hat(static_cast<size_t>(n)), d_hat(static_cast<size_t>(n));
  long double sc = 0, sd = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int f = 0; f < kF; ++f) {
      c_hat[size_t(i)] += (long double)c[size_t(f)] * features[size_t(i * kF + f)];
      d_hat[size_t(i)] += (long double)d[size_t(f)] * features[size_t(i * kF + f)];
    }
    sc += c_hat[size_t(i)];
    sd += d_hat[size_t(i)];
  }
  const long double k = sd > 0 ? std::sqrt((long double)n / sd) : 0;
  const long double total = sc + k * sd;
  std::vector<double> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    p[size_t(i)] = double((c_hat[size_t(i)] + k * d_hat[size_t(i)]) * (1 - uniform_share) / total + uniform_share / n);
  return p;
}

void expect_close(const std::vector<double>& actual, const std::vector<double>& expected, double rtol) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i)
    ASSERT_NEAR(actual[i], expected[i], rtol * expected[i]) << "p[" << i << "] of " << actual.size();
}

TEST(RaisDistribution, IsTheRobustClosedForm) {
  const std::vector<double> c = {0.1, 1.0, 0.7, 2.0}, d = {0.05, 0.3, 0.9, 1.5};
  for (int64_t n : {1, 7, 1023, 1024, 1025, 5000, 100003}) {
    SCOPED_TRACE("n = " + std::to_string(n));
    const std::vector<float> f = random_features(n, uint64_t(n));
    for (double u : {0.0, 0.1}) {
      const std::vector<double> p = distribution(f, c, d, u);
      expect_close(p, expected_distribution(f, c, d, u), 1e-12);
      double sum = 0;
      for (double x : p) {
        EXPECT_GE(x, u / double(n));
        sum += x;
      }
      EXPECT_NEAR(sum, 1.0, 1e-12);
    }
  }
}

TEST(RaisDistribution, CentreOnlyWhenEveryWidthIsZero) {
  const std::vector<float> f = random_features(3001, 5);
  const std::vector<double> c = {0.2, 1.0, 0.5, 3.0}, d = {0, 0, 0, 0};
  expect_close(distribution(f, c, d, 0.25), expected_distribution(f, c, d, 0.25), 1e-12);
}

TEST(RaisDistribution, ExactlyUniformWhenEqualOrDegenerate) {
  const int64_t n = 2049;
  const std::vector<double> uniform(size_t(n), 1.0 / double(n));
  std::vector<float> equal(size_t(n * kF), 0.0f);
  for (int64_t i = 0; i < n; ++i) equal[size_t(i * kF)] = 1.0f, equal[size_t(i * kF + 2)] = 0.75f;
  EXPECT_EQ(distribution(equal, {0.3, 1, 2, 1}, {0.1, 0.2, 0.4, 1}, 0.1), uniform) << "equal features";
  const std::vector<float> f = random_features(n, 9);
  EXPECT_EQ(distribution(f, {0, 0, 0, 0}, {0, 0, 0, 0}, 0.0), uniform) << "zero total";
  const double huge = std::numeric_limits<double>::max();
  EXPECT_EQ(distribution(f, {huge, huge, 0, 0}, {0, 0, 0, 0}, 0.0), uniform) << "infinite total";
  // Only never-seen examples weigh: the others get p = 0 (no uniform share) or u/n.
  const std::vector<double> c = {0, 0, 0, 1}, d = {0, 0, 0, 0};
  const std::vector<double> p = distribution(f, c, d, 0.0);
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(p[size_t(i)] == 0.0, f[size_t(i * kF + 3)] == 0.0f) << i;
  EXPECT_EQ(distribution(std::vector<float>{1, 2, 0, 0}, {1, 1, 1, 1}, {1, 1, 1, 1}, 0.3), std::vector<double>{1.0});
}

TEST(RaisRecordDraws, WeightsAndRingBufferRecords) {
  const int64_t n = 50, capacity = 12, first = 29;  // slots wrap: 5, 6, ..., 11, 0, 1, 2
  const int batch = 10;
  const std::vector<float> features = random_features(n, 3);
  std::vector<double> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[size_t(i)] = double(i + 1) / (n * (n + 1) / 2);
  const std::vector<int32_t> indices = {4, 49, 0, 4, 17, 30, 30, 2, 11, 8};
  for (bool importance : {true, false}) {
    SCOPED_TRACE(importance ? "with p" : "p null");
    std::vector<float> weights(size_t(batch), NAN), records(size_t(capacity * kF), -1.0f), record_w(size_t(capacity), -1.0f);
    cpu::rais_record_draws(batch, indices.data(), n, importance ? p.data() : nullptr, features.data(), &first, capacity,
                           importance ? weights.data() : nullptr, records.data(), record_w.data());
    std::vector<bool> written(size_t(capacity), false);
    for (int j = 0; j < batch; ++j) {
      const int32_t i = indices[size_t(j)];
      const float omega = importance ? float(1.0 / (double(n) * p[size_t(i)])) : 1.0f;
      if (importance) {
        EXPECT_EQ(weights[size_t(j)], omega) << j;
      }
      const int64_t slot = (first + j) % capacity;
      written[size_t(slot)] = true;
      EXPECT_EQ(record_w[size_t(slot)], omega) << j;
      for (int f = 0; f < kF; ++f) EXPECT_EQ(records[size_t(slot * kF + f)], features[size_t(i * kF + f)]) << j;
    }
    for (int64_t s = 0; s < capacity; ++s) {
      if (!written[size_t(s)]) {
        EXPECT_EQ(record_w[size_t(s)], -1.0f) << "slot " << s << " is not the draw's";
      }
    }
  }
}

TEST(RaisObserve, LastDrawOfARepeatedExampleWins) {
  const int64_t n = 8, capacity = 6, first = 4, step = 42;
  const std::vector<int32_t> indices = {3, 5, 3, 0, 5, 3};
  const std::vector<float> norms = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
  std::vector<float> record_norms(size_t(capacity), -1.0f), last_norm(size_t(n), -1.0f);
  std::vector<int64_t> last_seen(size_t(n), -7);
  cpu::rais_observe(int(indices.size()), indices.data(), norms.data(), &step, &first, capacity, record_norms.data(),
                    last_norm.data(), last_seen.data(), nullptr);
  EXPECT_EQ(record_norms, (std::vector<float>{0.3f, 0.4f, 0.5f, 0.6f, 0.1f, 0.2f}));
  EXPECT_EQ(last_norm, (std::vector<float>{0.4f, -1, -1, 0.6f, -1, 0.5f, -1, -1}));
  EXPECT_EQ(last_seen, (std::vector<int64_t>{42, -7, -7, 42, -7, 42, -7, -7}));
}

// A step whose check found a non-finite value teaches the sampler nothing: observe and the gain ratio
// leave their state as it is.
TEST(RaisObserve, AFaultyStepChangesNothing) {
  const int64_t n = 8, capacity = 6, first = 4, step = 42;
  const std::vector<int32_t> indices = {3, 5};
  const std::vector<float> norms = {NAN, 0.2f};
  std::vector<float> record_norms(size_t(capacity), -1.0f), last_norm(size_t(n), -1.0f);
  std::vector<int64_t> last_seen(size_t(n), -7);
  const int32_t fault = 1;
  cpu::rais_observe(2, indices.data(), norms.data(), &step, &first, capacity, record_norms.data(), last_norm.data(),
                    last_seen.data(), &fault);
  EXPECT_EQ(record_norms, std::vector<float>(size_t(capacity), -1.0f));
  EXPECT_EQ(last_norm, std::vector<float>(size_t(n), -1.0f));
  EXPECT_EQ(last_seen, std::vector<int64_t>(size_t(n), -7));

  std::vector<double> state = {0.5, 0.25, 0.125, 0.9, 1.5, 2, 7};
  const std::vector<double> before = state;
  const std::vector<float> dlogits(20, NAN);
  cpu::gain_ratio_update(2, 10, norms.data(), nullptr, dlogits.data(), {0.1, 0.5, 4.0}, state.data(), &fault);
  EXPECT_EQ(state, before);
}

// The estimator of RAIS.md §2 written out from its definition.
struct GainRatioModel {
  GainRatioHyper hyper;
  double m_u1 = 0, m_r1 = 0, m_r = 0, decay = 1, value = 1, clamped = 0, steps = 0;
  void update(int batch, int classes, const float* v, const float* w, const float* dlogits) {
    double u1 = 0, r1 = 0, g = 0;
    for (int i = 0; i < batch; ++i) {
      const double omega = w ? w[i] : 1.0;
      u1 += double(v[i]) * v[i] * omega;
      r1 += (double(v[i]) * omega) * (double(v[i]) * omega);
    }
    for (int k = 0; k < classes; ++k) {
      double column = 0;
      for (int i = 0; i < batch; ++i) column += dlogits[i * classes + k];
      g += column * column;
    }
    const double a = hyper.alpha;
    m_u1 = a * (u1 / batch) + (1 - a) * m_u1;
    m_r1 = a * (r1 / batch) + (1 - a) * m_r1;
    m_r = a * g + (1 - a) * m_r;
    decay *= 1 - a;
    ++steps;
    const double correction = 1 - decay;
    double r = m_r > 0 ? 1 + (m_u1 / correction - m_r1 / correction) / (batch * (m_r / correction)) : 1;
    if (!std::isfinite(r)) r = 1;
    if (r < hyper.min || r > hyper.max) ++clamped;
    value = std::fmin(std::fmax(r, hyper.min), hyper.max);
  }
};

std::vector<double> initial_state() { return {0, 0, 0, 1, 1, 0, 0}; }

TEST(GainRatioUpdate, FollowsTheEstimatorOverSteps) {
  const int batch = 37, classes = 10;
  const GainRatioHyper hyper{0.1, 0.25, 16};
  GainRatioModel model{hyper};
  std::vector<double> state = initial_state();
  for (int step = 0; step < 6; ++step) {
    const std::vector<float> v = test::random_floats(batch, 100 + step, 0.0f, 2.0f);
    const std::vector<float> w = test::random_floats(batch, 200 + step, 0.2f, 3.0f);
    const std::vector<float> dlogits = test::random_floats(size_t(batch * classes), 300 + step, -0.1f, 0.1f);
    const float* weights = step % 2 ? w.data() : nullptr;
    cpu::gain_ratio_update(batch, classes, v.data(), weights, dlogits.data(), hyper, state.data(), nullptr);
    model.update(batch, classes, v.data(), weights, dlogits.data());
    const std::vector<double> expected = {model.m_u1, model.m_r1, model.m_r,    model.decay,
                                          model.value, model.clamped, model.steps};
    for (int s = 0; s < kGainRatioStateSize; ++s)
      EXPECT_NEAR(state[size_t(s)], expected[size_t(s)], 1e-12 * std::fabs(expected[size_t(s)])) << "step " << step << " slot " << s;
  }
}

TEST(GainRatioUpdate, IsOneWithoutWeightsAndClampsOtherwise) {
  const int batch = 16, classes = 3;
  const GainRatioHyper hyper{0.5, 0.5, 2};
  const std::vector<float> v = test::random_floats(batch, 1, 0.5f, 2.0f);
  const std::vector<float> dlogits = test::random_floats(size_t(batch * classes), 2, -0.01f, 0.01f);
  std::vector<double> state = initial_state();
  cpu::gain_ratio_update(batch, classes, v.data(), nullptr, dlogits.data(), hyper, state.data(), nullptr);
  EXPECT_EQ(state[kGainValue], 1.0);  // U1 = R1 exactly when ω ≡ 1
  EXPECT_EQ(state[kGainClamped], 0.0);
  // Large weights on large norms: r̂ = 1 + (U1 − R1)/(B·R) < 0.5 → clamped to 0.5 and counted.
  const std::vector<float> w(batch, 40.0f);
  cpu::gain_ratio_update(batch, classes, v.data(), w.data(), dlogits.data(), hyper, state.data(), nullptr);
  EXPECT_EQ(state[kGainValue], 0.5);
  EXPECT_EQ(state[kGainClamped], 1.0);
  EXPECT_EQ(state[kGainSteps], 2.0);
  // Zero bias gradient: R = 0, r̂ = 1.
  std::vector<double> fresh = initial_state();
  const std::vector<float> zeros(size_t(batch * classes), 0.0f);
  cpu::gain_ratio_update(batch, classes, v.data(), w.data(), zeros.data(), hyper, fresh.data(), nullptr);
  EXPECT_EQ(fresh[kGainValue], 1.0);
  EXPECT_EQ(fresh[kGainClamped], 0.0);
}

}  // namespace
