// CPU conv2d kernels against a double-precision direct convolution: forward values over many shapes
// (odd sizes, batch 1, strides, padding, non-square and 1x1 kernels, with and without bias), and
// backward gradients against central finite differences of L = dot(r, reference_forward(x, w, b)),
// including the accumulate-into-gradients contract, null gradient pointers and a workspace whose
// prior contents must not matter.
#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "tests/support/check.h"

namespace {

using raisin::kernels::Conv2dShape;
namespace rt = raisin::test;

// Direct cross-correlation with zero padding; b empty means no bias.
std::vector<double> reference_conv2d(const Conv2dShape& s, const std::vector<double>& x,
                                     const std::vector<double>& w, const std::vector<double>& b) {
  const int OH = s.out_h(), OW = s.out_w();
  std::vector<double> y(size_t(s.batch) * s.out_channels * OH * OW);
  for (int n = 0; n < s.batch; n++)
    for (int co = 0; co < s.out_channels; co++)
      for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++) {
          double sum = b.empty() ? 0.0 : b[co];
          for (int ci = 0; ci < s.in_channels; ci++)
            for (int i = 0; i < s.kernel_h; i++)
              for (int j = 0; j < s.kernel_w; j++) {
                const int ih = oh * s.stride_h - s.pad_h + i, iw = ow * s.stride_w - s.pad_w + j;
                if (ih < 0 || ih >= s.in_h || iw < 0 || iw >= s.in_w) continue;
                sum += x[((size_t(n) * s.in_channels + ci) * s.in_h + ih) * s.in_w + iw] *
                       w[((size_t(co) * s.in_channels + ci) * s.kernel_h + i) * s.kernel_w + j];
              }
          y[((size_t(n) * s.out_channels + co) * OH + oh) * OW + ow] = sum;
        }
  return y;
}

struct ConvCase {
  Conv2dShape shape;
  bool bias;
};

std::string case_name(const ::testing::TestParamInfo<ConvCase>& info) {
  const auto& s = info.param.shape;
  std::ostringstream name;  // (not "B" + std::to_string(..): GCC 12 -O3 warns -Wrestrict on that)
  name << "B" << s.batch << "_C" << s.in_channels << "x" << s.in_h << "x" << s.in_w << "_O" << s.out_channels
       << "_k" << s.kernel_h << "x" << s.kernel_w << "_s" << s.stride_h << "x" << s.stride_w << "_p" << s.pad_h
       << "x" << s.pad_w << (info.param.bias ? "_bias" : "_nobias");
  return name.str();
}

// Float tolerances for a sum of `terms` products of values in [-1, 1]: about 2 float epsilons per term
// (the observed worst error uses ~10% of this, across all cases here), far below what a wrong index costs.
double atol_for(int64_t terms) { return 2e-7 * double(terms + 1); }
constexpr double kRtol = 1e-5;

struct ConvData {
  Conv2dShape s;
  std::vector<float> x, w, b, r;  // r: the upstream gradient dy, also the weights of the scalar loss
  std::vector<float> workspace;
  explicit ConvData(const ConvCase& c) : s(c.shape) {
    const uint64_t seed = 7919u * s.batch + 104729u * s.in_channels + 31u * s.in_h + 17u * s.in_w +
                          1009u * s.out_channels + 13u * s.kernel_h + 7u * s.kernel_w + 3u * s.stride_h +
                          5u * s.stride_w + 11u * s.pad_h + 19u * s.pad_w;
    x = rt::random_floats(size_t(s.batch) * s.in_channels * s.in_h * s.in_w, seed + 1);
    w = rt::random_floats(size_t(s.out_channels) * s.in_channels * s.kernel_h * s.kernel_w, seed + 2);
    if (c.bias) b = rt::random_floats(size_t(s.out_channels), seed + 3);
    r = rt::random_floats(size_t(s.batch) * s.out_channels * s.out_h() * s.out_w(), seed + 4);
    // Garbage in the workspace: the kernels must not depend on what it held.
    workspace.assign(size_t(raisin::cpu::conv2d_workspace_floats(s)), NAN);
  }
  const float* b_ptr() const { return b.empty() ? nullptr : b.data(); }
  float* ws() { return workspace.empty() ? nullptr : workspace.data(); }
  // Reduction lengths of the forward output, dx, and dw/db.
  int64_t forward_terms() const { return int64_t(s.in_channels) * s.kernel_h * s.kernel_w; }
  int64_t dx_terms() const { return int64_t(s.out_channels) * s.kernel_h * s.kernel_w; }
  int64_t dw_terms() const { return int64_t(s.batch) * s.out_h() * s.out_w(); }
};

