// Problem PT (RAIS.md §4, properties 10–12 of §7): optimality (H = 1, KKT residuals), agreement with
// SciPy's SLSQP on the original problem (tests/golden/pt_instances.txt, from generate_pt.py), scaling
// and duplication invariances, recovery of c₀ from synthetic data, left-out features, zero residuals,
// warm starts and failure reporting.
#include "rais/pt.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>

#include "tests/support/check.h"

namespace raisin::rais {
namespace {

struct Golden {
  PtData data;
  std::vector<double> c, d;
  double objective = 0;
};

std::vector<double> read_values(std::istringstream& in) {
  std::vector<double> x;
  double t;
  while (in >> t) x.push_back(t);
  return x;
}

std::vector<Golden> load_golden() {
  std::ifstream f(std::string(RAISIN_GOLDEN_DIR) + "/pt_instances.txt");
  std::vector<Golden> all;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream in(line);
    std::string tag;
    in >> tag;
    if (tag == "instance") {
      size_t id, K, m;
      in >> id >> K >> m;
      Golden g;
      g.data.num_features = K;
      std::getline(f, line);
      std::istringstream ia(line.substr(2));
      g.data.a = read_values(ia);
      for (size_t j = 0; j < m; ++j) {
        std::getline(f, line);
        std::istringstream ir(line);
        std::vector<double> r = read_values(ir);
        g.data.features.insert(g.data.features.end(), r.begin(), r.begin() + static_cast<long>(K));
        g.data.v.push_back(r[K]);
        g.data.w.push_back(r[K + 1]);
      }
      all.push_back(std::move(g));
    } else if (tag == "ref_c") {
      all.back().c = read_values(in);
    } else if (tag == "ref_d") {
      all.back().d = read_values(in);
    } else if (tag == "ref_objective") {
      in >> all.back().objective;
    }
  }
  return all;
}

// Random instance: feature 0 constant, the rest sparse and nonnegative, v = |⟨c0, s⟩ + noise|.
PtData random_instance(size_t K, size_t m, uint64_t seed, double noise = 0.3) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> U(0.0, 1.0);
  std::normal_distribution<double> N(0.0, 1.0);
  PtData D;
  D.num_features = K;
  std::vector<double> c0(K);
  for (auto& t : c0) t = U(gen);
  for (size_t j = 0; j < m; ++j) {
    double ch = 0;
    for (size_t k = 0; k < K; ++k) {
      const double s = k == 0 ? 1.0 : (U(gen) < 0.6 ? 0.05 + 2 * U(gen) : 0.0);
      D.features.push_back(s);
      ch += c0[k] * s;
    }
    D.v.push_back(std::fabs(ch + noise * N(gen)));
    D.w.push_back(0.5 + 1.5 * U(gen));
  }
  D.a.assign(K, 0.0);
  for (size_t k = 0; k < K; ++k) D.a[k] = k == 0 ? 300.0 : 100.0 + 200.0 * U(gen);
  return D;
}

PtOptions no_floor() {
  PtOptions o;
  o.floor_fraction = 0;
  return o;
}

void expect_optimal(const PtData& D, const PtResult& r, const std::string& what) {
  ASSERT_TRUE(r.ok) << what << ": " << r.message;
  EXPECT_TRUE(r.converged) << what;
  EXPECT_NEAR(r.H, 1.0, 1e-9) << what;
  double obj = 0;
  for (size_t k = 0; k < D.num_features; ++k) obj += D.a[k] * r.d[k];
  EXPECT_NEAR(r.objective, obj, 1e-12 * std::fabs(obj)) << what;
  const PtKkt kkt = kkt_residual(D, r.c, r.d);
  EXPECT_LT(kkt.max_residual(), 1e-6) << what << ": primal " << kkt.primal << " dual " << kkt.dual
                                       << " complementarity " << kkt.complementarity;
  for (size_t k = 0; k < D.num_features; ++k) {
    EXPECT_GE(r.c[k], 0.0) << what;
    EXPECT_GE(r.d[k], 0.0) << what;
  }
}

