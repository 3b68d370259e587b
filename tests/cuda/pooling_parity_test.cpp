// CUDA parity for the pooling kernels (kernels/cuda/pooling.cu against kernels/cpu/pooling.cpp): max and
// average 2-D pooling over strides, paddings and window shapes, and global average pooling, forward and
// backward. Max pooling (values, argmax, gradients) and average pooling's forward must match bit for
// bit: they do the same float operations in the same order. Average pooling's backward may differ where
// nvcc fuses dy · (1/k) + dx into one fma, and global average pooling sums in a different order
// (in double), so those are compared with tolerances of a few float roundings.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/kernels.h"
#include "tests/cuda/parity.h"
#include "tests/support/check.h"

namespace raisin {
namespace {

using kernels::ImageShape;
using kernels::Pool2dShape;
using test::all_close;
using test::random_floats;
using test::to_double;

// Fields: batch, channels, in_h, in_w, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w.
// Odd sizes, batch 1, overlapping windows (stride < kernel), rows no window touches (stride > kernel),
// non-square windows, a window covering the whole plane, 1x1 windows, the CPU's 2x2/stride-2 fast path,
// windows wholly inside the padding (pad > kernel / 2: −inf and argmax −1), and shapes of several blocks.
const std::vector<Pool2dShape> kShapes = {
    {2, 3, 7, 9, 3, 3, 2, 2, 1, 1},    {1, 1, 5, 5, 2, 2, 2, 2, 0, 0},  {1, 4, 8, 6, 3, 2, 1, 2, 1, 0},
    {3, 2, 11, 13, 5, 3, 3, 2, 2, 1},  {2, 3, 4, 4, 4, 4, 1, 1, 0, 0},  {1, 2, 6, 7, 2, 3, 3, 1, 1, 1},
    {1, 1, 1, 1, 1, 1, 1, 1, 0, 0},    {2, 2, 9, 5, 1, 1, 2, 2, 0, 0},  {1, 2, 5, 6, 1, 1, 2, 2, 1, 1},
    {3, 5, 17, 19, 2, 2, 2, 2, 0, 0},  {2, 7, 15, 15, 3, 3, 2, 2, 1, 1}, {1, 3, 12, 10, 3, 3, 1, 1, 1, 1},
};

int64_t input_size(const Pool2dShape& s) { return int64_t(s.batch) * s.channels * s.in_h * s.in_w; }
int64_t output_size(const Pool2dShape& s) { return int64_t(s.batch) * s.channels * s.out_h() * s.out_w(); }

::testing::Message describe(const Pool2dShape& s) {
  return ::testing::Message() << "shape " << s.batch << "x" << s.channels << "x" << s.in_h << "x" << s.in_w
                              << " kernel " << s.kernel_h << "x" << s.kernel_w << " stride " << s.stride_h << ","
                              << s.stride_w << " pad " << s.pad_h << "," << s.pad_w;
}

// Values from {0, 1, 2, 3}: most windows hold ties, so the first-in-window-order rule is exercised.
std::vector<float> tie_heavy_values(size_t n, uint64_t seed) {
  const std::vector<int32_t> levels = test::random_ints(n, seed, 4);
  return std::vector<float>(levels.begin(), levels.end());
}

// Bit patterns, so that NaN compares equal to NaN and −0 differs from +0.
std::vector<uint32_t> bits(const std::vector<float>& v) {
  std::vector<uint32_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = std::bit_cast<uint32_t>(v[i]);
  return out;
}

struct MaxPoolResult {
  std::vector<float> y;
  std::vector<int32_t> argmax;
};

MaxPoolResult cpu_maxpool(const Pool2dShape& s, const std::vector<float>& x) {
  MaxPoolResult r{std::vector<float>(output_size(s)), std::vector<int32_t>(output_size(s))};
  cpu::maxpool2d_forward(s, x.data(), r.y.data(), r.argmax.data());
  return r;
}

MaxPoolResult cuda_maxpool(const Pool2dShape& s, const std::vector<float>& x) {
  DeviceBuffer<float> dx(x), dy(output_size(s));  // outputs start poisoned
  DeviceBuffer<int32_t> dargmax(output_size(s));
  cuda::maxpool2d_forward(s, dx.ptr, dy.ptr, dargmax.ptr);
  return {dy.host(), dargmax.host()};
}

TEST_F(CudaParity, MaxPool2dForwardMatchesCpuOnTies) {
  uint64_t seed = 100;
  for (const Pool2dShape& s : kShapes) {
    SCOPED_TRACE(describe(s));
    const std::vector<float> x = tie_heavy_values(input_size(s), ++seed);
    const MaxPoolResult expected = cpu_maxpool(s, x), actual = cuda_maxpool(s, x);
    EXPECT_EQ(bits(actual.y), bits(expected.y));
    EXPECT_EQ(actual.argmax, expected.argmax);
  }
}

// NaN wins over numbers and the first NaN sticks; −inf windows still name their first element; windows
// in the padding give −inf and −1.
TEST_F(CudaParity, MaxPool2dForwardMatchesCpuOnNonFiniteInputs) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> specials = {NAN, -inf, inf, -0.0f, 0.0f};
  uint64_t seed = 150;
  for (const Pool2dShape& s : kShapes) {
    SCOPED_TRACE(describe(s));
    std::vector<float> x = tie_heavy_values(input_size(s), ++seed);
    const std::vector<int32_t> where = test::random_ints(x.size(), ++seed, 8);
    for (size_t i = 0; i < x.size(); ++i)
      if (where[i] < int32_t(specials.size())) x[i] = specials[where[i]];
    const MaxPoolResult expected = cpu_maxpool(s, x), actual = cuda_maxpool(s, x);
    EXPECT_EQ(bits(actual.y), bits(expected.y));
    EXPECT_EQ(actual.argmax, expected.argmax);
  }
}

// The gradients of tied and overlapping windows add up in the CPU's order, so dx matches bit for bit,
// from zero and added to a pre-filled buffer.
TEST_F(CudaParity, MaxPool2dBackwardMatchesCpuBitForBit) {
  uint64_t seed = 200;
  for (const Pool2dShape& s : kShapes) {
    SCOPED_TRACE(describe(s));
    const std::vector<float> x = tie_heavy_values(input_size(s), ++seed);
    const std::vector<float> dy = random_floats(output_size(s), ++seed);
    const MaxPoolResult forward = cpu_maxpool(s, x);
    DeviceBuffer<int32_t> dev_argmax(forward.argmax);
    DeviceBuffer<float> dev_dy(dy);
    for (const std::vector<float>& before :
         {std::vector<float>(input_size(s), 0.0f), random_floats(input_size(s), ++seed)}) {
      std::vector<float> expected = before;
      cpu::maxpool2d_backward(s, forward.argmax.data(), dy.data(), expected.data());
      DeviceBuffer<float> dev_dx(before);
      cuda::maxpool2d_backward(s, dev_argmax.ptr, dev_dy.ptr, dev_dx.ptr);
      EXPECT_TRUE(all_close("maxpool dx", dev_dx.host(), to_double(expected), 0, 0));
    }
  }
}

TEST_F(CudaParity, AvgPool2dForwardMatchesCpuBitForBit) {
  uint64_t seed = 300;
  for (const Pool2dShape& s : kShapes) {
    SCOPED_TRACE(describe(s));
    const std::vector<float> x = random_floats(input_size(s), ++seed);
    std::vector<float> expected(output_size(s));
    cpu::avgpool2d_forward(s, x.data(), expected.data());
    DeviceBuffer<float> dev_x(x), dev_y(output_size(s));
    cuda::avgpool2d_forward(s, dev_x.ptr, dev_y.ptr);
    EXPECT_TRUE(all_close("avgpool y", dev_y.host(), to_double(expected), 0, 0));
  }
}

TEST_F(CudaParity, AvgPool2dBackwardAccumulatesAsCpu) {
  uint64_t seed = 400;
  for (const Pool2dShape& s : kShapes) {
    SCOPED_TRACE(describe(s));
    const std::vector<float> dy = random_floats(output_size(s), ++seed);
    DeviceBuffer<float> dev_dy(dy);
    for (const std::vector<float>& before :
         {std::vector<float>(input_size(s), 0.0f), random_floats(input_size(s), ++seed)}) {
      std::vector<float> expected = before;
      cpu::avgpool2d_backward(s, dy.data(), expected.data());
      DeviceBuffer<float> dev_dx(before);
      cuda::avgpool2d_backward(s, dev_dy.ptr, dev_dx.ptr);
      EXPECT_TRUE(all_close("avgpool dx", dev_dx.host(), to_double(expected), 1e-6, 1e-6));
    }
  }
}

// Planes of one element, fewer planes than a block's 8 warps, partial blocks, planes larger than a
// warp's 32 lanes (several elements per lane), and 64 planes of a ResNet-like 7x7 head.
const std::vector<ImageShape> kImageShapes = {
    {1, 1, 1, 1}, {2, 3, 7, 7}, {3, 5, 4, 4}, {2, 17, 9, 11}, {1, 3, 33, 35}, {4, 16, 7, 7},
};

TEST_F(CudaParity, GlobalAvgPoolForwardMatchesCpu) {
  uint64_t seed = 500;
  for (const ImageShape& s : kImageShapes) {
    SCOPED_TRACE(::testing::Message() << "shape " << s.batch << "x" << s.channels << "x" << s.height << "x"
                                      << s.width);
    // An offset keeps the means away from 0, where a relative tolerance means nothing.
    const std::vector<float> x = random_floats(s.numel(), ++seed, -0.5f, 1.5f);
    std::vector<float> expected(size_t(s.batch) * s.channels);
    cpu::global_avgpool_forward(s, x.data(), expected.data());
    DeviceBuffer<float> dev_x(x), dev_y(expected.size());
    cuda::global_avgpool_forward(s, dev_x.ptr, dev_y.ptr);
    // Both sum in double; only the final rounding to float can differ, by one unit in the last place.
    EXPECT_TRUE(all_close("global avgpool y", dev_y.host(), to_double(expected), 1.2e-7, 0));
  }
}

TEST_F(CudaParity, GlobalAvgPoolBackwardMatchesCpuBitForBit) {
  uint64_t seed = 600;
  for (const ImageShape& s : kImageShapes) {
    SCOPED_TRACE(::testing::Message() << "shape " << s.batch << "x" << s.channels << "x" << s.height << "x"
                                      << s.width);
    const std::vector<float> dy = random_floats(size_t(s.batch) * s.channels, ++seed);
    DeviceBuffer<float> dev_dy(dy);
    for (const std::vector<float>& before :
         {std::vector<float>(s.numel(), 0.0f), random_floats(s.numel(), ++seed)}) {
      std::vector<float> expected = before;
      cpu::global_avgpool_backward(s, dy.data(), expected.data());
      DeviceBuffer<float> dev_dx(before);
      cuda::global_avgpool_backward(s, dev_dy.ptr, dev_dx.ptr);
      EXPECT_TRUE(all_close("global avgpool dx", dev_dx.host(), to_double(expected), 0, 0));
    }
  }
}

}  // namespace
// A null dx means "not needed": the CUDA twins launch nothing, as the CPU kernels write nothing.
TEST_F(CudaParity, PoolingBackwardSkipsANullInputGradient) {
  const Pool2dShape pool{2, 3, 6, 6, 2, 2, 2, 2};
  DeviceBuffer<float> dy(random_floats(size_t(pool.batch) * pool.channels * pool.out_h() * pool.out_w(), 610));
  DeviceBuffer<int32_t> argmax(std::vector<int32_t>(dy.size, 0));
  cuda::maxpool2d_backward(pool, argmax.ptr, dy.ptr, nullptr);
  cuda::avgpool2d_backward(pool, dy.ptr, nullptr);
  cuda::global_avgpool_backward(ImageShape{2, 3, 6, 6}, dy.ptr, nullptr);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

}  // namespace raisin
