// Tests for the robust distribution (rais/distribution.h, ../shared/RAIS.md §3 and §7 properties 1–5):
// uniformity for equal features, optimality of the closed form against the dual worst case of other
// distributions, the worst-case v on the set's boundary, invariances, monotonicity, edge cases and the
// features computed from per-example state.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "rais/distribution.h"
#include "tests/support/check.h"

namespace {

using raisin::rais::closed_form_worst_case;
using raisin::rais::compute_features;
using raisin::rais::DistributionCase;
using raisin::rais::kFeatureCount;
using raisin::rais::robust_distribution;
using raisin::rais::robust_p;
using raisin::rais::RobustDistribution;
using raisin::rais::worst_case_of;
using raisin::test::random_floats;

struct Instance {
  int64_t n = 0;
  int dim = kFeatureCount;
  std::vector<float> s;  // n × dim, ≥ 0, some zeros
  std::vector<double> c, d;
};

// A random instance: features in [0, 2) with about a quarter zeroed, a constant first feature, and
// c, d in [0, 1) with the first entry of d kept positive so that every d̂_i > 0 unless told otherwise.
Instance random_instance(uint64_t seed, bool constant_feature = true) {
  Instance in;
  in.n = 30 + int64_t(seed % 21);
  const std::vector<float> raw = random_floats(size_t(in.n * in.dim), seed, 0.0f, 2.0f);
  const std::vector<float> mask = random_floats(size_t(in.n * in.dim), seed + 1000, 0.0f, 1.0f);
  in.s.resize(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) in.s[i] = mask[i] < 0.25f ? 0.0f : raw[i];
  if (constant_feature) {
    for (int64_t i = 0; i < in.n; ++i) in.s[size_t(i * in.dim)] = 1.0f;
  }
  const std::vector<float> cd = random_floats(size_t(2 * in.dim), seed + 2000, 0.0f, 1.0f);
  for (int j = 0; j < in.dim; ++j) {
    in.c.push_back(cd[size_t(j)]);
    in.d.push_back(cd[size_t(in.dim + j)]);
  }
  in.d[0] = std::max(in.d[0], 0.05);
  return in;
}

RobustDistribution solve(const Instance& in, double share = 0.0) {
  return robust_distribution(in.s.data(), in.n, in.dim, in.c.data(), in.d.data(), share);
}

double sum(const std::vector<double>& x) { return std::accumulate(x.begin(), x.end(), 0.0); }

std::vector<double> normalised(std::vector<double> x) {
  const double t = sum(x);
  for (double& v : x) v /= t;
  return x;
}

// An independent evaluation of the dual: golden-section search on f(λ) = n·λ + Σ λĉ²/(λp − d̂) in
// t = log(λ − λ0), where f is unimodal.
double golden_worst_case(const std::vector<double>& p, const std::vector<double>& ch, const std::vector<double>& dh) {
  const size_t n = p.size();
  double lambda0 = 0.0, scale = 0.0;
  for (size_t i = 0; i < n; ++i) {
    lambda0 = std::max(lambda0, dh[i] / p[i]);
    scale = std::max(scale, ch[i] * ch[i] / p[i] + dh[i] / p[i]);
  }
  auto f = [&](double t) {
    const double lambda = lambda0 + std::exp(t);
    long double v = (long double)(n)*lambda;
    for (size_t i = 0; i < n; ++i) v += lambda * ch[i] * ch[i] / (lambda * p[i] - dh[i]);
    return double(v);
  };
  double a = std::log(scale) - 60.0, b = std::log(scale) + 20.0;
  const double r = (std::sqrt(5.0) - 1.0) / 2.0;
  double x1 = b - r * (b - a), x2 = a + r * (b - a), f1 = f(x1), f2 = f(x2);
  for (int it = 0; it < 300; ++it) {
    if (f1 < f2) {
      b = x2, x2 = x1, f2 = f1, x1 = b - r * (b - a), f1 = f(x1);
    } else {
      a = x1, x1 = x2, f1 = f2, x2 = a + r * (b - a), f2 = f(x2);
    }
  }
  return std::min(f1, f2);
}

// Σ v²/p.
double objective(const std::vector<double>& v, const std::vector<double>& p) {
  double s = 0.0;
  for (size_t i = 0; i < v.size(); ++i) s += v[i] * v[i] / p[i];
  return s;
}

// Property 1.
TEST(RobustDistribution, EqualFeaturesGiveExactlyUniform) {
  for (const int64_t n : {1, 2, 7, 37, 1000}) {
    for (const uint64_t seed : {1u, 2u, 3u}) {
      Instance in = random_instance(seed);
      const std::vector<float> row(in.s.begin(), in.s.begin() + in.dim);
      in.n = n;
      in.s.clear();
      for (int64_t i = 0; i < n; ++i) in.s.insert(in.s.end(), row.begin(), row.end());
      for (const double share : {0.0, 0.1}) {
        const RobustDistribution out = solve(in, share);
        ASSERT_EQ(int64_t(out.p.size()), n);
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(out.p[size_t(i)], 1.0 / double(n)) << "n " << n << " i " << i;
      }
    }
  }
}

// Property 2: the closed form attains the stated worst case, and every other p tried is worse.
TEST(RobustDistribution, ClosedFormIsTheRobustOptimum) {
  for (uint64_t seed = 10; seed < 40; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const Instance in = random_instance(seed);
    const RobustDistribution out = solve(in);
    ASSERT_EQ(out.kind, DistributionCase::kRobust);
    const double stated = closed_form_worst_case(out.c_hat.data(), out.d_hat.data(), in.n);
    EXPECT_NEAR(out.worst_case, stated, 1e-12 * stated);
    const double dual = worst_case_of(out.p.data(), out.c_hat.data(), out.d_hat.data(), in.n);
    EXPECT_NEAR(dual, stated, 1e-9 * stated);
    EXPECT_NEAR(golden_worst_case(out.p, out.c_hat, out.d_hat), stated, 1e-8 * stated);
    // The primal worst case v = ĉ + k·d̂ attains it.
    std::vector<double> v(size_t(in.n));
    for (size_t i = 0; i < v.size(); ++i) v[i] = out.c_hat[i] + out.k * out.d_hat[i];
    EXPECT_NEAR(objective(v, out.p), stated, 1e-10 * stated);

    // Other distributions: uniform, p ∝ ĉ, and random multiplicative perturbations, small and large.
    std::vector<std::vector<double>> others;
    others.push_back(std::vector<double>(size_t(in.n), 1.0 / double(in.n)));
    others.push_back(normalised(out.c_hat));
    for (const double size : {1e-3, 0.05, 0.5}) {
      for (uint64_t t = 0; t < 4; ++t) {
        const std::vector<float> noise = random_floats(size_t(in.n), seed * 100 + t, -1.0f, 1.0f);
        std::vector<double> q = out.p;
        for (size_t i = 0; i < q.size(); ++i) q[i] *= std::exp(size * noise[i]);
        others.push_back(normalised(q));
      }
    }
    for (size_t o = 0; o < others.size(); ++o) {
      const double wc = worst_case_of(others[o].data(), out.c_hat.data(), out.d_hat.data(), in.n);
      EXPECT_GT(wc, stated * (1.0 + 1e-12)) << "alternative " << o;
      // The two dual solvers agree on arbitrary p too.
      EXPECT_NEAR(wc, golden_worst_case(others[o], out.c_hat, out.d_hat), 1e-8 * wc) << "alternative " << o;
    }
  }
}

// worst_case_of is an upper bound on Σv²/p for any v in the set (weak duality), checked with random
// points on the boundary and an arbitrary p.
TEST(RobustDistribution, WorstCaseOfBoundsEveryFeasiblePoint) {
  for (uint64_t seed = 50; seed < 60; ++seed) {
    const Instance in = random_instance(seed);
    const RobustDistribution out = solve(in);
    const std::vector<float> raw = random_floats(size_t(in.n), seed + 7, 0.1f, 1.0f);
    const std::vector<double> p = normalised(raisin::test::to_double(raw));
    const double wc = worst_case_of(p.data(), out.c_hat.data(), out.d_hat.data(), in.n);
    for (uint64_t t = 0; t < 200; ++t) {
      const std::vector<float> z = random_floats(size_t(in.n), seed * 1000 + t, 0.0f, 1.0f);
      double norm = 0.0;
      for (float x : z) norm += double(x) * double(x);
      std::vector<double> v(size_t(in.n));
      for (size_t i = 0; i < v.size(); ++i) {
        v[i] = out.c_hat[i] + std::sqrt(out.d_hat[i] * double(in.n) / norm) * z[i];
      }
      ASSERT_LE(objective(v, p), wc * (1.0 + 1e-12)) << "seed " << seed << " point " << t;
    }
  }
}

// Property 3: v = ĉ + k·d̂ lies on the boundary (1/n) Σ (v − ĉ)²/d̂ = 1.
TEST(RobustDistribution, WorstCasePointIsOnTheBoundary) {
  for (uint64_t seed = 100; seed < 120; ++seed) {
    const Instance in = random_instance(seed);
    const RobustDistribution out = solve(in);
    double m = 0.0;
    for (int64_t i = 0; i < in.n; ++i) {
      const double v = out.c_hat[size_t(i)] + out.k * out.d_hat[size_t(i)];
      if (out.d_hat[size_t(i)] > 0.0) m += (v - out.c_hat[size_t(i)]) * (v - out.c_hat[size_t(i)]) / out.d_hat[size_t(i)];
    }
    EXPECT_NEAR(m / double(in.n), 1.0, 1e-12) << "seed " << seed;
  }
}

// Property 4: permutation, scaling s by λ with (c, d)/λ, and scaling ṽ by λ with (λc, λ²d).
TEST(RobustDistribution, Invariances) {
  for (uint64_t seed = 200; seed < 210; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const Instance in = random_instance(seed);
    const RobustDistribution base = solve(in);

    // Permutation: a reversal composed with a rotation.
    std::vector<int64_t> perm(size_t(in.n));
    for (int64_t i = 0; i < in.n; ++i) perm[size_t(i)] = (in.n - 1 - i + int64_t(seed)) % in.n;
    Instance permuted = in;
    for (int64_t i = 0; i < in.n; ++i) {
      for (int j = 0; j < in.dim; ++j) {
        permuted.s[size_t(i * in.dim + j)] = in.s[size_t(perm[size_t(i)] * in.dim + j)];
      }
    }
    const RobustDistribution moved = solve(permuted);
    for (int64_t i = 0; i < in.n; ++i) {
      EXPECT_NEAR(moved.p[size_t(i)], base.p[size_t(perm[size_t(i)])], 1e-14);
    }

    // Scaling s by λ, (c, d) by 1/λ. Features are float, so λ not a power of two costs float rounding.
    for (const double lambda : {2.0, 0.125, 3.7}) {
      Instance scaled = in;
      for (float& x : scaled.s) x = float(double(x) * lambda);
      for (double& x : scaled.c) x /= lambda;
      for (double& x : scaled.d) x /= lambda;
      const RobustDistribution out = solve(scaled);
      const double tol = lambda == 3.7 ? 1e-6 : 1e-14;
      for (int64_t i = 0; i < in.n; ++i) {
        EXPECT_NEAR(out.p[size_t(i)], base.p[size_t(i)], tol * base.p[size_t(i)]) << "lambda " << lambda;
      }
    }

    // Scaling the norms by λ: (c, d) → (λc, λ²d); the worst case scales by λ².
    for (const double lambda : {0.01, 3.0, 250.0}) {
      Instance scaled = in;
      for (double& x : scaled.c) x *= lambda;
      for (double& x : scaled.d) x *= lambda * lambda;
      const RobustDistribution out = solve(scaled);
      for (int64_t i = 0; i < in.n; ++i) {
        EXPECT_NEAR(out.p[size_t(i)], base.p[size_t(i)], 1e-12 * base.p[size_t(i)]) << "lambda " << lambda;
      }
      EXPECT_NEAR(out.worst_case, lambda * lambda * base.worst_case, 1e-12 * lambda * lambda * base.worst_case);
    }
  }
}

// Property 5: p_i increases with ĉ_i and with d̂_i when all else is fixed.
TEST(RobustDistribution, MonotoneInCentreAndWidth) {
  for (uint64_t seed = 300; seed < 310; ++seed) {
    const Instance in = random_instance(seed);
    const RobustDistribution base = solve(in);
    const int64_t n = in.n;
    std::vector<double> p(static_cast<size_t>(n));
    RobustDistribution info;
    for (int64_t i = 0; i < n; i += 3) {
      for (const double step : {1e-6, 0.1, 1.0, 10.0}) {
        std::vector<double> ch = base.c_hat, dh = base.d_hat;
        ch[size_t(i)] += step;
        robust_p(ch.data(), dh.data(), n, 0.0, p.data(), info);
        EXPECT_GT(p[size_t(i)], base.p[size_t(i)]) << "seed " << seed << " c_hat " << i << " +" << step;
        ch = base.c_hat;
        dh[size_t(i)] += step;
        robust_p(ch.data(), dh.data(), n, 0.0, p.data(), info);
        EXPECT_GT(p[size_t(i)], base.p[size_t(i)]) << "seed " << seed << " d_hat " << i << " +" << step;
      }
    }
    // Also from zero width and zero centre.
    std::vector<double> ch = base.c_hat, dh = base.d_hat;
    ch[0] = 0.0;
    dh[0] = 0.0;
    robust_p(ch.data(), dh.data(), n, 0.0, p.data(), info);
    const double p0 = p[0];
    EXPECT_EQ(p0, 0.0);
    dh[0] = 1e-3;
    robust_p(ch.data(), dh.data(), n, 0.0, p.data(), info);
    EXPECT_GT(p[0], p0);
  }
}

TEST(RobustDistribution, EdgeCases) {
  // Σd̂ = 0: p ∝ ĉ, worst case (Σĉ)².
  {
    const std::vector<double> ch = {1.0, 3.0, 0.0, 4.0}, dh = {0.0, 0.0, 0.0, 0.0};
    std::vector<double> p(4);
    RobustDistribution info;
    robust_p(ch.data(), dh.data(), 4, 0.0, p.data(), info);
    EXPECT_EQ(info.kind, DistributionCase::kCentreOnly);
    EXPECT_EQ(info.k, 0.0);
    EXPECT_DOUBLE_EQ(info.worst_case, 64.0);
    const std::vector<double> expected = {0.125, 0.375, 0.0, 0.5};
    for (size_t i = 0; i < 4; ++i) EXPECT_DOUBLE_EQ(p[i], expected[i]);
    // The dual agrees: with d̂ = 0, v = ĉ exactly and the worst case is Σĉ²/p = (Σĉ)².
    EXPECT_NEAR(worst_case_of(p.data(), ch.data(), dh.data(), 4), 64.0, 1e-12);
    // With the uniform share.
    robust_p(ch.data(), dh.data(), 4, 0.2, p.data(), info);
    for (size_t i = 0; i < 4; ++i) EXPECT_DOUBLE_EQ(p[i], 0.8 * expected[i] + 0.05);
    EXPECT_EQ(info.uniform_share, 0.2);
  }
  // Everything zero: uniform, worst case 0.
  {
    const std::vector<double> zero(5, 0.0);
    std::vector<double> p(5);
    RobustDistribution info;
    robust_p(zero.data(), zero.data(), 5, 0.0, p.data(), info);
    EXPECT_EQ(info.kind, DistributionCase::kUniform);
    EXPECT_EQ(info.worst_case, 0.0);
    for (double x : p) EXPECT_EQ(x, 0.2);
    EXPECT_EQ(worst_case_of(p.data(), zero.data(), zero.data(), 5), 0.0);
  }
  // ĉ = 0, d̂ > 0: p ∝ d̂, worst case n·Σd̂.
  {
    const std::vector<double> ch(3, 0.0), dh = {1.0, 2.0, 5.0};
    std::vector<double> p(3);
    RobustDistribution info;
    robust_p(ch.data(), dh.data(), 3, 0.0, p.data(), info);
    EXPECT_EQ(info.kind, DistributionCase::kRobust);
    EXPECT_DOUBLE_EQ(p[2], 0.625);
    EXPECT_DOUBLE_EQ(info.worst_case, 24.0);
    EXPECT_NEAR(worst_case_of(p.data(), ch.data(), dh.data(), 3), 24.0, 1e-12);
  }
  // Mixing sums to one, keeps every p_i ≥ u/n and only raises the worst case.
  {
    const Instance in = random_instance(77);
    const RobustDistribution plain = solve(in), mixed = solve(in, 0.1);
    EXPECT_NEAR(sum(mixed.p), 1.0, 1e-14);
    for (int64_t i = 0; i < in.n; ++i) {
      EXPECT_NEAR(mixed.p[size_t(i)], 0.9 * plain.p[size_t(i)] + 0.1 / double(in.n), 1e-16);
      EXPECT_GE(mixed.p[size_t(i)], 0.1 / double(in.n) * (1 - 1e-15));
    }
    EXPECT_GT(worst_case_of(mixed.p.data(), mixed.c_hat.data(), mixed.d_hat.data(), in.n), plain.worst_case);
  }
  // A zero p_i where the set allows a nonzero v_i: infinite worst case. A zero p_i with ĉ_i = d̂_i = 0 is fine.
  {
    const std::vector<double> ch = {1.0, 1.0, 0.0}, dh = {1.0, 0.0, 0.0};
    const std::vector<double> p_bad = {0.0, 1.0, 0.0}, p_ok = {0.5, 0.5, 0.0};
    EXPECT_EQ(worst_case_of(p_bad.data(), ch.data(), dh.data(), 3), std::numeric_limits<double>::infinity());
    EXPECT_TRUE(std::isfinite(worst_case_of(p_ok.data(), ch.data(), dh.data(), 3)));
  }
  // n = 1: p = 1, and the dual gives (ĉ + sqrt(d̂))² = (2.5 + 1)².
  {
    const std::vector<float> s = {1.0f, 2.0f};
    const std::vector<double> c = {0.5, 1.0}, d = {1.0, 0.0};
    const RobustDistribution out = robust_distribution(s.data(), 1, 2, c.data(), d.data());
    ASSERT_EQ(out.p.size(), 1u);
    EXPECT_EQ(out.p[0], 1.0);
    EXPECT_DOUBLE_EQ(out.worst_case, 12.25);
    EXPECT_NEAR(worst_case_of(out.p.data(), out.c_hat.data(), out.d_hat.data(), 1), 12.25, 1e-12);
  }
  // A constant feature with c or d positive keeps every p_i > 0.
  {
    const Instance in = random_instance(91);
    const RobustDistribution out = solve(in);
    for (double x : out.p) EXPECT_GT(x, 0.0);
  }
  // Bad inputs.
  {
    const std::vector<float> s = {1.0f, 1.0f};
    const std::vector<double> good = {1.0}, negative = {-1.0}, nan = {std::nan("")};
    EXPECT_THROW(robust_distribution(s.data(), 2, 1, negative.data(), good.data()), std::invalid_argument);
    EXPECT_THROW(robust_distribution(s.data(), 2, 1, good.data(), nan.data()), std::invalid_argument);
    EXPECT_THROW(robust_distribution(s.data(), 2, 1, good.data(), good.data(), 1.5), std::invalid_argument);
    const std::vector<float> bad_s = {1.0f, -1.0f};
    EXPECT_THROW(robust_distribution(bad_s.data(), 2, 1, good.data(), good.data()), std::invalid_argument);
  }
}

// The buffer-reusing overload gives the same result as the allocating one.
TEST(RobustDistribution, ReusesBuffers) {
  RobustDistribution out;
  for (uint64_t seed : {400u, 401u, 402u}) {
    const Instance in = random_instance(seed);
    robust_distribution(in.s.data(), in.n, in.dim, in.c.data(), in.d.data(), 0.05, out);
    const RobustDistribution fresh = solve(in, 0.05);
    ASSERT_EQ(out.p, fresh.p);
    ASSERT_EQ(out.c_hat, fresh.c_hat);
  }
}

TEST(RobustFeatures, FromState) {
  EXPECT_EQ(raisin::rais::steps_per_epoch(60000, 128), 469);
  EXPECT_EQ(raisin::rais::steps_per_epoch(128, 128), 1);
  EXPECT_EQ(raisin::rais::steps_per_epoch(129, 128), 2);
  EXPECT_THROW(raisin::rais::steps_per_epoch(10, 0), std::invalid_argument);

  const int64_t step = 1000, epoch = 469;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // never seen; seen now; seen epoch−1 steps ago (recent); seen exactly an epoch ago (stale); long ago;
  // negative and NaN norms.
  const std::vector<float> norm = {0.7f, 1.5f, 2.5f, 3.5f, 4.5f, -1.0f, nan};
  const std::vector<int64_t> seen = {-1, step, step - epoch + 1, step - epoch, 3, step - 1, 2};
  std::vector<float> f(norm.size() * kFeatureCount, -9.0f);
  compute_features(norm.data(), seen.data(), int64_t(norm.size()), step, epoch, f.data());
  const std::vector<std::vector<float>> expected = {
      {1, 0, 0, 1}, {1, 1.5f, 0, 0}, {1, 2.5f, 0, 0}, {1, 0, 3.5f, 0}, {1, 0, 4.5f, 0}, {1, 0, 0, 0}, {1, 0, 0, 0},
  };
  for (size_t i = 0; i < expected.size(); ++i) {
    for (int j = 0; j < kFeatureCount; ++j) {
      EXPECT_EQ(f[i * kFeatureCount + size_t(j)], expected[i][size_t(j)]) << "example " << i << " feature " << j;
    }
  }

  // At the first step nothing has been seen: with any c, d the features are equal, so p is uniform.
  const int64_t n = 50;
  std::vector<float> norms(n, 0.0f), feats(size_t(n) * kFeatureCount);
  std::vector<int64_t> never(n, -1);
  compute_features(norms.data(), never.data(), n, 0, 1, feats.data());
  const std::vector<double> c = {0.3, 0.2, 0.1, 0.9}, d = {0.1, 0.4, 0.2, 0.7};
  const RobustDistribution out = robust_distribution(feats.data(), n, kFeatureCount, c.data(), d.data());
  for (double x : out.p) EXPECT_EQ(x, 1.0 / double(n));
}

}  // namespace