// Property 10: agreement with an independent solver (SciPy SLSQP on the original problem).
TEST(Pt, MatchesScipyReference) {
  const std::vector<Golden> all = load_golden();
  ASSERT_EQ(all.size(), 10u) << "tests/golden/pt_instances.txt missing or malformed";
  for (size_t i = 0; i < all.size(); ++i) {
    const Golden& g = all[i];
    const std::string what = "instance " + std::to_string(i);
    const PtResult r = solve_pt(g.data, no_floor());
    expect_optimal(g.data, r, what);
    // The reference is feasible, so our optimum can only be lower; they should agree.
    EXPECT_LE(pt_constraint(g.data, g.c, g.d), 1.0 + 1e-6) << what;
    EXPECT_NEAR(r.objective, g.objective, 1e-4 * g.objective) << what;
  }
}

// Property 10 on larger random instances, up to 8 features.
TEST(Pt, OptimalityOnRandomInstances) {
  for (size_t K : {1u, 2u, 4u, 8u})
    for (uint64_t seed = 1; seed <= 4; ++seed) {
      const PtData D = random_instance(K, 500, seed * 100 + K);
      expect_optimal(D, solve_pt(D, no_floor()), "K=" + std::to_string(K) + " seed " + std::to_string(seed));
    }
}

// Property 11: ṽ → λṽ gives (λc, λ²d).
TEST(Pt, ScalingProxyNorms) {
  const PtData D = random_instance(4, 300, 11);
  const PtResult r = solve_pt(D, no_floor());
  ASSERT_TRUE(r.ok);
  for (double lambda : {0.01, 3.0, 1000.0}) {
    PtData S = D;
    for (auto& t : S.v) t *= lambda;
    const PtResult q = solve_pt(S, no_floor());
    ASSERT_TRUE(q.ok);
    EXPECT_NEAR(q.objective, lambda * lambda * r.objective, 1e-8 * lambda * lambda * r.objective);
    for (size_t k = 0; k < 4; ++k) {
      EXPECT_NEAR(q.c[k], lambda * r.c[k], 1e-6 * lambda * (1 + r.c[k])) << "lambda " << lambda;
      EXPECT_NEAR(q.d[k], lambda * lambda * r.d[k], 1e-6 * lambda * lambda * (r.d[k] + r.objective / D.a[k]))
          << "lambda " << lambda;
    }
  }
}

// Property 11: duplicating a record equals doubling its weight. The constraint averages over |D|,
// so the duplicate (|D| + 1 records) gives the same c and d scaled by |D|/(|D| + 1).
TEST(Pt, DuplicateRecordEqualsDoubleWeight) {
  const PtData D = random_instance(3, 200, 21);
  const size_t K = 3, m = D.num_records();
  for (size_t j : {0u, 57u, 199u}) {
    PtData dup = D, dbl = D;
    dup.features.insert(dup.features.end(), D.features.begin() + static_cast<long>(j * K),
                        D.features.begin() + static_cast<long>((j + 1) * K));
    dup.v.push_back(D.v[j]);
    dup.w.push_back(D.w[j]);
    dbl.w[j] *= 2;
    const PtResult a = solve_pt(dup, no_floor()), b = solve_pt(dbl, no_floor());
    ASSERT_TRUE(a.ok && b.ok);
    const double f = static_cast<double>(m) / static_cast<double>(m + 1);
    EXPECT_NEAR(a.objective, f * b.objective, 1e-8 * b.objective);
    for (size_t k = 0; k < K; ++k) {
      EXPECT_NEAR(a.c[k], b.c[k], 1e-6 * (1 + b.c[k]));
      EXPECT_NEAR(a.d[k], f * b.d[k], 1e-6 * (b.d[k] + b.objective / D.a[k]));
    }
  }
}

