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

// A seed and a stream ((step << 20) + call) with both 32-bit halves set, so that a kernel dropping the
// high words is caught.
constexpr uint64_t kSeed = 0x123456789abcdef0ull;
constexpr int64_t kTrainingStep = 0xfedcba9876;
constexpr uint32_t kCall = 3;

// Sizes around the four-element Philox groups and the 256-thread blocks, and a partial last block.
const int64_t kSizes[] = {1, 3, 4, 5, 1023, 1024, 1029, 100003};
const float kRates[] = {0.0f, 0.1f, 0.5f, 0.9f};

TEST_F(CudaParity, DropoutForwardMatchesCpuBitForBit) {
  for (int64_t n : kSizes)
    for (float p : kRates) {
      SCOPED_TRACE(::testing::Message() << "n=" << n << " p=" << p);
      const std::vector<float> x = random_floats(n, uint64_t(n), 0.5f, 1.5f);  // nonzero: 0 means dropped
      std::vector<float> expected(n);
      cpu::dropout_forward(n, p, kSeed, &kTrainingStep, kCall, x.data(), expected.data());
      DeviceBuffer<float> dev_x(x), dev_y(n);
      DeviceBuffer<int64_t> dev_step(std::vector<int64_t>{kTrainingStep});
      cuda::dropout_forward(n, p, kSeed, dev_step.ptr, kCall, dev_x.ptr, dev_y.ptr);
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
  struct Key {
    uint64_t seed;
    int64_t step;
    uint32_t call;
  };
  const Key keys[] = {{kSeed, kTrainingStep, kCall},
                      {kSeed + 1, kTrainingStep, kCall},
                      {kSeed, kTrainingStep, kCall + 1},
                      {kSeed, kTrainingStep + 1, kCall},
                      {kSeed, kTrainingStep ^ (int64_t(1) << 20), kCall}};
  for (const Key& key : keys) {
    std::vector<float> expected(n);
    cpu::dropout_forward(n, 0.5f, key.seed, &key.step, key.call, x.data(), expected.data());
    DeviceBuffer<int64_t> dev_step(std::vector<int64_t>{key.step});
    cuda::dropout_forward(n, 0.5f, key.seed, dev_step.ptr, key.call, dev_x.ptr, dev_y.ptr);
    EXPECT_TRUE(all_close("dropout y", dev_y.host(), to_double(expected), 0, 0))
        << "seed " << key.seed << " step " << key.step << " call " << key.call;
  }
}

TEST_F(CudaParity, DropoutBackwardAccumulatesAsCpu) {
  for (int64_t n : kSizes)
    for (float p : kRates) {
      SCOPED_TRACE(::testing::Message() << "n=" << n << " p=" << p);
      const std::vector<float> dy = random_floats(n, uint64_t(n) + 1);
      DeviceBuffer<float> dev_dy(dy);
      DeviceBuffer<int64_t> dev_step(std::vector<int64_t>{kTrainingStep});
      const std::vector<float> zeros(n, 0.0f), before = random_floats(n, uint64_t(n) + 2);
      for (const std::vector<float>* start : {&zeros, &before}) {
        std::vector<float> expected = *start;
        cpu::dropout_backward(n, p, kSeed, &kTrainingStep, kCall, dy.data(), expected.data());
        DeviceBuffer<float> dev_dx(*start);
        cuda::dropout_backward(n, p, kSeed, dev_step.ptr, kCall, dev_dy.ptr, dev_dx.ptr);
        const double tolerance = start == &zeros ? 0.0 : 1e-6;
        EXPECT_TRUE(all_close("dropout dx", dev_dx.host(), to_double(expected), tolerance, tolerance));
      }
    }
}

}  // namespace
}  // namespace raisin
