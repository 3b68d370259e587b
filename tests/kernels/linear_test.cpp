// CPU linear kernels against a double-precision reference: forward values, and backward gradients
// against central finite differences of L = dot(r, reference_forward(x, w, b)), including the
// accumulate-into-gradients contract and null gradient pointers.
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "tests/support/check.h"

namespace {

using raisin::kernels::LinearShape;
namespace rt = raisin::test;

// y[i, o] = Σ_k x[i, k]·w[o, k] + b[o]; b empty means no bias.
std::vector<double> reference_linear(const LinearShape& s, const std::vector<double>& x,
                                     const std::vector<double>& w, const std::vector<double>& b) {
  std::vector<double> y(size_t(s.batch) * s.out_features);
  for (int i = 0; i < s.batch; i++)
    for (int o = 0; o < s.out_features; o++) {
      double sum = b.empty() ? 0.0 : b[o];
      for (int k = 0; k < s.in_features; k++) sum += x[size_t(i) * s.in_features + k] * w[size_t(o) * s.in_features + k];
      y[size_t(i) * s.out_features + o] = sum;
    }
  return y;
}

struct LinearCase {
  LinearShape shape;
  bool bias;
};

std::string case_name(const ::testing::TestParamInfo<LinearCase>& info) {
  const auto& s = info.param.shape;
  std::ostringstream name;  // (not "B" + std::to_string(..): GCC 12 -O3 warns -Wrestrict on that)
  name << "B" << s.batch << "_In" << s.in_features << "_Out" << s.out_features
       << (info.param.bias ? "_bias" : "_nobias");
  return name.str();
}

// Float tolerances for a sum of `terms` products of values in [-1, 1]: about 2 float epsilons per term
// (the observed worst error uses ~10% of this, across all cases here), far below what a wrong index costs.
double atol_for(int terms) { return 2e-7 * (terms + 1); }
constexpr double kRtol = 1e-5;

// Random inputs for one case, seeded from the shape so every case draws different numbers.
struct LinearData {
  LinearShape s;
  std::vector<float> x, w, b, r;  // r: the upstream gradient dy, also the weights of the scalar loss
  explicit LinearData(const LinearCase& c) : s(c.shape) {
    const uint64_t seed = 1000u * s.batch + 100u * s.in_features + s.out_features;
    x = rt::random_floats(size_t(s.batch) * s.in_features, seed + 1);
    w = rt::random_floats(size_t(s.out_features) * s.in_features, seed + 2);
    if (c.bias) b = rt::random_floats(size_t(s.out_features), seed + 3);
    r = rt::random_floats(size_t(s.batch) * s.out_features, seed + 4);
  }
  const float* b_ptr() const { return b.empty() ? nullptr : b.data(); }
};

class LinearCpu : public ::testing::TestWithParam<LinearCase> {};

TEST_P(LinearCpu, ForwardMatchesReference) {
  const LinearData d(GetParam());
  const auto expected = reference_linear(d.s, rt::to_double(d.x), rt::to_double(d.w), rt::to_double(d.b));
  std::vector<float> y(expected.size(), NAN);  // forward must overwrite, whatever y held
  raisin::cpu::linear_forward(d.s, d.x.data(), d.w.data(), d.b_ptr(), y.data());
  EXPECT_TRUE(rt::all_close("y", y, expected, kRtol, atol_for(d.s.in_features)));
}

TEST_P(LinearCpu, BackwardMatchesFiniteDifferences) {
  const LinearData d(GetParam());
  const auto xd = rt::to_double(d.x), wd = rt::to_double(d.w), bd = rt::to_double(d.b), rd = rt::to_double(d.r);
  const auto gx = rt::finite_difference_gradient(
      [&](const std::vector<double>& v) { return rt::dot(rd, reference_linear(d.s, v, wd, bd)); }, xd);
  const auto gw = rt::finite_difference_gradient(
      [&](const std::vector<double>& v) { return rt::dot(rd, reference_linear(d.s, xd, v, bd)); }, wd);
  std::vector<double> gb;
  if (!bd.empty())
    gb = rt::finite_difference_gradient(
        [&](const std::vector<double>& v) { return rt::dot(rd, reference_linear(d.s, xd, wd, v)); }, bd);

  const double atol_x = atol_for(d.s.out_features), atol_w = atol_for(d.s.batch);

  const auto backward = [&](float* dx, float* dw, float* db) {
    raisin::cpu::linear_backward(d.s, d.x.data(), d.w.data(), d.r.data(), dx, dw, db);
  };
  rt::expect_backward_xwb(backward, gx, gw, gb, kRtol, atol_x, atol_w);
}

std::vector<LinearCase> linear_cases() {
  const LinearShape shapes[] = {
      {1, 1, 1}, {1, 7, 3}, {5, 13, 9}, {4, 64, 10}, {3, 17, 1}, {16, 33, 31}, {2, 1, 5}, {7, 100, 11},
  };
  std::vector<LinearCase> cases;
  for (const auto& s : shapes)
    for (bool bias : {false, true}) cases.push_back({s, bias});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Shapes, LinearCpu, ::testing::ValuesIn(linear_cases()), case_name);

// A larger product, forward only: sums long enough for float rounding to show, checked with the same
// tolerance rule.
TEST(LinearCpuLarge, ForwardMatchesReference) {
  const LinearShape s{64, 784, 120};
  const auto x = rt::random_floats(size_t(s.batch) * s.in_features, 5);
  const auto w = rt::random_floats(size_t(s.out_features) * s.in_features, 6);
  const auto b = rt::random_floats(size_t(s.out_features), 7);
  std::vector<float> y(size_t(s.batch) * s.out_features, NAN);
  raisin::cpu::linear_forward(s, x.data(), w.data(), b.data(), y.data());
  EXPECT_TRUE(rt::all_close("y", y, reference_linear(s, rt::to_double(x), rt::to_double(w), rt::to_double(b)),
                            kRtol, atol_for(s.in_features)));
}

}  // namespace
