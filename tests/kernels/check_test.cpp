// The CPU numeric-fault check (kernels/cpu/check.cpp): find_nonfinite reports the first NaN or infinity
// by buffer then element, with its value, into the metrics row it is given, and sets the skip flag;
// all-finite buffers give −1, 0 and no skip.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "tests/support/check.h"

namespace raisin {
namespace {

using kernels::kMetricFaultBuffer;
using kernels::kMetricFaultValue;
using kernels::kStepMetricCount;

struct Result {
  double buffer, value;
  int32_t skip;
};

Result check(const std::vector<std::vector<float>>& buffers) {
  std::vector<kernels::CheckTensor> tensors;
  for (const auto& b : buffers) tensors.push_back({b.data(), int64_t(b.size())});
  std::vector<double> rows(size_t(3 * kStepMetricCount), 7.0);
  const int64_t row = 2;
  int32_t skip = -1;
  cpu::find_nonfinite(tensors.data(), int(tensors.size()), &row, rows.data(), &skip);
  for (int k = 0; k < 2 * kStepMetricCount; ++k) EXPECT_EQ(rows[size_t(k)], 7.0) << "wrote outside its row";
  const double* out = rows.data() + 2 * kStepMetricCount;
  return {out[kMetricFaultBuffer], out[kMetricFaultValue], skip};
}

TEST(FindNonfinite, AllFiniteGivesNoFault) {
  const Result r = check({test::random_floats(1000, 1), {}, {std::numeric_limits<float>::max(), -0.0f}});
  EXPECT_EQ(r.buffer, -1);
  EXPECT_EQ(r.value, 0);
  EXPECT_EQ(r.skip, 0);
  EXPECT_EQ(check({}).skip, 0);
}

TEST(FindNonfinite, FirstByBufferThenElementWithItsValue) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  // Large buffers take the parallel path; the first fault is the lowest index whatever the threads do.
  std::vector<float> big = test::random_floats(300000, 2), bigger = test::random_floats(300000, 3);
  big[250000] = nan;
  big[123457] = -inf;
  bigger[5] = nan;
  Result r = check({test::random_floats(10, 4), big, bigger});
  EXPECT_EQ(r.buffer, 1);
  EXPECT_EQ(r.value, -double(inf));
  EXPECT_EQ(r.skip, 1);
  r = check({{1.0f, 2.0f, nan}, {inf}});
  EXPECT_EQ(r.buffer, 0);
  EXPECT_TRUE(std::isnan(r.value));
  r = check({{1.0f}, {}, {3.0f, inf}});
  EXPECT_EQ(r.buffer, 2);
  EXPECT_EQ(r.value, double(inf));
}

}  // namespace
}  // namespace raisin
