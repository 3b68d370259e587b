// Tests for the CPU pooling kernels (kernels/cpu/pooling.cpp): max, average and global average pooling.
// Forward passes are compared with double-precision references that pad the input explicitly (−inf
// for max, 0 for average) and then slide the window; backward passes with central finite differences
// of L(x) = dot(r, reference(x)), and with dense references on a shape large enough for OpenMP.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "tests/support/check.h"

namespace {

using raisin::kernels::ImageShape;
using raisin::kernels::Pool2dShape;
using raisin::test::all_close;
using raisin::test::random_floats;
using raisin::test::to_double;

// Odd sizes, batch 1, stride ≠ kernel, stride > kernel (rows no window touches), padding, non-square
// windows, a window covering the whole plane.
// Fields: batch, channels, in_h, in_w, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w.
const std::vector<Pool2dShape> kShapes = {
    {2, 3, 7, 9, 3, 3, 2, 2, 1, 1},   {1, 1, 5, 5, 2, 2, 2, 2, 0, 0},  {1, 4, 8, 6, 3, 2, 1, 2, 1, 0},
    {3, 2, 11, 13, 5, 3, 3, 2, 2, 1}, {2, 3, 4, 4, 4, 4, 1, 1, 0, 0},  {1, 2, 6, 7, 2, 3, 3, 1, 1, 1},
    {1, 1, 1, 1, 1, 1, 1, 1, 0, 0},   {2, 2, 9, 5, 1, 1, 2, 2, 0, 0},
};
// 4·16·16·16 = 16384 outputs: the kernels run their OpenMP path.
const Pool2dShape kLargeShape = {4, 16, 32, 32, 3, 3, 2, 2, 1, 1};

// Finite-difference step: pooling is piecewise linear and the max-pooling inputs are 0.01 apart, so a
// step this size never changes a winner and keeps the rounding noise ~1e-10.
constexpr double kStep = 1e-4;

int64_t input_size(const Pool2dShape& s) { return int64_t(s.batch) * s.channels * s.in_h * s.in_w; }
int64_t output_size(const Pool2dShape& s) { return int64_t(s.batch) * s.channels * s.out_h() * s.out_w(); }

// Plane p of x copied into a (in_h + 2·pad_h) × (in_w + 2·pad_w) grid filled with `pad_value`.
std::vector<double> padded_plane(const Pool2dShape& s, const std::vector<double>& x, int64_t p,
                                 double pad_value) {
  const int ph = s.in_h + 2 * s.pad_h, pw = s.in_w + 2 * s.pad_w;
  std::vector<double> grid(size_t(ph) * pw, pad_value);
  for (int h = 0; h < s.in_h; ++h)
    for (int w = 0; w < s.in_w; ++w)
      grid[size_t(h + s.pad_h) * pw + (w + s.pad_w)] = x[size_t(p) * s.in_h * s.in_w + size_t(h) * s.in_w + w];
  return grid;
}

struct MaxPoolReference {
  std::vector<double> y;
  std::vector<int32_t> argmax;
};

// Max over each window of the −inf-padded plane; the first strictly larger value wins, so ties go to
// the first element in row-major window order.
MaxPoolReference maxpool_reference(const Pool2dShape& s, const std::vector<double>& x) {
  const int out_h = s.out_h(), out_w = s.out_w(), pw = s.in_w + 2 * s.pad_w;
  MaxPoolReference ref{std::vector<double>(output_size(s)), std::vector<int32_t>(output_size(s))};
  for (int64_t p = 0; p < int64_t(s.batch) * s.channels; ++p) {
    const std::vector<double> grid = padded_plane(s, x, p, -std::numeric_limits<double>::infinity());
    for (int oh = 0; oh < out_h; ++oh)
      for (int ow = 0; ow < out_w; ++ow) {
        double best = -std::numeric_limits<double>::infinity();
        int32_t best_index = -1;
        for (int kh = 0; kh < s.kernel_h; ++kh)
          for (int kw = 0; kw < s.kernel_w; ++kw) {
            const int gh = oh * s.stride_h + kh, gw = ow * s.stride_w + kw;
            if (grid[size_t(gh) * pw + gw] > best) {
              best = grid[size_t(gh) * pw + gw];
              best_index = (gh - s.pad_h) * s.in_w + (gw - s.pad_w);
            }
          }
        const size_t o = size_t(p) * out_h * out_w + size_t(oh) * out_w + ow;
        ref.y[o] = best;
        ref.argmax[o] = best_index;
      }
  }
  return ref;
}

// Sum over each window of the zero-padded plane, divided by kernel_h · kernel_w.
std::vector<double> avgpool_reference(const Pool2dShape& s, const std::vector<double>& x) {
  const int out_h = s.out_h(), out_w = s.out_w(), pw = s.in_w + 2 * s.pad_w;
  std::vector<double> y(output_size(s));
  for (int64_t p = 0; p < int64_t(s.batch) * s.channels; ++p) {
    const std::vector<double> grid = padded_plane(s, x, p, 0.0);
    for (int oh = 0; oh < out_h; ++oh)
      for (int ow = 0; ow < out_w; ++ow) {
        double sum = 0;
        for (int kh = 0; kh < s.kernel_h; ++kh)
          for (int kw = 0; kw < s.kernel_w; ++kw)
            sum += grid[size_t(oh * s.stride_h + kh) * pw + (ow * s.stride_w + kw)];
        y[size_t(p) * out_h * out_w + size_t(oh) * out_w + ow] = sum / (s.kernel_h * s.kernel_w);
      }
  }
  return y;
}

std::vector<double> global_avgpool_reference(const ImageShape& s, const std::vector<double>& x) {
  std::vector<double> y(size_t(s.batch) * s.channels);
  for (size_t p = 0; p < y.size(); ++p) {
    double sum = 0;
    for (int64_t i = 0; i < s.spatial(); ++i) sum += x[p * s.spatial() + i];
    y[p] = sum / double(s.spatial());
  }
  return y;
}

// n distinct values, 0.01 apart, in shuffled order: max pooling has no ties, and a finite-difference
// step cannot change which element wins.
std::vector<float> distinct_values(size_t n, uint64_t seed) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = 0.01f * (float(i) - float(n) / 2);
  std::shuffle(v.begin(), v.end(), std::mt19937_64(seed));
  return v;
}

