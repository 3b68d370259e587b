// The RAIS sampler's parallel passes (rais/blocks.h) give the same results bit for bit for any number
// of OpenMP threads: features and their sums, the robust distribution, the alias table and a PT solve,
// on inputs of several blocks.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "rais/alias.h"
#include "rais/distribution.h"
#include "rais/pt.h"

namespace raisin::rais {
namespace {

// Runs `f` with `threads` OpenMP threads (restoring the setting after).
template <typename F>
auto with_threads(int threads, F f) {
  const int before = omp_get_max_threads();
  omp_set_num_threads(threads);
  auto result = f();
  omp_set_num_threads(before);
  return result;
}

// Per-example state of n examples, some never seen, some recent, some stale, a few with bad norms.
struct State {
  std::vector<float> last_norm;
  std::vector<int64_t> last_seen;
  explicit State(int64_t n) : last_norm(size_t(n)), last_seen(size_t(n)) {
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int64_t i = 0; i < n; ++i) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      last_norm[size_t(i)] = i % 1009 == 0 ? -1.0f : float(x % 1000) / 700.0f;
      last_seen[size_t(i)] = i % 97 == 0 ? -1 : int64_t((x >> 20) % 2000);
    }
  }
};

constexpr int64_t kExamples = 50001;  // 7 blocks, the last partial
constexpr int64_t kStep = 1500, kEpoch = 400;

TEST(ParallelPasses, FeaturesDistributionAndAliasTableDoNotDependOnThreads) {
  const State state(kExamples);
  const std::vector<double> c{0.05, 0.9, 0.7, 1.0}, d{0.02, 0.3, 0.5, 0.4};
  struct Out {
    std::vector<float> features;
    std::vector<double> sums, p, prob;
    std::vector<int32_t> alias;
  };
  auto run = [&] {
    Out out;
    out.features.resize(size_t(kExamples) * kFeatureCount);
    compute_features(state.last_norm.data(), state.last_seen.data(), kExamples, kStep, kEpoch, out.features.data());
    out.sums.resize(kFeatureCount);
    feature_sums(state.last_norm.data(), state.last_seen.data(), kExamples, kStep, kEpoch, out.sums.data());
    out.p = robust_distribution(out.features.data(), kExamples, kFeatureCount, c.data(), d.data(), 0.1).p;
    AliasTable table;
    table.build(out.p);
    out.prob = table.probs();
    out.alias = table.aliases();
    return out;
  };
  const Out one = with_threads(1, run), three = with_threads(3, run);
  EXPECT_EQ(one.features, three.features);
  EXPECT_EQ(one.sums, three.sums);
  EXPECT_EQ(one.p, three.p);
  EXPECT_EQ(one.prob, three.prob);
  EXPECT_EQ(one.alias, three.alias);
  // feature_sums is the column sums of the features.
  for (int k = 0; k < kFeatureCount; ++k) {
    double sum = 0;
    for (int64_t i = 0; i < kExamples; ++i) sum += one.features[size_t(i) * kFeatureCount + k];
    EXPECT_NEAR(one.sums[k], sum, 1e-12 * sum) << "feature " << k;
  }
  EXPECT_EQ(one.sums[0], double(kExamples));
}

TEST(ParallelPasses, PtSolveDoesNotDependOnThreads) {
  PtData data;
  data.num_features = 4;
  data.a = {30000, 12000, 9000, 500};
  uint64_t x = 0x2545F4914F6CDD1Dull;
  auto uniform = [&x] {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return double(x >> 11) * 0x1.0p-53;
  };
  for (int j = 0; j < 3000; ++j) {  // 6 blocks of records, the last partial
    const bool recent = uniform() < 0.6, never = !recent && uniform() < 0.1;
    const double norm = 0.1 + uniform();
    data.features.insert(data.features.end(), {1.0, recent ? norm : 0.0, !recent && !never ? norm : 0.0, never ? 1.0 : 0.0});
    data.v.push_back(norm * (0.7 + 0.6 * uniform()));
    data.w.push_back(0.5 + uniform());
  }
  const PtResult one = with_threads(1, [&] { return solve_pt(data); });
  const PtResult three = with_threads(3, [&] { return solve_pt(data); });
  ASSERT_TRUE(one.ok) << one.message;
  EXPECT_EQ(one.c, three.c);
  EXPECT_EQ(one.d, three.d);
  EXPECT_EQ(one.iterations, three.iterations);
}

}  // namespace
}  // namespace raisin::rais
