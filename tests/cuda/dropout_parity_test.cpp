// CUDA parity for dropout (kernels/cuda/dropout.cu against kernels/cpu/dropout.cpp): both draw the keep
// decisions from the same Philox stream, so the forward outputs (mask and scaled values) must agree bit
// for bit, and so must the backward into a zeroed gradient; into a pre-filled gradient nvcc may fuse
// dy · scale + dx into one fma, hence a tolerance of a rounding there.
#include <gtest/gtest.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/kernels.h"
#include "tests/cuda/parity.h"
#include "tests/support/check.h"

namespace raisin {
namespace {

using test::all_close;
using test::random_floats;
using test::to_double;

// Seeds and streams with both 32-bit halves set, so that a kernel dropping the high words is caught.
constexpr uint64_t kSeed = 0x123456789abcdef0ull, kStream = 0xfedcba9876543210ull;

// Sizes around the four-element Philox groups and the 256-thread blocks, and a partial last block.
const int64_t kSizes[] = {1, 3, 4, 5, 1023, 1024, 1029, 100003};
const float kRates[] = {0.0f, 0.1f, 0.5f, 0.9f};

TEST_F(CudaParity, DropoutForwardMatchesCpuBitForBit) {
  for (int64_t n : kSizes)
    for (float p : kRates) {
      SCOPED_TRACE(::testing::Message() << "n=" << n << " p=" << p);
      const std::vector<float> x = random_floats(n, uint64_t(n), 0.5f, 1.5f);  // nonzero: 0 means dropped
      std::vector<float> expected(n);
      cpu::dropout_forward(n, p, kSeed, kStream, x.data(), expected.data());
      DeviceBuffer<float> dev_x(x), dev_y(n);
      cuda::dropout_forward(n, p, kSeed, kStream, dev_x.ptr, dev_y.ptr);
      const std::vector<float> actual = dev_y.host();
      EXPECT_TRUE(all_close("dropout y", actual, to_double(expected), 0, 0));
      if (n == 100003) {  // the comparison means something only if the mask is not trivial
        int64_t dropped = 0;
        for (float v : actual) dropped += v == 0.0f;
        EXPECT_NEAR(double(dropped) / double(n), p, 0.01);
      }
    }
}

TEST_F(CudaParity, DropoutMaskFollowsSeedAndStreamAsCpu) {
  const int64_t n = 4099;
  const std::vector<float> x = random_floats(n, 7, 0.5f, 1.5f);
  DeviceBuffer<float> dev_x(x), dev_y(n);
  const std::pair<uint64_t, uint64_t> seed_streams[] = {
      {kSeed, kStream}, {kSeed + 1, kStream}, {kSeed, kStream + 1}, {kSeed, kStream ^ (uint64_t(1) << 40)}};
  for (const auto& [seed, stream] : seed_streams) {
    std::vector<float> expected(n);
    cpu::dropout_forward(n, 0.5f, seed, stream, x.data(), expected.data());
    cuda::dropout_forward(n, 0.5f, seed, stream, dev_x.ptr, dev_y.ptr);
    EXPECT_TRUE(all_close("dropout y", dev_y.host(), to_double(expected), 0, 0))
        << "seed " << seed << " stream " << stream;
  }
}

TEST_F(CudaParity, DropoutBackwardAccumulatesAsCpu) {
  for (int64_t n : kSizes)
    for (float p : kRates) {
      SCOPED_TRACE(::testing::Message() << "n=" << n << " p=" << p);
      const std::vector<float> dy = random_floats(n, uint64_t(n) + 1);
      DeviceBuffer<float> dev_dy(dy);
      const std::vector<float> zeros(n, 0.0f), before = random_floats(n, uint64_t(n) + 2);
      for (const std::vector<float>* start : {&zeros, &before}) {
        std::vector<float> expected = *start;
        cpu::dropout_backward(n, p, kSeed, kStream, dy.data(), expected.data());
        DeviceBuffer<float> dev_dx(*start);
        cuda::dropout_backward(n, p, kSeed, kStream, dev_dy.ptr, dev_dx.ptr);
        const double tolerance = start == &zeros ? 0.0 : 1e-6;
        EXPECT_TRUE(all_close("dropout dx", dev_dx.host(), to_double(expected), tolerance, tolerance));
      }
    }
}

}  // namespace
}  // namespace raisin
