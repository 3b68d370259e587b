// The alias-table draw kernels against the reference: for the same table (rais::AliasTable's prob and
// alias), cpu::alias_draw (kernels/cpu/alias.cpp, which the CUDA parity test holds the GPU to) returns the
// same items as rais::AliasTable::draw_batch, so a sampler may draw on either side.
#include <gtest/gtest.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "rais/alias.h"
#include "tests/support/check.h"

namespace {

TEST(AliasKernelDraws, EqualTheReferenceTablesDraws) {
  for (size_t n : {1, 3, 1000, 123457}) {
    const std::vector<float> u = raisin::test::random_floats(n, n, 0.0f, 1.0f);
    std::vector<double> weights(u.begin(), u.end());
    for (size_t i = 0; i < n; i += 4) weights[i] *= 1e-6;  // skewed
    if (n > 2) weights[1] = 0.0;
    raisin::rais::AliasTable table;
    table.build(weights);
    // Seeds and steps with both 32-bit halves set, so that dropping a high word is caught.
    for (const auto& [seed, step] : {std::pair<uint64_t, uint64_t>{0x0123456789abcdefull, 0xfedcba9876543210ull},
                                     std::pair<uint64_t, uint64_t>{1, 7}}) {
      SCOPED_TRACE(::testing::Message() << "n " << n << " seed " << seed << " step " << step);
      constexpr int kBatch = 4097;
      std::vector<int32_t> expected(kBatch), actual(kBatch, -1);
      table.draw_batch(seed, step, kBatch, expected.data());
      const int64_t step_in_memory = int64_t(step);
      raisin::cpu::alias_draw(int64_t(n), table.probs().data(), table.aliases().data(), seed, &step_in_memory,
                              kBatch, actual.data());
      EXPECT_EQ(actual, expected);
    }
  }
}

}  // namespace