// ---- max pooling ----

TEST(MaxPool2d, ForwardMatchesReference) {
  uint64_t seed = 100;
  for (const Pool2dShape& s : kShapes) {
    SCOPED_TRACE(::testing::Message() << "shape " << s.batch << "x" << s.channels << "x" << s.in_h << "x"
                                      << s.in_w << " kernel " << s.kernel_h << "x" << s.kernel_w);
    const std::vector<float> x = random_floats(input_size(s), ++seed);
    const MaxPoolReference ref = maxpool_reference(s, to_double(x));
    std::vector<float> y(output_size(s), NAN);
    std::vector<int32_t> argmax(output_size(s), -2);
    raisin::cpu::maxpool2d_forward(s, x.data(), y.data(), argmax.data());
    EXPECT_TRUE(all_close("maxpool y", y, ref.y, 0.0, 0.0));  // a max is exact
    EXPECT_EQ(argmax, ref.argmax);
  }
}

// Padding is −inf, not 0: with every input negative, a zero from the padding must never win.
TEST(MaxPool2d, PaddingNeverWinsOverNegativeInputs) {
  const Pool2dShape s = {2, 3, 7, 9, 3, 3, 2, 2, 1, 1};
  const std::vector<float> x = random_floats(input_size(s), 110, -2.0f, -0.5f);
  const MaxPoolReference ref = maxpool_reference(s, to_double(x));
  std::vector<float> y(output_size(s));
  std::vector<int32_t> argmax(output_size(s));
  raisin::cpu::maxpool2d_forward(s, x.data(), y.data(), argmax.data());
  EXPECT_TRUE(all_close("maxpool y", y, ref.y, 0.0, 0.0));
  EXPECT_EQ(argmax, ref.argmax);
}

