// The oracle sampler: shuffled first epoch, then p ∝ fresh norms mixed with uniform, ω = 1/(n·p), and
// the exact gain ratio of that p; and the engine's proxy_norms pass it relies on.
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
