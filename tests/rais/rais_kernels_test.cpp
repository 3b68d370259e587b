// The device RAIS kernels' CPU twins (kernels/cpu/rais.cpp, which the CUDA parity test holds the GPU to)
// against rais/'s host implementations (rais::compute_features is rais_features itself): p matches
// rais::robust_distribution to 1e-12 relative (only the order of its two sums differs); gain_ratio_update
// equals rais::GainRatio::update bit for bit; and a RaisSampler run step by step is mirrored by the kernels
// (features, p, weights, records, last norms and steps, gain-ratio state).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/sampler.h"
#include "kernels/cpu/kernels.h"
#include "rais/distribution.h"
#include "rais/gain_ratio.h"
#include "rais/rais_sampler.h"
#include "tests/support/check.h"

namespace raisin::rais {
namespace {

using kernels::GainRatioHyper;

// Per-example state with every case: never seen, recent, stale, non-finite and negative norms.
struct ExampleState {
  std::vector<float> last_norm;
  std::vector<int64_t> last_seen;
};

ExampleState random_state(int64_t n, int64_t step, uint64_t seed) {
  ExampleState s{test::random_floats(size_t(n), seed, -0.2f, 3.0f), {}};
  const std::vector<int32_t> seen = test::random_ints(size_t(n), seed + 1, int32_t(step + 2));
  for (int64_t i = 0; i < n; ++i) {
    s.last_seen.push_back(int64_t(seen[size_t(i)]) - 1);  // −1 … step (a few never seen)
    if (i % 97 == 5) s.last_norm[size_t(i)] = NAN;
    if (i % 89 == 7) s.last_norm[size_t(i)] = INFINITY;
  }
  return s;
}

std::vector<float> kernel_features(const ExampleState& s, int64_t step, int64_t spe) {
  const int64_t n = int64_t(s.last_norm.size());
  std::vector<float> f(size_t(n * kFeatureCount), NAN);
  cpu::rais_features(n, s.last_norm.data(), s.last_seen.data(), &step, spe, f.data());
  return f;
}

std::vector<double> kernel_p(const std::vector<float>& features, const std::vector<double>& c,
                             const std::vector<double>& d, double uniform_share) {
  const int64_t n = int64_t(features.size()) / kFeatureCount;
  std::vector<double> p(size_t(n), NAN);
  std::vector<double> workspace(size_t(cpu::rais_distribution_workspace_doubles(n)), NAN);
  cpu::rais_distribution(n, features.data(), c.data(), d.data(), uniform_share, p.data(), workspace.data());
  return p;
}

void expect_p_close(const std::vector<double>& actual, const std::vector<double>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i)
    ASSERT_NEAR(actual[i], expected[i], 1e-12 * expected[i]) << "p[" << i << "] of " << actual.size();
}

TEST(RaisKernels, DistributionMatchesRobustDistribution) {
  const std::vector<double> c = {0.05, 0.8, 0.6, 1.7}, d = {0.01, 0.4, 1.1, 0.9};
  for (int64_t n : {1, 2, 1023, 1025, 100003}) {
    SCOPED_TRACE("n = " + std::to_string(n));
    const std::vector<float> f = kernel_features(random_state(n, 300, uint64_t(n) + 5), 300, 25);
    for (double u : {0.0, 0.2}) {
      expect_p_close(kernel_p(f, c, d, u), robust_distribution(f.data(), n, kFeatureCount, c.data(), d.data(), u).p);
      const std::vector<double> zero = {0, 0, 0, 0};  // centre only
      expect_p_close(kernel_p(f, c, zero, u), robust_distribution(f.data(), n, kFeatureCount, c.data(), zero.data(), u).p);
      const std::vector<double> constant = {1, 0, 0, 0};  // every w equal: exactly 1/n
      EXPECT_EQ(kernel_p(f, constant, constant, u),
                robust_distribution(f.data(), n, kFeatureCount, constant.data(), constant.data(), u).p);
      EXPECT_EQ(kernel_p(f, zero, zero, u), robust_distribution(f.data(), n, kFeatureCount, zero.data(), zero.data(), u).p);
    }
  }
}

std::vector<double> kernel_state(const GainRatio::State& s) {
  return {s.m_u1, s.m_r1, s.m_r, s.decay, s.value, double(s.clamped), double(s.steps)};
}

// trainer.cpp's ‖Σ_j dlogits_j‖²: per class a column sum in index order, squares added in class order.
double bias_gradient_sq_norm(const std::vector<float>& dlogits, int batch, int classes) {
  double total = 0;
  for (int k = 0; k < classes; ++k) {
    double column = 0;
    for (int i = 0; i < batch; ++i) column += dlogits[size_t(i * classes + k)];
    total += column * column;
  }
  return total;
}

TEST(RaisKernels, GainRatioUpdateEqualsGainRatioBitForBit) {
  const int batch = 64, classes = 10;
  const GainRatioOptions options{0.5, 0.25, 16};
  const GainRatioHyper hyper{options.alpha, options.min, options.max};
  GainRatio reference(options);
  std::vector<double> state = kernel_state(reference.state());
  bool clamped_low = false, clamped_high = false;
  for (int step = 0; step < 30; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    const std::vector<float> v = test::random_floats(batch, 10 + step, 0.0f, 1.5f);
    // Steps 0-9: ω < 1 (ω > ω²) and a tiny ‖ĝ‖², r̂ far above the clamp; from step 20, ω² ≫ ω, below it.
    const bool high = step < 10;
    std::vector<float> w = test::random_floats(batch, 20 + step, high ? 0.1f : 0.5f, high ? 0.9f : 2.0f);
    if (step >= 20) w.assign(batch, 30.0f);
    const float spread = high ? 1e-4f : 0.05f;
    const std::vector<float> dlogits = test::random_floats(size_t(batch * classes), 30 + step, -spread, spread);
    const float* weights = step % 3 == 0 ? nullptr : w.data();
    reference.update(batch, v.data(), weights, bias_gradient_sq_norm(dlogits, batch, classes));
    cpu::gain_ratio_update(batch, classes, v.data(), weights, dlogits.data(), hyper, state.data(), nullptr);
    ASSERT_EQ(state, kernel_state(reference.state()));
    clamped_low |= reference.value() == options.min;
    clamped_high |= reference.value() == options.max;
  }
  EXPECT_TRUE(clamped_low && clamped_high) << "the steps were meant to hit both ends of the clamp";
  EXPECT_GT(reference.clamped(), 0);
}

// A RaisSampler (fixed (c, d), no warm-up, p rebuilt every step) and the kernels fed the same draws,
// proxy norms and bias gradients: same p, weights, records, per-example state and gain ratio.
TEST(RaisKernels, MirrorRaisSamplerStepByStep) {
  const int64_t n = 3000;
  const int batch = 128, classes = 10;
  RaisOptions options;
  options.shuffled_warmup = false;
  options.refit = false;
  options.record_batches = 3;
  options.uniform_share = 0.05;
  options.initial_c = {0.1, 1.0, 0.8, 2.0};
  options.initial_d = {0.02, 0.5, 0.7, 1.0};
  options.gain_ratio = {0.1, 0.25, 16};
  RaisSampler sampler(n, 77, options);

  const int64_t spe = steps_per_epoch(n, batch), capacity = int64_t(options.record_batches) * batch;
  ExampleState s{std::vector<float>(size_t(n), 0.0f), std::vector<int64_t>(size_t(n), -1)};
  std::vector<float> features(size_t(n * kFeatureCount)), record_features(size_t(capacity * kFeatureCount), 0.0f),
      record_norms(size_t(capacity), 0.0f), record_weights(size_t(capacity), 0.0f), weights(batch);
  std::vector<double> p(static_cast<size_t>(n)), workspace(static_cast<size_t>(cpu::rais_distribution_workspace_doubles(n)));
  std::vector<double> gain = kernel_state(GainRatio(options.gain_ratio).state());
  const GainRatioHyper hyper{options.gain_ratio.alpha, options.gain_ratio.min, options.gain_ratio.max};

  std::vector<int32_t> indices;
  std::vector<float> sampler_weights;
  for (int64_t step = 0; step < 40; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    sampler.draw(step, batch, indices, sampler_weights);
    const int64_t first_record = step * batch;
    cpu::rais_features(n, s.last_norm.data(), s.last_seen.data(), &step, spe, features.data());
    cpu::rais_distribution(n, features.data(), options.initial_c.data(), options.initial_d.data(),
                           options.uniform_share, p.data(), workspace.data());
    expect_p_close(p, sampler.probabilities());
    // The weights from the sampler's own p are its weights exactly.
    cpu::rais_record_draws(batch, indices.data(), n, sampler.probabilities().data(), features.data(), &first_record,
                           capacity, weights.data(), record_features.data(), record_weights.data());
    ASSERT_EQ(weights, sampler_weights);

    const std::vector<float> norms = test::random_floats(batch, 1000 + uint64_t(step), 0.0f, 2.0f);
    const std::vector<float> dlogits = test::random_floats(size_t(batch * classes), 2000 + uint64_t(step), -0.1f, 0.1f);
    sampler.observe({step, indices, norms.data(), sampler_weights.data(), bias_gradient_sq_norm(dlogits, batch, classes)});
    cpu::rais_observe(batch, indices.data(), norms.data(), &step, &first_record, capacity, record_norms.data(),
                      s.last_norm.data(), s.last_seen.data(), nullptr);
    cpu::gain_ratio_update(batch, classes, norms.data(), weights.data(), dlogits.data(), hyper, gain.data(), nullptr);
  }
  SamplerState saved;
  sampler.save_state(saved);
  EXPECT_EQ(s.last_norm, saved.floats.at("last_norm"));
  EXPECT_EQ(s.last_seen, saved.integers.at("last_seen"));
  EXPECT_EQ(record_features, saved.floats.at("record_features"));
  EXPECT_EQ(record_norms, saved.floats.at("record_norms"));
  EXPECT_EQ(record_weights, saved.floats.at("record_weights"));
  const std::vector<double>& moments = saved.reals.at("gain_ratio_moments");
  const std::vector<int64_t>& counts = saved.integers.at("gain_ratio_counts");
  EXPECT_EQ(gain, (std::vector<double>{moments[0], moments[1], moments[2], moments[3], moments[4], double(counts[0]),
                                       double(counts[1])}));
}

}  // namespace
}  // namespace raisin::rais
