// CPU conv2d kernels against a double-precision direct convolution: forward values over many shapes
// (odd sizes, batch 1, strides, padding, non-square and 1x1 kernels, with and without bias), and
// backward gradients against central finite differences of L = dot(r, reference_forward(x, w, b)),
// including the accumulate-into-gradients contract, null gradient pointers and a workspace whose
// prior contents must not matter. Every check runs once per way the kernels can compute (for_each_isa):
// the im2col + GEMM way, and the direct SIMD kernels with AVX2 and with AVX-512 where the CPU has them.
// The split of the batch over threads is covered too: batches that are not a multiple of the thread
// count, batch 1 and large batches against a double reference of the backward pass, and every sample
// computed as if it were alone in its batch.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cpu/conv2d_direct.h"
#include "kernels/cpu/kernels.h"
#include "tests/support/check.h"

namespace {

using raisin::kernels::Conv2dShape;
namespace rt = raisin::test;
namespace direct = raisin::cpu::conv2d_direct;

// Runs check() once per instruction set the direct kernels can use on this CPU, plus once with none
// (the im2col + GEMM way for every shape), with the limit set and a trace naming it.
template <class Check>
void for_each_isa(Check check) {
  for (direct::Isa isa : {direct::Isa::none, direct::Isa::avx2, direct::Isa::avx512}) {
    if (isa > direct::detected_isa()) continue;
    SCOPED_TRACE(isa == direct::Isa::none ? "im2col + GEMM" : isa == direct::Isa::avx2 ? "AVX2" : "AVX-512");
    direct::set_isa_limit(isa);
    check();
  }
  direct::set_isa_limit(direct::Isa::avx512);  // no limit
}

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

// The exact gradients of L = Σ r·reference_conv2d(x, w, b), accumulated in double.
struct ReferenceGrads {
  std::vector<double> dx, dw, db;
};
ReferenceGrads reference_conv2d_backward(const Conv2dShape& s, const std::vector<double>& x,
                                         const std::vector<double>& w, const std::vector<double>& r) {
  const int OH = s.out_h(), OW = s.out_w();
  ReferenceGrads g{std::vector<double>(x.size()), std::vector<double>(w.size()),
                   std::vector<double>(size_t(s.out_channels))};
  for (int n = 0; n < s.batch; n++)
    for (int co = 0; co < s.out_channels; co++)
      for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++) {
          const double ry = r[((size_t(n) * s.out_channels + co) * OH + oh) * OW + ow];
          g.db[co] += ry;
          for (int ci = 0; ci < s.in_channels; ci++)
            for (int i = 0; i < s.kernel_h; i++)
              for (int j = 0; j < s.kernel_w; j++) {
                const int ih = oh * s.stride_h - s.pad_h + i, iw = ow * s.stride_w - s.pad_w + j;
                if (ih < 0 || ih >= s.in_h || iw < 0 || iw >= s.in_w) continue;
                const size_t xi = ((size_t(n) * s.in_channels + ci) * s.in_h + ih) * s.in_w + iw;
                const size_t wi = ((size_t(co) * s.in_channels + ci) * s.kernel_h + i) * s.kernel_w + j;
                g.dx[xi] += ry * w[wi];
                g.dw[wi] += ry * x[xi];
              }
        }
  return g;
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
  for_each_isa([&] {
    std::vector<float> y(expected.size(), NAN);  // forward must overwrite, whatever y held
    raisin::cpu::conv2d_forward(d.s, d.x.data(), d.w.data(), d.b_ptr(), y.data(), d.ws());
    EXPECT_TRUE(rt::all_close("y", y, expected, kRtol, atol_for(d.forward_terms())));
  });
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

