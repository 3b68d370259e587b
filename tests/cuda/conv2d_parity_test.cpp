// CUDA parity for conv2d (cuDNN on the GPU, the CPU twin when emulated): the same random inputs through
// the CPU reference and the CUDA kernel must agree, forward (into a poisoned output, so every element
// must be written) and backward (from zero, into pre-filled gradients, with null gradients), over
// padding, stride 2, 1x1 and non-square kernels, odd channel counts, batch 1, with and without bias.
// The workspace is poisoned too: its prior contents must not matter. fp32 without TF32: 1e-4
// relative; TF32 (GPU only): 5e-3.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/kernels.h"
#include "tests/cuda/parity.h"
#include "tests/cuda/vendor_parity.h"
#include "tests/support/check.h"

namespace raisin {
namespace {

using kernels::Conv2dShape;

struct ConvCase {
  Conv2dShape shape;
  bool bias;
};

// {batch, in_channels, in_h, in_w, out_channels, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w}
const ConvCase kCases[] = {
    {{2, 3, 7, 5, 4, 3, 3, 1, 1, 1, 1}, true},     // 3x3 "same" padding on a non-square image
    {{3, 5, 9, 9, 6, 3, 3, 2, 2, 1, 1}, true},     // stride 2 with padding
    {{2, 8, 6, 6, 5, 1, 1, 1, 1, 0, 0}, true},     // 1x1 (pointwise)
    {{2, 8, 8, 8, 16, 1, 1, 2, 2, 0, 0}, false},   // 1x1 stride 2: a ResNet shortcut, no bias
    {{2, 7, 11, 10, 3, 5, 5, 1, 1, 2, 2}, false},  // odd channel counts, 5x5 with padding 2
    {{1, 3, 8, 8, 16, 3, 3, 1, 1, 1, 1}, true},    // batch 1
    {{2, 4, 10, 7, 5, 3, 2, 2, 1, 1, 0}, true},    // non-square kernel, different strides and pads per axis
    {{4, 6, 14, 14, 16, 5, 5, 1, 1, 0, 0}, true},  // LeNet-5's second convolution
};

std::string describe(const Conv2dShape& s, bool bias) {
  return "conv2d x [" + std::to_string(s.batch) + ", " + std::to_string(s.in_channels) + ", " +
         std::to_string(s.in_h) + ", " + std::to_string(s.in_w) + "], w [" + std::to_string(s.out_channels) + ", " +
         std::to_string(s.in_channels) + ", " + std::to_string(s.kernel_h) + ", " + std::to_string(s.kernel_w) +
         "], stride " + std::to_string(s.stride_h) + "x" + std::to_string(s.stride_w) + ", pad " +
         std::to_string(s.pad_h) + "x" + std::to_string(s.pad_w) + (bias ? ", with bias" : ", without bias");
}

// Forward and backward of one shape on the CPU and on the device, compared with tolerance `rtol` (and
// rtol times each result's scale as the absolute tolerance).
void expect_conv2d_parity(const Conv2dShape& s, bool bias, double rtol) {
  SCOPED_TRACE(describe(s, bias));
  const size_t nx = size_t(s.batch) * s.in_channels * s.in_h * s.in_w,
               nw = size_t(s.out_channels) * s.in_channels * s.kernel_h * s.kernel_w,
               ny = size_t(s.batch) * s.out_channels * s.out_h() * s.out_w();
  const auto x = test::random_floats(nx, 11), w = test::random_floats(nw, 12), dy = test::random_floats(ny, 14);
  const auto b = bias ? test::random_floats(s.out_channels, 13) : std::vector<float>{};

  std::vector<float> cpu_workspace(std::max<int64_t>(1, cpu::conv2d_workspace_floats(s)));
  std::vector<float> y(ny);
  cpu::conv2d_forward(s, x.data(), w.data(), bias ? b.data() : nullptr, y.data(), cpu_workspace.data());

  const int64_t workspace_floats = cuda::conv2d_workspace_floats(s);
  ASSERT_GE(workspace_floats, 0);
  DeviceBuffer<float> dev_x(x), dev_w(w), dev_b(b), dev_dy(dy), dev_y(ny);
  DeviceBuffer<float> dev_workspace(static_cast<size_t>(workspace_floats));  // poisoned: must not matter
  cuda::conv2d_forward(s, dev_x.ptr, dev_w.ptr, bias ? dev_b.ptr : nullptr, dev_y.ptr, dev_workspace.ptr);
  const auto expect_y = test::to_double(y);
  EXPECT_TRUE(test::all_close("y", dev_y.host(), expect_y, rtol, test::scaled_atol(rtol, expect_y)));

  std::vector<float> gx(nx), gw(nw), gb(bias ? s.out_channels : 0);
  cpu::conv2d_backward(s, x.data(), w.data(), dy.data(), gx.data(), gw.data(), bias ? gb.data() : nullptr,
                       cpu_workspace.data());
  const auto ex = test::to_double(gx), ew = test::to_double(gw), eb = test::to_double(gb);
  std::vector<double> w_and_b = ew;
  w_and_b.insert(w_and_b.end(), eb.begin(), eb.end());
  test::expect_device_backward_xwb(
      [&](float* dx, float* dw, float* db) {
        cuda::conv2d_backward(s, dev_x.ptr, dev_w.ptr, dev_dy.ptr, dx, dw, db, dev_workspace.ptr);
      },
      ex, ew, eb, rtol, test::scaled_atol(rtol, ex), test::scaled_atol(rtol, w_and_b));
}

TEST_F(CudaParity, Conv2dMatchesCpu) {
  for (const ConvCase& c : kCases) expect_conv2d_parity(c.shape, c.bias, 1e-4);
}

// TF32 rounds the convolution inputs to 10 mantissa bits: results stay within about 1e-3 of fp32.
TEST_F(CudaParity, Conv2dWithTf32MatchesCpuLoosely) {
#if RAISIN_CUDA_EMULATED
  GTEST_SKIP() << "TF32 is tensor-core math on a GPU; the emulated backend runs the fp32 CPU twin";
#else
  test::AllowTf32 tf32;
  expect_conv2d_parity({8, 16, 16, 16, 32, 3, 3, 1, 1, 1, 1}, true, 5e-3);  // ResNet-20 sized: 16 -> 32 at 16x16
  expect_conv2d_parity({2, 3, 7, 5, 4, 3, 3, 2, 2, 1, 1}, false, 5e-3);
#endif
}

}  // namespace
}  // namespace raisin