// Inputs from {0, 1, 2} tie all the time: the winner must be the first in row-major window order.
TEST(MaxPool2d, TiesGoToFirstElementInWindowOrder) {
  for (const Pool2dShape& s : kShapes) {
    const std::vector<int32_t> levels = raisin::test::random_ints(input_size(s), 120, 3);
    const std::vector<float> x(levels.begin(), levels.end());
    const MaxPoolReference ref = maxpool_reference(s, to_double(x));
    std::vector<float> y(output_size(s));
    std::vector<int32_t> argmax(output_size(s));
    raisin::cpu::maxpool2d_forward(s, x.data(), y.data(), argmax.data());
    EXPECT_EQ(argmax, ref.argmax);
  }
  // A hand-made case: a 2×2 window holding 5 at (0, 1) and (1, 0) picks (0, 1), flat index 1.
  const Pool2dShape s = {1, 1, 2, 2, 2, 2, 1, 1, 0, 0};
  const std::vector<float> x = {1, 5, 5, 3};
  float y;
  int32_t argmax;
  raisin::cpu::maxpool2d_forward(s, x.data(), &y, &argmax);
  EXPECT_EQ(y, 5.0f);
  EXPECT_EQ(argmax, 1);
}

// Non-finite inputs, as PyTorch treats them: a NaN in the window wins (and propagates), and a window
// of −inf values still names a real input (the first), so that backward routes its gradient somewhere
// valid.
TEST(MaxPool2d, NaNWinsAndMinusInfinityStillHasAnArgmax) {
  const float inf = std::numeric_limits<float>::infinity();
  const Pool2dShape s = {1, 1, 2, 4, 2, 2, 2, 2, 0, 0};  // two 2×2 windows side by side
  const std::vector<float> x = {-inf, -inf, 1.0f, 3.0f,  //
                                -inf, -inf, NAN, 2.0f};
  std::vector<float> y(2);
  std::vector<int32_t> argmax(2);
  raisin::cpu::maxpool2d_forward(s, x.data(), y.data(), argmax.data());
  EXPECT_EQ(y[0], -inf);
  EXPECT_EQ(argmax[0], 0);
  EXPECT_TRUE(std::isnan(y[1]));
  EXPECT_EQ(argmax[1], 6);
}

// L(x) = dot(r, maxpool(x)); the backward with dy = r must give ∂L/∂x.
TEST(MaxPool2d, BackwardMatchesFiniteDifferences) {
  uint64_t seed = 130;
  for (const Pool2dShape& s : kShapes) {
    SCOPED_TRACE(::testing::Message() << "shape " << s.batch << "x" << s.channels << "x" << s.in_h << "x"
                                      << s.in_w << " kernel " << s.kernel_h << "x" << s.kernel_w);
    const std::vector<float> x = distinct_values(input_size(s), ++seed);
    const std::vector<float> r = random_floats(output_size(s), ++seed);
    const std::vector<double> rd = to_double(r);
    const std::vector<double> expected = raisin::test::finite_difference_gradient(
        [&](const std::vector<double>& v) { return raisin::test::dot(rd, maxpool_reference(s, v).y); },
        to_double(x), kStep);
    std::vector<float> y(output_size(s)), dx(input_size(s), 0.0f);
    std::vector<int32_t> argmax(output_size(s));
    raisin::cpu::maxpool2d_forward(s, x.data(), y.data(), argmax.data());
    raisin::cpu::maxpool2d_backward(s, argmax.data(), r.data(), dx.data());
    EXPECT_TRUE(all_close("maxpool dx", dx, expected, 1e-6, 1e-8));
  }
}

// The backward adds into a pre-filled dx; on the large shape (OpenMP path) the reference gradient is
// dy scattered to the reference argmax.
TEST(MaxPool2d, BackwardAccumulatesOnLargeShape) {
  const Pool2dShape& s = kLargeShape;
  const std::vector<float> x = distinct_values(input_size(s), 140);
  const std::vector<float> dy = random_floats(output_size(s), 141), before = random_floats(input_size(s), 142);
  const MaxPoolReference ref = maxpool_reference(s, to_double(x));
  std::vector<double> expected = to_double(before);
  const int64_t in_plane = int64_t(s.in_h) * s.in_w, out_plane = int64_t(s.out_h()) * s.out_w();
  for (int64_t o = 0; o < output_size(s); ++o) expected[(o / out_plane) * in_plane + ref.argmax[o]] += dy[o];

  std::vector<float> y(output_size(s)), dx = before;
  std::vector<int32_t> argmax(output_size(s));
  raisin::cpu::maxpool2d_forward(s, x.data(), y.data(), argmax.data());
  EXPECT_TRUE(all_close("maxpool y", y, ref.y, 0.0, 0.0));
  EXPECT_EQ(argmax, ref.argmax);
  raisin::cpu::maxpool2d_backward(s, argmax.data(), dy.data(), dx.data());
  EXPECT_TRUE(all_close("maxpool dx", dx, expected, 1e-6, 1e-7));
}

