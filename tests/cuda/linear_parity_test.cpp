// CUDA parity for linear (cuBLAS on the GPU, the CPU twin when emulated): the same random inputs through
// the CPU reference and the CUDA kernel must agree, forward (into a poisoned output, so every element
// must be written) and backward (from zero, into pre-filled gradients, with null gradients), over batch 1,
// odd sizes, wide and narrow layers, with and without bias. fp32 without TF32: 1e-4 relative; TF32 (GPU
// only): 5e-3.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/kernels.h"
#include "tests/cuda/parity.h"
#include "tests/cuda/vendor_parity.h"
#include "tests/support/check.h"

namespace raisin {
namespace {

using kernels::LinearShape;

struct LinearCase {
  LinearShape shape;
  bool bias;
};

const LinearCase kCases[] = {
    {{1, 1, 1}, true},      // one of everything
    {{1, 37, 10}, true},    // batch 1
    {{7, 33, 65}, true},    // odd sizes everywhere
    {{64, 129, 10}, false}, // a classifier head without bias
    {{5, 300, 3}, true},    // long dot products, narrow output
    {{3, 0, 4}, true},      // no inputs: y = b, dw empty, db still flows
};

std::string describe(const LinearShape& s, bool bias) {
  return "linear batch " + std::to_string(s.batch) + ", " + std::to_string(s.in_features) + " -> " +
         std::to_string(s.out_features) + (bias ? " with bias" : " without bias");
}

// Forward and backward of one shape on the CPU and on the device, compared with tolerance `rtol` (and
// rtol times each result's scale as the absolute tolerance).
void expect_linear_parity(const LinearShape& s, bool bias, double rtol) {
  SCOPED_TRACE(describe(s, bias));
  const size_t nx = size_t(s.batch) * s.in_features, nw = size_t(s.out_features) * s.in_features,
               ny = size_t(s.batch) * s.out_features;
  const auto x = test::random_floats(nx, 1), w = test::random_floats(nw, 2), dy = test::random_floats(ny, 4);
  const auto b = bias ? test::random_floats(s.out_features, 3) : std::vector<float>{};

  std::vector<float> y(ny);
  cpu::linear_forward(s, x.data(), w.data(), bias ? b.data() : nullptr, y.data());
  DeviceBuffer<float> dev_x(x), dev_w(w), dev_b(b), dev_dy(dy), dev_y(ny);
  const float* dev_bias = bias ? dev_b.ptr : nullptr;
  cuda::linear_forward(s, dev_x.ptr, dev_w.ptr, dev_bias, dev_y.ptr);
  const auto expect_y = test::to_double(y);
  EXPECT_TRUE(test::all_close("y", dev_y.host(), expect_y, rtol, test::scaled_atol(rtol, expect_y)));

  std::vector<float> gx(nx), gw(nw), gb(bias ? s.out_features : 0);
  cpu::linear_backward(s, x.data(), w.data(), dy.data(), gx.data(), gw.data(), bias ? gb.data() : nullptr);
  const auto ex = test::to_double(gx), ew = test::to_double(gw), eb = test::to_double(gb);
  std::vector<double> w_and_b = ew;
  w_and_b.insert(w_and_b.end(), eb.begin(), eb.end());
  test::expect_device_backward_xwb(
      [&](float* dx, float* dw, float* db) {
        cuda::linear_backward(s, dev_x.ptr, dev_w.ptr, dev_dy.ptr, dx, dw, db);
      },
      ex, ew, eb, rtol, test::scaled_atol(rtol, ex), test::scaled_atol(rtol, w_and_b));
}

TEST_F(CudaParity, LinearMatchesCpu) {
  for (const LinearCase& c : kCases) expect_linear_parity(c.shape, c.bias, 1e-4);
}

// TF32 rounds the GEMM inputs to 10 mantissa bits: results stay within about 1e-3 of fp32.
TEST_F(CudaParity, LinearWithTf32MatchesCpuLoosely) {
#if RAISIN_CUDA_EMULATED
  GTEST_SKIP() << "TF32 is tensor-core math on a GPU; the emulated backend runs the fp32 CPU twin";
#else
  test::AllowTf32 tf32;
  expect_linear_parity({64, 512, 256}, true, 5e-3);
  expect_linear_parity({7, 33, 65}, true, 5e-3);
#endif
}

}  // namespace
}  // namespace raisin
