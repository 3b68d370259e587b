// CUDA parity for the per-channel bias kernels and reduce_sum (kernels/cuda/bias.cu) against their CPU
// twins. Tolerances: the forward kernels do the same single float addition as the CPU, so they must
// agree exactly; the sums (GPU: float partial sums per thread, then fixed trees within a block and
// across a channel's chunks; CPU: one double sum) must agree within 1e-6 · Σ|terms| (about 16 float
// roundings of the largest possible partial sum). Bit equality would need the GPU to follow the CPU's
// sequential double sum, one thread per channel; the GPU's order is fixed instead, so its own runs
// are bit-identical (tested below).
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/memory.h"
#include "tests/cuda/parity.h"
#include "tests/support/check.h"
#include "tests/support/shapes.h"

namespace raisin {
namespace {

using kernels::ImageShape;
using test::all_close;
using test::random_floats;
using test::to_double;
using test::name;

// Batch 1, spatial 1 (a linear layer's [batch, features]), channel counts that are not multiples of
// 32, planes shorter and longer than a block, and a tensor large enough for several blocks.
// ({3, 7, 4, 4}, {2, 3, 64, 64}: planes read in 16-byte packs; {2, 3, 64, 64}: 1024-thread blocks in
// backward.)
const ImageShape kShapes[] = {{1, 1, 1, 1},  {3, 5, 7, 1},   {2, 37, 9, 11}, {130, 10, 1, 1},
                              {4, 33, 1, 1}, {1, 3, 33, 35}, {3, 7, 4, 4},   {2, 3, 64, 64}};

// Shapes whose channels the backward sum splits into several chunks (kernels/cuda/channel_chunks.cuh),
// with the chunks per channel: LeNet-5's conv1 and conv2 and ResNet-20's first stage at batch 128
// (49, 6 and 32), 13 channels of odd 7×7 planes (3, chunks starting inside planes), batch 1 (4,
// chunks inside the one plane), one channel with more chunks than a block has threads (260), and
// spatial 1, a linear layer's [batch, features], where a chunk spans many rows (2 of 2052 and 2047).
const ImageShape kSplitShapes[] = {{128, 6, 28, 28}, {128, 16, 10, 10}, {128, 16, 32, 32}, {128, 13, 7, 7},
                                   {1, 3, 100, 99},  {130, 1, 64, 64},  {4099, 10, 1, 1}};

// A device copy of v that starts `offset` floats into its buffer: offset 1 puts the tensor off the
// 16-byte alignment that packed loads need, so the kernels must fall back to single values.
struct OffsetBuffer {
  DeviceBuffer<float> buffer;
  int offset;
  OffsetBuffer(const std::vector<float>& v, int offset_) : buffer(padded(v, offset_)), offset(offset_) {}
  float* ptr() const { return buffer.ptr + offset; }
  std::vector<float> host() const {
    const std::vector<float> all = buffer.host();
    return {all.begin() + offset, all.end()};
  }
  static std::vector<float> padded(const std::vector<float>& v, int offset) {
    std::vector<float> out(size_t(offset), 0.0f);
    out.insert(out.end(), v.begin(), v.end());
    return out;
  }
};

TEST_F(CudaParity, BiasAddAndFusedReluForwardMatchCpu) {
  for (const ImageShape& s : kShapes)
    for (int offset : {0, 1}) {
      SCOPED_TRACE(name(s) + " offset " + std::to_string(offset));
      auto y0 = random_floats(s.numel(), 1, -2.0f, 2.0f);
      y0[0] = NAN;  // a NaN stays NaN
      const auto b = random_floats(s.channels, 2);
      const DeviceBuffer<float> dev_b(b);

      auto add = y0, relu = y0;
      cpu::bias_add_forward(s, b.data(), add.data());
      cpu::bias_relu_forward(s, b.data(), relu.data());
      OffsetBuffer dev_add(y0, offset), dev_relu(y0, offset);
      cuda::bias_add_forward(s, dev_b.ptr, dev_add.ptr());
      cuda::bias_relu_forward(s, dev_b.ptr, dev_relu.ptr());
      std::vector<float> got_add = dev_add.host(), got_relu = dev_relu.host();
      EXPECT_TRUE(std::isnan(got_add[0]) && std::isnan(got_relu[0]));
      got_add[0] = got_relu[0] = add[0] = relu[0] = 0.0f;
      EXPECT_TRUE(all_close("bias add", got_add, to_double(add), 0, 0));
      EXPECT_TRUE(all_close("bias relu", got_relu, to_double(relu), 0, 0));
    }
}

TEST_F(CudaParity, BiasBackwardAccumulatesLikeCpu) {
  std::vector<ImageShape> shapes(std::begin(kShapes), std::end(kShapes));
  shapes.insert(shapes.end(), std::begin(kSplitShapes), std::end(kSplitShapes));
  for (const ImageShape& s : shapes)
    for (int offset : {0, 1}) {
      SCOPED_TRACE(name(s) + " offset " + std::to_string(offset));
      const auto dy = random_floats(s.numel(), 3), db0 = random_floats(s.channels, 4);
      double max_abs_sum = 0;  // the largest Σ|dy| of a channel
      for (int c = 0; c < s.channels; ++c) {
        double abs_sum = 0;
        for (int n = 0; n < s.batch; ++n)
          for (int64_t i = 0; i < s.spatial(); ++i)
            abs_sum += std::abs(dy[(int64_t(n) * s.channels + c) * s.spatial() + i]);
        max_abs_sum = std::max(max_abs_sum, abs_sum);
      }
      auto expect = db0;  // pre-filled: the kernel adds to it
      cpu::bias_add_backward(s, dy.data(), expect.data());
      const OffsetBuffer dev_dy(dy, offset);
      DeviceBuffer<float> dev_db(db0);
      cuda::bias_add_backward(s, dev_dy.ptr(), dev_db.ptr);
      cuda::bias_add_backward(s, dev_dy.ptr(), nullptr);  // a null gradient is skipped
      EXPECT_TRUE(all_close("bias backward", dev_db.host(), to_double(expect), 0, 1e-6 * max_abs_sum));
    }
}

// A channel's chunks are combined in a fixed order and without atomics, so a second run gives the same
// bits although the blocks run in another order.
TEST_F(CudaParity, BiasBackwardRunsAreBitIdentical) {
  for (const ImageShape& s : kSplitShapes) {
    SCOPED_TRACE(name(s));
    const DeviceBuffer<float> dev_dy(random_floats(s.numel(), 6));
    auto run = [&] {
      DeviceBuffer<float> db(std::vector<float>(size_t(s.channels), 0.5f));
      cuda::bias_add_backward(s, dev_dy.ptr, db.ptr);
      std::vector<uint32_t> bits;
      for (float v : db.host()) bits.push_back(std::bit_cast<uint32_t>(v));
      return bits;
    };
    const auto first = run();
    for (int again = 0; again < 3; ++again) EXPECT_TRUE(run() == first) << "run " << again + 2 << " differs";
  }
}

// The partial sums' scratch memory comes from the caching allocator and goes back to it: once a first
// call has filled the cache, further calls make no cudaMalloc and hold no memory.
TEST_F(CudaParity, BiasBackwardScratchIsCachedAndReleased) {
  const ImageShape s{128, 13, 7, 7};
  const DeviceBuffer<float> dy(random_floats(s.numel(), 7));
  DeviceBuffer<float> db(size_t(s.channels));
  cuda::bias_add_backward(s, dy.ptr, db.ptr);
  const cuda::AllocatorStats before = cuda::device_allocator().stats();
  for (int i = 0; i < 3; ++i) cuda::bias_add_backward(s, dy.ptr, db.ptr);
  const cuda::AllocatorStats after = cuda::device_allocator().stats();
  EXPECT_EQ(after.device_mallocs, before.device_mallocs);
  EXPECT_EQ(after.bytes_in_use, before.bytes_in_use);
}

TEST_F(CudaParity, ReduceSumMatchesCpuAndOverwrites) {
  // 0 (the sum of nothing), one element, around the single block's 1024 threads and its rounds of
  // 4096 packs, many rounds; n % 4 = 1, 3 and 3 leave a tail after the packs
  for (int64_t n : {0, 1, 1023, 1025, 4097, 100003})
    for (int offset : {0, 1}) {
      SCOPED_TRACE(::testing::Message() << "n " << n << " offset " << offset);
      const auto x = random_floats(size_t(n), 5);
      double abs_sum = 0;
      for (float v : x) abs_sum += std::abs(v);
      float expect = 0;
      cpu::reduce_sum(n, x.data(), &expect);
      const OffsetBuffer dev_x(x, offset);
      DeviceBuffer<float> dev_out(1);
      cuda::reduce_sum(n, dev_x.ptr(), dev_out.ptr);
      EXPECT_TRUE(all_close("reduce_sum", dev_out.host(), {double(expect)}, 0, 1e-6 * abs_sum));
    }
}

}  // namespace
}  // namespace raisin
