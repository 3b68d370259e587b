// The uniform samplers: shuffled epochs cover every example once per epoch and resume anywhere;
// uniform-iid draws are reproducible and uniform.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "engine/sampler.h"

namespace raisin {
namespace {

TEST(ShuffledSampler, EachEpochIsAPermutationAndBatchesStraddle) {
  const int64_t n = 10;
  ShuffledSampler sampler(n, 3);
  std::vector<int32_t> stream, indices;
  std::vector<float> weights;
  for (int64_t step = 0; step < 5; ++step) {  // 5 batches of 4 = 2 epochs
    sampler.draw(step, 4, indices, weights);
    EXPECT_TRUE(weights.empty());
    stream.insert(stream.end(), indices.begin(), indices.end());
  }
  for (int epoch = 0; epoch < 2; ++epoch) {
    std::vector<int32_t> seen(stream.begin() + epoch * n, stream.begin() + (epoch + 1) * n);
    std::sort(seen.begin(), seen.end());
    for (int i = 0; i < n; ++i) EXPECT_EQ(seen[i], i) << "epoch " << epoch;
  }
  EXPECT_FALSE(std::equal(stream.begin(), stream.begin() + n, stream.begin() + n)) << "reshuffled each epoch";
  ShuffledSampler fresh(n, 3);  // any step can be drawn first: resume needs no replay
  fresh.draw(3, 4, indices, weights);
  EXPECT_TRUE(std::equal(indices.begin(), indices.end(), stream.begin() + 12));
}

TEST(UniformIidSampler, ReproducibleAndUniform) {
  const int64_t n = 7;
  UniformIidSampler a(n, 5), b(n, 5);
  std::vector<int32_t> x, y;
  std::vector<float> w;
  a.draw(11, 64, x, w);
  b.draw(11, 64, y, w);
  EXPECT_EQ(x, y);
  b.draw(12, 64, y, w);
  EXPECT_NE(x, y);
  std::vector<int64_t> counts(n);
  const int draws_per_step = 1000, steps = 700;
  for (int s = 0; s < steps; ++s) {
    a.draw(s, draws_per_step, x, w);
    for (int32_t i : x) ++counts.at(i);
  }
  const double expected = double(draws_per_step) * steps / n;
  double chi2 = 0;
  for (int64_t c : counts) chi2 += (c - expected) * (c - expected) / expected;
  EXPECT_LT(chi2, 35.0) << "chi-square with 6 degrees of freedom (p < 1e-5 above 35)";
}

}  // namespace
}  // namespace raisin