  for_each_isa([&] { rt::expect_backward_xwb(backward, gx, gw, gb, kRtol, atol_x, atol_w); });
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
      // stride 1 with padding below the kernel: the direct kernels, when the CPU has them
      {3, 16, 5, 6, 3, 3, 3, 1, 1, 1, 1},  // odd batch, 16 channels (direct dw), 3 outputs (blocks 2 + 1)
      {1, 16, 4, 5, 2, 3, 2, 1, 1, 0, 1},  // batch 1, non-square kernel, padding on one axis
      {2, 16, 4, 4, 2, 3, 3, 1, 1, 2, 2},  // pad = kernel − 1: the flipped convolution has no padding
      {2, 8, 5, 7, 9, 3, 5, 1, 1, 1, 2},   // 8 channels (direct dw with AVX2 only), 9 outputs, 15 taps
      {1, 1, 9, 9, 2, 7, 7, 1, 1, 3, 3},   // 7x7 kernel
      // the im2col + GEMM way whatever the CPU
      {2, 16, 3, 3, 2, 2, 2, 1, 1, 2, 2},  // pad ≥ kernel
      {3, 16, 6, 5, 2, 3, 3, 2, 1, 1, 1},  // stride 2 along h only
      {2, 16, 7, 8, 3, 3, 3, 3, 3, 1, 1},  // stride 3
      {2, 16, 7, 7, 3, 2, 2, 3, 3, 0, 0},  // kernel < stride: pixels no window reads
      {2, 16, 3, 3, 2, 2, 2, 2, 2, 2, 2},  // pad ≥ kernel with stride 2
      {5, 17, 3, 3, 2, 1, 1, 1, 1, 0, 0},  // pointwise, batch 5
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

// Large batches (more samples than threads, not a multiple of any small thread count), forward and
// backward against the double reference, every way: direct, im2col + GEMM (stride 2), pointwise. The
// pre-filled gradients check the accumulation once more.
class Conv2dCpuLargeBatch : public ::testing::TestWithParam<ConvCase> {};

TEST_P(Conv2dCpuLargeBatch, ForwardAndBackwardMatchReference) {
  ConvData d(GetParam());
  const auto xd = rt::to_double(d.x), wd = rt::to_double(d.w);
  const auto expected = reference_conv2d(d.s, xd, wd, rt::to_double(d.b));
  const auto g = reference_conv2d_backward(d.s, xd, wd, rt::to_double(d.r));
  for_each_isa([&] {
    std::vector<float> y(expected.size(), NAN);
    raisin::cpu::conv2d_forward(d.s, d.x.data(), d.w.data(), d.b_ptr(), y.data(), d.ws());
    EXPECT_TRUE(rt::all_close("y", y, expected, kRtol, atol_for(d.forward_terms())));

    auto dx = rt::random_floats(d.x.size(), 81), dw = rt::random_floats(d.w.size(), 82),
         db = rt::random_floats(size_t(d.s.out_channels), 83);
    auto ex = rt::to_double(dx), ew = rt::to_double(dw), eb = rt::to_double(db);
    for (size_t i = 0; i < ex.size(); i++) ex[i] += g.dx[i];
    for (size_t i = 0; i < ew.size(); i++) ew[i] += g.dw[i];
    for (size_t i = 0; i < eb.size(); i++) eb[i] += g.db[i];
    raisin::cpu::conv2d_backward(d.s, d.x.data(), d.w.data(), d.r.data(), dx.data(), dw.data(), db.data(),
                                 d.ws());
    EXPECT_TRUE(rt::all_close("dx", dx, ex, kRtol, atol_for(d.dx_terms())));
    EXPECT_TRUE(rt::all_close("dw", dw, ew, kRtol, atol_for(d.dw_terms())));
    EXPECT_TRUE(rt::all_close("db", db, eb, kRtol, atol_for(d.dw_terms())));
  });
}

std::vector<ConvCase> large_batch_cases() {
  return {
      {{37, 16, 8, 8, 8, 3, 3, 1, 1, 1, 1}, true},    // ResNet-like
      {{37, 6, 9, 9, 4, 5, 5, 1, 1, 2, 2}, true},     // LeNet-like, 6 channels (dw by GEMM)
      {{33, 1, 12, 12, 6, 5, 5, 1, 1, 2, 2}, true},   // one input channel
      {{37, 16, 9, 8, 8, 3, 3, 2, 2, 1, 1}, false},   // stride 2 (ResNet stage entry), odd input
      {{129, 16, 4, 4, 8, 1, 1, 2, 2, 0, 0}, false},  // ResNet shortcut, more than 128 samples
      {{37, 16, 5, 5, 8, 1, 1, 1, 1, 0, 0}, true},    // pointwise
  };
}

INSTANTIATE_TEST_SUITE_P(Shapes, Conv2dCpuLargeBatch, ::testing::ValuesIn(large_batch_cases()), case_name);

// However the batch is split over threads, every sample's output and input gradient are computed
// exactly as if the sample were alone: a batch of 13 equals 13 batches of one, bit for bit.
TEST(Conv2dCpuSplit, SamplesAreIndependentOfTheirBatch) {
  for (const Conv2dShape shape : {Conv2dShape{13, 16, 7, 7, 5, 3, 3, 1, 1, 1, 1},
                                  Conv2dShape{13, 3, 7, 7, 5, 3, 3, 2, 2, 1, 1}}) {
    ConvData d({shape, true});
    const auto& s = d.s;
    const size_t x_size = size_t(s.in_channels) * s.in_h * s.in_w,
                 y_size = size_t(s.out_channels) * s.out_h() * s.out_w();
    Conv2dShape one = s;
    one.batch = 1;
    std::vector<float> ws(size_t(raisin::cpu::conv2d_workspace_floats(one)), NAN);
    for_each_isa([&] {
      std::vector<float> y(s.batch * y_size), dx(s.batch * x_size, 0.0f);
      raisin::cpu::conv2d_forward(s, d.x.data(), d.w.data(), d.b_ptr(), y.data(), d.ws());
      raisin::cpu::conv2d_backward(s, d.x.data(), d.w.data(), d.r.data(), dx.data(), nullptr, nullptr, d.ws());
      for (int n = 0; n < s.batch; n++) {
        std::vector<float> y1(y_size), dx1(x_size, 0.0f);
        raisin::cpu::conv2d_forward(one, d.x.data() + n * x_size, d.w.data(), d.b_ptr(), y1.data(), ws.data());
        raisin::cpu::conv2d_backward(one, d.x.data() + n * x_size, d.w.data(), d.r.data() + n * y_size,
                                     dx1.data(), nullptr, nullptr, ws.data());
        EXPECT_TRUE(std::equal(y1.begin(), y1.end(), y.begin() + n * y_size)) << "y of sample " << n;
        EXPECT_TRUE(std::equal(dx1.begin(), dx1.end(), dx.begin() + n * x_size)) << "dx of sample " << n;
      }
    });
  }
}

// Whatever OpenBLAS build is linked, the kernels leave its thread count and OpenMP's as they found them.
TEST(Conv2dCpuSplit, RestoresTheThreadCounts) {
  ConvData d({{4, 16, 6, 6, 4, 3, 3, 2, 2, 1, 1}, true});  // stride 2: OpenBLAS calls on every path
  const int blas_before = openblas_get_num_threads(), omp_before = omp_get_max_threads();
  std::vector<float> y(d.r.size()), dx(d.x.size()), dw(d.w.size()), db(d.b.size());
  raisin::cpu::conv2d_forward(d.s, d.x.data(), d.w.data(), d.b_ptr(), y.data(), d.ws());
  raisin::cpu::conv2d_backward(d.s, d.x.data(), d.w.data(), d.r.data(), dx.data(), dw.data(), db.data(), d.ws());
  EXPECT_EQ(openblas_get_num_threads(), blas_before);
  EXPECT_EQ(omp_get_max_threads(), omp_before);
}

// The workspace holds one slot per thread (at most one per sample) and, for the direct kernels, the
// flipped weights. Exact for the shapes that only take the im2col + GEMM way; bounded by the thread
// count, not by the batch, for all.
TEST(Conv2dCpuWorkspace, Size) {
  using raisin::cpu::conv2d_workspace_floats;
  // stride 2, padding 1: padded sample [3, 9, 8] + col [3·3·3, 4·3] + dw partial [4, 27]
  EXPECT_EQ(conv2d_workspace_floats({1, 3, 7, 6, 4, 3, 3, 2, 2, 1, 1}), 3 * 9 * 8 + 27 * 4 * 3 + 4 * 27);
  // stride 2 1x1: col [4, 4·4] + dw [3, 4]
  EXPECT_EQ(conv2d_workspace_floats({1, 4, 7, 7, 3, 1, 1, 2, 2, 0, 0}), 4 * 4 * 4 + 3 * 4);
  // pointwise: no col, dw [5, 4] only
  EXPECT_EQ(conv2d_workspace_floats({1, 4, 5, 5, 5, 1, 1, 1, 1, 0, 0}), 5 * 4);
  for (const Conv2dShape shape : {Conv2dShape{128, 16, 32, 32, 16, 3, 3, 1, 1, 1, 1},
                                  Conv2dShape{128, 6, 14, 14, 16, 5, 5, 1, 1, 0, 0},
                                  Conv2dShape{128, 16, 32, 32, 32, 3, 3, 2, 2, 1, 1}}) {
    Conv2dShape one = shape, huge = shape;
    one.batch = 1;
    huge.batch = 100000;
    EXPECT_EQ(conv2d_workspace_floats(huge), conv2d_workspace_floats(shape));
    EXPECT_LE(conv2d_workspace_floats(one), conv2d_workspace_floats(shape));
  }
}

}  // namespace
