// RAIS.md §7 properties 7-9: the weighted estimator is unbiased for any p > 0; the second-moment
// formula and the gain-ratio identity hold; uniform sampling gives r̂ = 1 exactly; and the EMA
// estimator r̂ converges to the exact gain ratio.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <random>

#include "engine/error.h"
#include "rais/gain_ratio.h"

namespace raisin::rais {
namespace {

using Vec = std::array<double, 3>;

// A tiny problem: n per-example gradients and a sampling distribution p.
struct Problem {
  std::vector<Vec> g;
  std::vector<double> p;
  int n() const { return int(g.size()); }
  Vec full_gradient() const {
    Vec m{};
    for (const Vec& v : g)
      for (int k = 0; k < 3; ++k) m[k] += v[k] / n();
    return m;
  }
  static double sq(const Vec& v) { return v[0] * v[0] + v[1] * v[1] + v[2] * v[2]; }
  // E‖g_q‖² for batch B (RAIS.md §1).
  double second_moment(const std::vector<double>& q, int batch) const {
    double first = 0;
    for (int i = 0; i < n(); ++i) first += sq(g[i]) / (double(n()) * n() * q[i]);
    return first / batch + (1 - 1.0 / batch) * sq(full_gradient());
  }
};

Problem make_problem(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::uniform_real_distribution<double> uniform(0.2, 1.0);
  Problem p;
  double total = 0;
  for (int i = 0; i < 6; ++i) {
    const double scale = i < 2 ? 4.0 : 0.5;  // two heavy examples: importance sampling pays
    p.g.push_back({scale * normal(rng), scale * normal(rng), scale * normal(rng) + 0.3});
    p.p.push_back(uniform(rng) * (i < 2 ? 4 : 1));
    total += p.p.back();
  }
  for (double& q : p.p) q /= total;
  return p;
}

// One importance-sampled batch: indices drawn i.i.d. from p; returns ĝ and fills ṽ, ω.
Vec draw_batch(const Problem& prob, int batch, std::mt19937_64& rng, std::vector<float>& v, std::vector<float>& w) {
  std::discrete_distribution<int> pick(prob.p.begin(), prob.p.end());
  Vec estimate{};
  v.resize(batch), w.resize(batch);
  for (int b = 0; b < batch; ++b) {
    const int i = pick(rng);
    const double omega = 1.0 / (prob.n() * prob.p[i]);
    for (int k = 0; k < 3; ++k) estimate[k] += omega * prob.g[i][k] / batch;
    v[b] = float(std::sqrt(Problem::sq(prob.g[i])));
    w[b] = float(omega);
  }
  return estimate;
}

TEST(GainRatio, UniformSamplingGivesExactlyOne) {
  GainRatio ratio;
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<float> norm(0, 1.4f);
  std::vector<float> v(128), ones(128, 1.0f);
  for (int step = 0; step < 500; ++step) {
    for (float& x : v) x = norm(rng);
    ASSERT_EQ(ratio.update(128, v.data(), nullptr, 0.01 + 0.001 * step), 1.0) << "step " << step;
    ASSERT_EQ(ratio.update(128, v.data(), ones.data(), 0.02), 1.0) << "step " << step;
  }
  EXPECT_EQ(ratio.clamped(), 0);
}

TEST(GainRatio, EstimatorIsUnbiasedAndSecondMomentFormulaHolds) {
  const Problem prob = make_problem(3);
  const int batch = 4, trials = 400000;
  std::mt19937_64 rng(4);
  std::vector<float> v, w;
  Vec mean{};
  double second = 0;
  for (int t = 0; t < trials; ++t) {
    const Vec g = draw_batch(prob, batch, rng, v, w);
    for (int k = 0; k < 3; ++k) mean[k] += g[k] / trials;
    second += Problem::sq(g) / trials;
  }
  const Vec truth = prob.full_gradient();
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(mean[k], truth[k], 0.02) << "component " << k;
  EXPECT_NEAR(second, prob.second_moment(prob.p, batch), 0.01 * prob.second_moment(prob.p, batch));
}

TEST(GainRatio, IdentityMatchesTheExactRatio) {
  const Problem prob = make_problem(5);
  const int batch = 8;
  const std::vector<double> uniform(prob.n(), 1.0 / prob.n());
  const double exact = prob.second_moment(uniform, batch) / prob.second_moment(prob.p, batch);
  const double identity = 1 + (prob.second_moment(uniform, 1) - prob.second_moment(prob.p, 1)) /
                                  (batch * prob.second_moment(prob.p, batch));
  EXPECT_NEAR(identity, exact, 1e-12);
  EXPECT_GT(exact, 1.1) << "the test problem should reward importance sampling";

  GainRatio ratio({.alpha = 0.0005});
  std::mt19937_64 rng(6);
  std::vector<float> v, w;
  for (int step = 0; step < 40000; ++step) {
    const Vec g = draw_batch(prob, batch, rng, v, w);
    ratio.update(batch, v.data(), w.data(), Problem::sq(g));
  }
  EXPECT_NEAR(ratio.value(), exact, 0.05 * exact);
}

TEST(GainRatio, ClampsAndCounts) {
  GainRatio ratio({.alpha = 1.0, .min = 0.25, .max = 16});
  const float v[2] = {1.0f, 1.0f}, heavy[2] = {100.0f, 100.0f}, light[2] = {0.001f, 0.001f};
  EXPECT_EQ(ratio.update(2, v, light, 1e-9), 16.0);  // m_U1 ≫ m_R1 over a tiny m_R
  EXPECT_EQ(ratio.update(2, v, heavy, 1e-3), 0.25);
  EXPECT_EQ(ratio.clamped(), 2);
  EXPECT_THROW(GainRatio({.alpha = 0}), Error);
}

}  // namespace
}  // namespace raisin::rais