class Conv2dCpu : public ::testing::TestWithParam<ConvCase> {};

TEST_P(Conv2dCpu, ForwardMatchesReference) {
  ConvData d(GetParam());
  const auto expected = reference_conv2d(d.s, rt::to_double(d.x), rt::to_double(d.w), rt::to_double(d.b));
  std::vector<float> y(expected.size(), NAN);  // forward must overwrite, whatever y held
  raisin::cpu::conv2d_forward(d.s, d.x.data(), d.w.data(), d.b_ptr(), y.data(), d.ws());
  EXPECT_TRUE(rt::all_close("y", y, expected, kRtol, atol_for(d.forward_terms())));
}

TEST_P(Conv2dCpu, BackwardMatchesFiniteDifferences) {
  ConvData d(GetParam());
  const auto xd = rt::to_double(d.x), wd = rt::to_double(d.w), bd = rt::to_double(d.b), rd = rt::to_double(d.r);
  const auto gx = rt::finite_difference_gradient(
      [&](const std::vector<double>& v) { return rt::dot(rd, reference_conv2d(d.s, v, wd, bd)); }, xd);
  const auto gw = rt::finite_difference_gradient(
      [&](const std::vector<double>& v) { return rt::dot(rd, reference_conv2d(d.s, xd, v, bd)); }, wd);
  std::vector<double> gb;
  if (!bd.empty())
    gb = rt::finite_difference_gradient(
        [&](const std::vector<double>& v) { return rt::dot(rd, reference_conv2d(d.s, xd, wd, v)); }, bd);

  const double atol_x = atol_for(d.dx_terms()), atol_w = atol_for(d.dw_terms());
  auto backward = [&](float* dx, float* dw, float* db) {
    raisin::cpu::conv2d_backward(d.s, d.x.data(), d.w.data(), d.r.data(), dx, dw, db, d.ws());
  };

  // From zero: the gradients themselves.
  {
    std::vector<float> dx(d.x.size(), 0.0f), dw(d.w.size(), 0.0f), db(d.b.size(), 0.0f);
    backward(dx.data(), dw.data(), db.empty() ? nullptr : db.data());
    EXPECT_TRUE(rt::all_close("dx", dx, gx, kRtol, atol_x));
    EXPECT_TRUE(rt::all_close("dw", dw, gw, kRtol, atol_w));
    if (!gb.empty()) {
      EXPECT_TRUE(rt::all_close("db", db, gb, kRtol, atol_w));
    }
  }

  // Pre-filled buffers: backward adds to them.
  {
    auto dx = rt::random_floats(d.x.size(), 71), dw = rt::random_floats(d.w.size(), 72),
         db = rt::random_floats(d.b.size(), 73);
    auto ex = rt::to_double(dx), ew = rt::to_double(dw), eb = rt::to_double(db);
    for (size_t i = 0; i < ex.size(); i++) ex[i] += gx[i];
    for (size_t i = 0; i < ew.size(); i++) ew[i] += gw[i];
    for (size_t i = 0; i < eb.size(); i++) eb[i] += gb[i];
    backward(dx.data(), dw.data(), db.empty() ? nullptr : db.data());
    EXPECT_TRUE(rt::all_close("dx accumulated", dx, ex, kRtol, atol_x));
    EXPECT_TRUE(rt::all_close("dw accumulated", dw, ew, kRtol, atol_w));
    if (!gb.empty()) {
      EXPECT_TRUE(rt::all_close("db accumulated", db, eb, kRtol, atol_w));
    }
  }

  // Null pointers: each gradient alone, then none at all.
  {
    std::vector<float> dx(d.x.size(), 0.0f);
    backward(dx.data(), nullptr, nullptr);
    EXPECT_TRUE(rt::all_close("dx alone", dx, gx, kRtol, atol_x));
    std::vector<float> dw(d.w.size(), 0.0f);
    backward(nullptr, dw.data(), nullptr);
    EXPECT_TRUE(rt::all_close("dw alone", dw, gw, kRtol, atol_w));
    if (!gb.empty()) {
      std::vector<float> db(d.b.size(), 0.0f);
      backward(nullptr, nullptr, db.data());
      EXPECT_TRUE(rt::all_close("db alone", db, gb, kRtol, atol_w));
    }
    backward(nullptr, nullptr, nullptr);
  }
}