// ---- average pooling ----

TEST(AvgPool2d, ForwardMatchesReference) {
  uint64_t seed = 200;
  std::vector<Pool2dShape> shapes = kShapes;
  shapes.push_back(kLargeShape);
  for (const Pool2dShape& s : shapes) {
    SCOPED_TRACE(::testing::Message() << "shape " << s.batch << "x" << s.channels << "x" << s.in_h << "x"
                                      << s.in_w << " kernel " << s.kernel_h << "x" << s.kernel_w);
    const std::vector<float> x = random_floats(input_size(s), ++seed);
    std::vector<float> y(output_size(s), NAN);
    raisin::cpu::avgpool2d_forward(s, x.data(), y.data());
    EXPECT_TRUE(all_close("avgpool y", y, avgpool_reference(s, to_double(x)), 1e-5, 1e-7));
  }
}

// count_include_pad=True: a corner 3×3 window with one row and one column of padding holds 4 ones and
// 5 zeros, so it averages to 4/9, not 1.
TEST(AvgPool2d, PaddingCountsAsZerosInTheDivisor) {
  const Pool2dShape s = {1, 1, 4, 4, 3, 3, 3, 3, 1, 1};
  const std::vector<float> x(16, 1.0f);
  std::vector<float> y(output_size(s));
  raisin::cpu::avgpool2d_forward(s, x.data(), y.data());
  ASSERT_EQ(y.size(), 4u);
  EXPECT_FLOAT_EQ(y[0], 4.0f / 9.0f);
  EXPECT_FLOAT_EQ(y[3], 4.0f / 9.0f);
}

TEST(AvgPool2d, BackwardMatchesFiniteDifferences) {
  uint64_t seed = 210;
  for (const Pool2dShape& s : kShapes) {
    SCOPED_TRACE(::testing::Message() << "shape " << s.batch << "x" << s.channels << "x" << s.in_h << "x"
                                      << s.in_w << " kernel " << s.kernel_h << "x" << s.kernel_w);
    const std::vector<float> x = random_floats(input_size(s), ++seed);
    const std::vector<float> r = random_floats(output_size(s), ++seed);
    const std::vector<double> rd = to_double(r);
    const std::vector<double> expected = raisin::test::finite_difference_gradient(
        [&](const std::vector<double>& v) { return raisin::test::dot(rd, avgpool_reference(s, v)); },
        to_double(x), kStep);
    std::vector<float> dx(input_size(s), 0.0f);
    raisin::cpu::avgpool2d_backward(s, r.data(), dx.data());
    EXPECT_TRUE(all_close("avgpool dx", dx, expected, 1e-5, 1e-7));
  }
}

// The backward adds into a pre-filled dx; on the large shape (OpenMP path) the reference gathers, for
// every input, dy / (kernel_h · kernel_w) from each window that covers it.
TEST(AvgPool2d, BackwardAccumulatesOnLargeShape) {
  const Pool2dShape& s = kLargeShape;
  const std::vector<float> dy = random_floats(output_size(s), 220), before = random_floats(input_size(s), 221);
  const int out_h = s.out_h(), out_w = s.out_w();
  std::vector<double> expected = to_double(before);
  for (int64_t p = 0; p < int64_t(s.batch) * s.channels; ++p)
    for (int h = 0; h < s.in_h; ++h)
      for (int w = 0; w < s.in_w; ++w)
        for (int oh = 0; oh < out_h; ++oh)
          for (int ow = 0; ow < out_w; ++ow) {
            const int kh = h + s.pad_h - oh * s.stride_h, kw = w + s.pad_w - ow * s.stride_w;
            if (kh < 0 || kh >= s.kernel_h || kw < 0 || kw >= s.kernel_w) continue;
            expected[(p * s.in_h + h) * s.in_w + w] +=
                double(dy[(p * out_h + oh) * out_w + ow]) / (s.kernel_h * s.kernel_w);
          }
  std::vector<float> dx = before;
  raisin::cpu::avgpool2d_backward(s, dy.data(), dx.data());
  EXPECT_TRUE(all_close("avgpool dx", dx, expected, 1e-5, 1e-7));
}

