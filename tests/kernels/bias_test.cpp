// Tests for the CPU bias kernels and the sum reduction (kernels/cpu/bias.cpp) against double-precision
// references: bias add, fused bias + ReLU, the accumulating bias gradient, and reduce_sum.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/cpu/kernels.h"
#include "tests/support/check.h"

namespace {

using raisin::kernels::ImageShape;
using raisin::test::all_close;
using raisin::test::random_floats;

const ImageShape kShapes[] = {{1, 1, 1, 1}, {3, 5, 7, 1}, {2, 4, 9, 11}, {130, 10, 1, 1}};

TEST(Bias, AddAndFusedReluMatchReference) {
  for (const ImageShape& s : kShapes) {
    const auto y0 = random_floats(s.numel(), 1), b = random_floats(s.channels, 2);
    std::vector<double> add(s.numel()), relu(s.numel());
    for (int64_t i = 0; i < s.numel(); ++i) {
      const int c = int((i / s.spatial()) % s.channels);
      add[i] = double(y0[i]) + b[c];
      relu[i] = add[i] > 0 ? add[i] : 0.0;
    }
    auto y = y0;
    raisin::cpu::bias_add_forward(s, b.data(), y.data());
    EXPECT_TRUE(all_close("bias add", y, add, 1e-6, 1e-7));
    y = y0;
    raisin::cpu::bias_relu_forward(s, b.data(), y.data());
    EXPECT_TRUE(all_close("bias relu", y, relu, 1e-6, 1e-7));
  }
}

TEST(Bias, BackwardAccumulatesChannelSums) {
  for (const ImageShape& s : kShapes) {
    const auto dy = random_floats(s.numel(), 3), db0 = random_floats(s.channels, 4);
    std::vector<double> expect(db0.begin(), db0.end());
    for (int64_t i = 0; i < s.numel(); ++i) expect[(i / s.spatial()) % s.channels] += dy[i];
    auto db = db0;
    raisin::cpu::bias_add_backward(s, dy.data(), db.data());
    EXPECT_TRUE(all_close("bias backward", db, expect, 1e-5, 1e-6));
  }
}

TEST(ReduceSum, SumsInDoubleAndHandlesEmpty) {
  const auto x = random_floats(100003, 5);
  double expect = 0;
  for (float v : x) expect += v;
  float out = 123.0f;
  raisin::cpu::reduce_sum(int64_t(x.size()), x.data(), &out);
  EXPECT_NEAR(out, expect, 1e-4);
  raisin::cpu::reduce_sum(0, x.data(), &out);
  EXPECT_EQ(out, 0.0f);
}

}  // namespace
