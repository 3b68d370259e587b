// Tests for Philox4x32-10 (kernels/philox.h): Random123's known-answer vectors, the mapping from
// (seed, stream, index) to key and counter that both backends rely on, and the uniform floats.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

#include "kernels/philox.h"

namespace {

using raisin::kernels::Philox4;
using raisin::kernels::philox4x32;

void expect_words(const Philox4& got, uint32_t w0, uint32_t w1, uint32_t w2, uint32_t w3) {
  EXPECT_EQ(got.v[0], w0);
  EXPECT_EQ(got.v[1], w1);
  EXPECT_EQ(got.v[2], w2);
  EXPECT_EQ(got.v[3], w3);
}

// Random123's kat_vectors for philox4x32 with 10 rounds: counter c0..c3, key k0 k1.
TEST(Philox, KnownAnswers) {
  expect_words(philox4x32(0, 0, 0, 0, 0, 0), 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u);
  expect_words(philox4x32(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu),
               0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu);
  expect_words(philox4x32(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u),
               0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u);
}

// philox_block puts the index in counter words 0–1, the stream in words 2–3 and the seed in the key,
// low halves first.
TEST(Philox, BlockMapsIndexStreamSeedToCounterAndKey) {
  const Philox4 block = raisin::kernels::philox_block(0x299f31d0a4093822ull, 0x0370734413198a2eull,
                                                      0x85a308d3243f6a88ull);
  expect_words(block, 0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u);
}

// Uniform number i is word i % 4 of block i / 4, top 24 bits over 2^24.
TEST(Philox, UniformAtReadsWordOfBlock) {
  const uint64_t seed = 0x299f31d0a4093822ull, stream = 0x0370734413198a2eull;
  for (uint64_t i = 0; i < 12; ++i) {
    const Philox4 block = raisin::kernels::philox_block(seed, stream, i / 4);
    EXPECT_EQ(raisin::kernels::philox_uniform_at(seed, stream, i),
              float(block.v[i % 4] >> 8) / 16777216.0f)
        << "at " << i;
  }
}

TEST(Philox, UniformIsInUnitIntervalWithMeanOneHalf) {
  EXPECT_EQ(raisin::kernels::philox_uniform(0u), 0.0f);
  EXPECT_EQ(raisin::kernels::philox_uniform(0xffffffffu), 1.0f - 1.0f / 16777216.0f);
  const int n = 1 << 20;
  double sum = 0, sum_sq = 0;
  for (int i = 0; i < n; ++i) {
    const float u = raisin::kernels::philox_uniform_at(42, 3, uint64_t(i));
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    sum += u;
    sum_sq += double(u) * u;
  }
  const double mean = sum / n, variance = sum_sq / n - mean * mean;
  // The mean of n uniforms has standard deviation sqrt(1/12 / n) ≈ 2.8e-4; allow 6 of them.
  EXPECT_NEAR(mean, 0.5, 6 * std::sqrt(1.0 / 12 / n));
  EXPECT_NEAR(variance, 1.0 / 12, 1e-3);
}

}  // namespace
