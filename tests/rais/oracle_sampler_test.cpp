// The oracle sampler: shuffled first epoch, then p ∝ fresh norms mixed with uniform, ω = 1/(n·p), and
// the exact gain ratio of that p; a restored sampler continues exactly; and the engine's proxy_norms
// pass it relies on.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/ops.h"
#include "engine/trainer.h"
#include "models/models.h"
#include "rais/oracle_sampler.h"

namespace raisin::rais {
namespace {

TEST(OracleSampler, SamplesByFreshNormsWithTheExactGainRatio) {
  const int64_t n = 40;
  const int batch = 8;
  std::vector<float> truth(n);
  for (int64_t i = 0; i < n; ++i) truth[i] = i < 4 ? 1.3f : 0.1f;
  const double G = 0.02;
  int calls = 0;
  OracleSampler oracle(n, 3, [&](std::vector<float>& norms) { norms = truth, ++calls; return G; },
                       {.refresh_steps = 2, .uniform_share = 0.1});
  std::vector<int32_t> idx;
  std::vector<float> w;
  for (int64_t step = 0; step < 5; ++step) {  // ⌈40/8⌉ = 5 shuffled steps first
    oracle.draw(step, batch, idx, w);
    EXPECT_TRUE(w.empty());
    EXPECT_EQ(oracle.lr_multiplier(), 1.0);
  }
  EXPECT_EQ(calls, 0);
  oracle.draw(5, batch, idx, w);
  EXPECT_EQ(calls, 1);
  double total = 0, squares = 0, importance = 0;
  for (float v : truth) total += v, squares += double(v) * v;
  for (int64_t i = 0; i < n; ++i) {
    const double p = 0.9 * truth[i] / total + 0.1 / n;
    ASSERT_NEAR(oracle.probabilities()[i], p, 1e-15);
    importance += double(truth[i]) * truth[i] / (double(n) * n * p);
  }
  for (int j = 0; j < batch; ++j) EXPECT_NEAR(w[j], 1.0 / (n * oracle.probabilities()[idx[j]]), 1e-6);
  const double r = (squares / n / batch + (1 - 1.0 / batch) * G) / (importance / batch + (1 - 1.0 / batch) * G);
  EXPECT_NEAR(oracle.lr_multiplier(), r, 1e-12);
  EXPECT_GT(r, 1.5);
  oracle.draw(6, batch, idx, w);
  EXPECT_EQ(calls, 1);
  oracle.draw(7, batch, idx, w);
  EXPECT_EQ(calls, 2) << "refreshed every 2 steps";
}

TEST(OracleSampler, RestoredStateContinuesExactly) {
  constexpr int64_t n = 60;
  const int batch = 6;  // 10 steps per epoch
  // The "model" changes every step: the norms depend on the step at which they are asked for.
  auto make = [&](const int64_t& now) {
    return OracleSampler(n, 4, [&now, n](std::vector<float>& norms) {
      norms.resize(n);
      for (int64_t i = 0; i < n; ++i) norms[i] = float(0.05 + (i * 7 + now) % 11 * 0.1);
      return 0.001 * double(now);
    }, {.refresh_steps = 4, .uniform_share = 0.1});
  };
  auto run = [&](OracleSampler& oracle, int64_t& now, int64_t from, int64_t to, std::vector<double>& log) {
    std::vector<int32_t> idx;
    std::vector<float> w;
    for (now = from; now < to; ++now) {
      oracle.draw(now, batch, idx, w);
      log.insert(log.end(), idx.begin(), idx.end());
      log.insert(log.end(), w.begin(), w.end());
      log.push_back(oracle.lr_multiplier());
    }
  };
  for (int64_t stop : {5, 10, 13, 22}) {
    int64_t now_a = 0, now_b = 0, now_c = 0;
    OracleSampler straight = make(now_a), first = make(now_b), resumed = make(now_c);
    std::vector<double> expected, got;
    run(straight, now_a, 0, 30, expected);
    run(first, now_b, 0, stop, got);
    SamplerState state;
    first.save_state(state);
    resumed.load_state(state);
    run(resumed, now_c, stop, 30, got);
    ASSERT_EQ(got, expected) << "stopped after step " << stop;
    EXPECT_EQ(resumed.refreshes(), straight.refreshes());
  }
}

TEST(OracleSampler, RejectsBadNorms) {
  OracleSampler bad(10, 1, [](std::vector<float>& norms) { norms.assign(10, NAN); return 0.0; });
  std::vector<int32_t> idx;
  std::vector<float> w;
  EXPECT_THROW(bad.draw(5, 2, idx, w), Error);
}

TEST(ProxyNorms, MatchTheLossKernelOnTheWholeSet) {
  const Dataset data = make_synthetic(300, 1, 28, 28, 10, 2);
  const Normalization norm = channel_statistics(data);
  auto model = make_model("mlp", {1, 28, 28, 10}, 1);
  std::vector<float> norms;
  const double G = proxy_norms(*model, data, norm, norms, 128);  // three batches, the last partial
  ASSERT_EQ(norms.size(), 300u);
  std::vector<float> one_pass;
  const double G_all = proxy_norms(*model, data, norm, one_pass, 300);
  for (size_t i = 0; i < norms.size(); ++i) ASSERT_NEAR(norms[i], one_pass[i], 1e-5) << i;
  EXPECT_NEAR(G, G_all, 1e-6 * G_all);
  EXPECT_GT(G, 0);
}

}  // namespace
}  // namespace raisin::rais