// Property 12: v = ⟨c₀, s⟩ + small noise, many records → c ≈ c₀.
TEST(Pt, RecoversCentreFromSyntheticData) {
  const std::vector<double> c0 = {0.2, 0.5, 1.0, 0.0};
  std::mt19937_64 gen(5);
  std::uniform_real_distribution<double> U(0.0, 1.0);
  std::normal_distribution<double> N(0.0, 1.0);
  PtData D;
  D.num_features = 4;
  D.a = {1000, 500, 500, 500};
  for (size_t j = 0; j < 20000; ++j) {
    const double s[4] = {1.0, U(gen) < 0.5 ? 2 * U(gen) : 0.0, U(gen) < 0.5 ? 2 * U(gen) : 0.0, 2 * U(gen)};
    double ch = 0;
    for (size_t k = 0; k < 4; ++k) {
      D.features.push_back(s[k]);
      ch += c0[k] * s[k];
    }
    D.v.push_back(std::max(0.0, ch + 0.01 * N(gen)));
    D.w.push_back(0.5 + U(gen));
  }
  const PtResult r = solve_pt(D, no_floor());
  expect_optimal(D, r, "synthetic");
  for (size_t k = 0; k < 4; ++k) EXPECT_NEAR(r.c[k], c0[k], 0.01) << "feature " << k;
}

// Features zero on every record, or with a_k = 0, are left out with c_k = d_k = 0.
TEST(Pt, LeavesOutEmptyFeatures) {
  PtData D = random_instance(3, 200, 31);
  PtData E;
  E.num_features = 5;
  for (size_t j = 0; j < D.num_records(); ++j) {
    E.features.push_back(D.features[j * 3 + 0]);
    E.features.push_back(0.0);  // zero on every record
    E.features.push_back(D.features[j * 3 + 1]);
    E.features.push_back(1.0);  // a_k = 0 ("never seen" after the first epoch)
    E.features.push_back(D.features[j * 3 + 2]);
  }
  E.v = D.v;
  E.w = D.w;
  E.a = {D.a[0], 50.0, D.a[1], 0.0, D.a[2]};
  const PtResult r = solve_pt(E, no_floor()), q = solve_pt(D, no_floor());
  expect_optimal(E, r, "with empty features");
  ASSERT_TRUE(q.ok);
  EXPECT_EQ(r.active, (std::vector<bool>{true, false, true, false, true}));
  for (size_t k : {1u, 3u}) {
    EXPECT_EQ(r.c[k], 0.0);
    EXPECT_EQ(r.d[k], 0.0);
  }
  EXPECT_NEAR(r.objective, q.objective, 1e-10 * q.objective);
  EXPECT_NEAR(r.c[2], q.c[1], 1e-8 * (1 + q.c[1]));
}

// All residuals can be 0: the set shrinks to a point (objective 0) around the exact centre.
TEST(Pt, ZeroResiduals) {
  PtData D;
  D.num_features = 2;
  D.a = {100, 40};
  for (int j = 0; j < 64; ++j) {
    const double s1 = static_cast<double>(j % 8) * 0.25;
    D.features.insert(D.features.end(), {1.0, s1});
    D.v.push_back(0.5 + 0.25 * s1);
    D.w.push_back(1.0);
  }
  const PtResult r = solve_pt(D, no_floor());
  ASSERT_TRUE(r.ok) << r.message;
  EXPECT_TRUE(r.converged);
  EXPECT_NEAR(r.c[0], 0.5, 1e-9);
  EXPECT_NEAR(r.c[1], 0.25, 1e-9);
  EXPECT_LE(r.objective, 1e-10);
  // Every ṽ zero: c = d = 0.
  PtData Z = D;
  for (auto& t : Z.v) t = 0;
  const PtResult z = solve_pt(Z);
  ASSERT_TRUE(z.ok);
  EXPECT_EQ(z.objective, 0.0);
  EXPECT_EQ(z.c, std::vector<double>(2, 0.0));
}