// ---- global average pooling ----

// Fields: batch, channels, height, width. The last shape runs the OpenMP path.
const std::vector<ImageShape> kImageShapes = {{2, 3, 5, 7}, {1, 1, 1, 1}, {3, 8, 7, 7}, {1, 2, 1, 9}};
const ImageShape kLargeImage = {8, 64, 14, 14};

TEST(GlobalAvgPool, ForwardMatchesReference) {
  uint64_t seed = 300;
  std::vector<ImageShape> shapes = kImageShapes;
  shapes.push_back(kLargeImage);
  for (const ImageShape& s : shapes) {
    SCOPED_TRACE(::testing::Message() << s.batch << "x" << s.channels << "x" << s.height << "x" << s.width);
    const std::vector<float> x = random_floats(s.numel(), ++seed);
    std::vector<float> y(size_t(s.batch) * s.channels, NAN);
    raisin::cpu::global_avgpool_forward(s, x.data(), y.data());
    EXPECT_TRUE(all_close("global avgpool y", y, global_avgpool_reference(s, to_double(x)), 1e-6, 1e-7));
  }
}

TEST(GlobalAvgPool, BackwardMatchesFiniteDifferences) {
  uint64_t seed = 310;
  for (const ImageShape& s : kImageShapes) {
    SCOPED_TRACE(::testing::Message() << s.batch << "x" << s.channels << "x" << s.height << "x" << s.width);
    const std::vector<float> x = random_floats(s.numel(), ++seed);
    const std::vector<float> r = random_floats(size_t(s.batch) * s.channels, ++seed);
    const std::vector<double> rd = to_double(r);
    const std::vector<double> expected = raisin::test::finite_difference_gradient(
        [&](const std::vector<double>& v) { return raisin::test::dot(rd, global_avgpool_reference(s, v)); },
        to_double(x), kStep);
    std::vector<float> dx(s.numel(), 0.0f);
    raisin::cpu::global_avgpool_backward(s, r.data(), dx.data());
    EXPECT_TRUE(all_close("global avgpool dx", dx, expected, 1e-5, 1e-7));
  }
}

TEST(GlobalAvgPool, BackwardAccumulatesOnLargeShape) {
  const ImageShape& s = kLargeImage;
  const std::vector<float> dy = random_floats(size_t(s.batch) * s.channels, 320);
  const std::vector<float> before = random_floats(s.numel(), 321);
  std::vector<double> expected = to_double(before);
  for (int64_t i = 0; i < s.numel(); ++i) expected[i] += double(dy[i / s.spatial()]) / double(s.spatial());
  std::vector<float> dx = before;
  raisin::cpu::global_avgpool_backward(s, dy.data(), dx.data());
  EXPECT_TRUE(all_close("global avgpool dx", dx, expected, 1e-6, 1e-7));
}

// A null dx means "not needed" (kernels/signatures.inc): the backward kernels then write nothing.
TEST(Pooling, BackwardSkipsANullInputGradient) {
  const Pool2dShape pool{2, 3, 6, 6, 2, 2, 2, 2};
  const std::vector<float> dy = random_floats(size_t(pool.batch) * pool.channels * pool.out_h() * pool.out_w(), 330);
  const std::vector<int32_t> argmax(dy.size(), 0);
  raisin::cpu::maxpool2d_backward(pool, argmax.data(), dy.data(), nullptr);
  raisin::cpu::avgpool2d_backward(pool, dy.data(), nullptr);
  const ImageShape image{2, 3, 6, 6};
  raisin::cpu::global_avgpool_backward(image, dy.data(), nullptr);
  SUCCEED();  // without the check the kernels write through the null pointer and crash
}

}  // namespace