std::vector<ConvCase> conv_cases() {
  // {batch, in_channels, in_h, in_w, out_channels, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w}
  const Conv2dShape shapes[] = {
      {1, 1, 5, 5, 1, 3, 3, 1, 1, 0, 0},  // smallest: one channel, valid
      {2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1},  // odd, non-square input, "same" padding
      {2, 2, 9, 8, 3, 3, 2, 2, 2, 1, 0},  // stride 2, non-square kernel, padding on one axis
      {2, 2, 6, 7, 3, 2, 3, 1, 2, 0, 1},  // different strides per axis
      {3, 4, 5, 5, 5, 1, 1, 1, 1, 0, 0},  // pointwise 1x1 (no im2col)
      {2, 4, 7, 7, 3, 1, 1, 2, 2, 0, 0},  // 1x1 stride 2 (ResNet shortcut)
      {2, 3, 5, 6, 2, 1, 1, 1, 2, 0, 0},  // 1x1 strided along w only
      {2, 2, 4, 5, 3, 1, 1, 1, 1, 1, 1},  // 1x1 with padding
      {1, 3, 8, 8, 2, 5, 5, 1, 1, 2, 2},  // LeNet-like 5x5 pad 2, batch 1
      {1, 2, 4, 4, 3, 4, 4, 1, 1, 0, 0},  // kernel covers the input: 1x1 output
      {2, 3, 5, 5, 2, 3, 3, 3, 3, 1, 1},  // stride 3: some input pixels feed no output
      {2, 3, 3, 3, 2, 3, 3, 2, 2, 2, 2},  // padding ≥ half the kernel: outputs that see only padding
  };
  std::vector<ConvCase> cases;
  for (const auto& s : shapes)
    for (bool bias : {false, true}) cases.push_back({s, bias});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Shapes, Conv2dCpu, ::testing::ValuesIn(conv_cases()), case_name);

// A ResNet-sized layer, forward only: long sums and a realistic batch, same tolerance rule.
TEST(Conv2dCpuLarge, ForwardMatchesReference) {
  ConvData d({{4, 16, 16, 16, 32, 3, 3, 2, 2, 1, 1}, true});
  const auto expected = reference_conv2d(d.s, rt::to_double(d.x), rt::to_double(d.w), rt::to_double(d.b));
  std::vector<float> y(expected.size(), NAN);
  raisin::cpu::conv2d_forward(d.s, d.x.data(), d.w.data(), d.b_ptr(), y.data(), d.ws());
  EXPECT_TRUE(rt::all_close("y", y, expected, kRtol, atol_for(d.forward_terms())));
}

// The workspace size covers one im2col matrix, and is zero when no lowering is needed.
TEST(Conv2dCpuWorkspace, Size) {
  EXPECT_EQ(raisin::cpu::conv2d_workspace_floats({2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1}), 3 * 3 * 3 * 7 * 6);
  EXPECT_EQ(raisin::cpu::conv2d_workspace_floats({2, 4, 7, 7, 3, 1, 1, 2, 2, 0, 0}), 4 * 4 * 4);
  EXPECT_EQ(raisin::cpu::conv2d_workspace_floats({3, 4, 5, 5, 5, 1, 1, 1, 1, 0, 0}), 0);
}

}  // namespace