// A warm start from the previous solution gives the same answer in fewer iterations.
TEST(Pt, WarmStart) {
  const PtData D = random_instance(6, 2000, 41);
  const PtResult cold = solve_pt(D, no_floor());
  expect_optimal(D, cold, "cold");
  PtData D2 = D;  // the next refit: slightly different data
  std::mt19937_64 gen(3);
  std::uniform_real_distribution<double> U(0.95, 1.05);
  for (auto& t : D2.v) t *= U(gen);
  const PtResult cold2 = solve_pt(D2, no_floor());
  const PtResult warm2 = solve_pt(D2, no_floor(), &cold);
  expect_optimal(D2, warm2, "warm");
  EXPECT_NEAR(warm2.objective, cold2.objective, 1e-9 * cold2.objective);
  EXPECT_LT(warm2.iterations, cold2.iterations);
  const PtResult again = solve_pt(D, no_floor(), &cold);
  EXPECT_LE(again.iterations, 2);
  EXPECT_NEAR(again.objective, cold.objective, 1e-12 * cold.objective);
}

// The d_const floor: raised to floor_fraction·(mean ṽ)² and flagged.
TEST(Pt, ConstantFeatureFloor) {
  PtData D = random_instance(3, 300, 51, 0.01);
  const PtResult plain = solve_pt(D, no_floor());
  ASSERT_TRUE(plain.ok);
  double sw = 0, swv = 0;
  for (size_t j = 0; j < D.num_records(); ++j) {
    sw += D.w[j];
    swv += D.w[j] * D.v[j];
  }
  PtOptions o;
  o.floor_fraction = 10 * plain.d[0] / ((swv / sw) * (swv / sw)) + 1e-3;
  const PtResult r = solve_pt(D, o);
  ASSERT_TRUE(r.ok);
  EXPECT_TRUE(r.floor_active);
  EXPECT_NEAR(r.d[0], o.floor_fraction * (swv / sw) * (swv / sw), 1e-12);
  EXPECT_LT(r.H, 1.0);
}

// Bad or non-finite input is reported, never solved.
TEST(Pt, ReportsBadInput) {
  const PtData D = random_instance(3, 50, 61);
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  auto fails = [](const PtData& X, const char* what) {
    const PtResult r = solve_pt(X);
    EXPECT_FALSE(r.ok) << what;
    EXPECT_FALSE(r.message.empty()) << what;
  };
  PtData X = D;
  X.v[3] = nan;
  fails(X, "NaN v");
  X = D;
  X.features[7] = inf;
  fails(X, "inf feature");
  X = D;
  X.w[0] = 0;
  fails(X, "zero weight");
  X = D;
  X.a[1] = nan;
  fails(X, "NaN a");
  X = D;
  X.features[0] = -1;
  fails(X, "negative feature");
  X = D;
  X.w.pop_back();
  fails(X, "sizes");
  X = D;  // a record with v > 0 but no kept feature: no bounded solution
  X.features[0] = X.features[1] = X.features[2] = 0;
  X.v[0] = 1;
  fails(X, "uncovered record");
}

// Solve time for the engine's sizes (|D| = 32·128 = 4096 records).
TEST(Pt, SolveTime) {
  for (size_t K : {4u, 8u, 32u}) {
    const PtData D = random_instance(K, 4096, 71 + K);
    const auto t0 = std::chrono::steady_clock::now();
    const PtResult r = solve_pt(D, no_floor());
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    expect_optimal(D, r, "K=" + std::to_string(K));
    std::cout << "[ PT timing ] |D| = 4096, d = " << K << ": " << ms << " ms, " << r.iterations
              << " iterations\n";
    EXPECT_LT(ms, 2000.0);
  }
}

}  // namespace
}  // namespace raisin::rais
