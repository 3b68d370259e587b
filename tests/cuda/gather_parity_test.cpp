// CUDA parity for batch assembly (kernels/cuda/gather.cu against kernels/cpu/gather.cpp): gathering by
// index with duplicates, the Philox pad-and-crop and flip draws of each slot, the zero padding and the
// per-channel normalisation. Both backends do the same float operations, so images and labels must
// agree bit for bit.
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

using kernels::GatherShape;
using test::all_close;
using test::to_double;

constexpr int kCount = 10;  // images in the dataset; batches draw from them with duplicates

// Fields: batch, channels, height, width, pad, flip. Batch 1 and a 1x1 image, plain copies, crops only,
// flips only, a pad wider than half the image, and CIFAR-sized images of more than one block each.
const GatherShape kShapes[] = {
    {1, 1, 1, 1, 0, false}, {6, 3, 5, 7, 0, false}, {5, 2, 4, 4, 2, true}, {3, 1, 9, 13, 0, true},
    {4, 3, 6, 5, 4, false}, {1, 2, 3, 3, 1, true},  {7, 3, 32, 32, 4, true},
};

// Seeds and streams with both 32-bit halves set, so that a kernel dropping the high words is caught.
const std::pair<uint64_t, uint64_t> kSeedStreams[] = {{0x0123456789abcdefull, 0xfedcba9876543210ull},
                                                      {0x0123456789abcdefull, 0xfedcba9876543211ull},
                                                      {17, 0}};

TEST_F(CudaParity, GatherBatchMatchesCpuBitForBit) {
  uint64_t seed = 1;
  for (const GatherShape& s : kShapes) {
    SCOPED_TRACE(::testing::Message() << "batch " << s.batch << " image " << s.channels << "x" << s.height << "x"
                                      << s.width << " pad " << s.pad << " flip " << s.flip);
    const size_t image = size_t(s.channels) * s.height * s.width;
    const std::vector<int32_t> pixels = test::random_ints(kCount * image, ++seed, 256);
    const std::vector<uint8_t> images(pixels.begin(), pixels.end());
    const std::vector<int32_t> labels = test::random_ints(kCount, ++seed, 1000);
    const std::vector<int32_t> indices = test::random_ints(s.batch, ++seed, kCount);
    const std::vector<float> mean = test::random_floats(s.channels, ++seed, 0.2f, 0.6f);
    const std::vector<float> inv_std = test::random_floats(s.channels, ++seed, 2.0f, 5.0f);
    DeviceBuffer<uint8_t> dev_images(images);
    DeviceBuffer<int32_t> dev_labels(labels), dev_indices(indices);
    DeviceBuffer<float> dev_mean(mean), dev_inv_std(inv_std);
    for (const auto& [philox_seed, stream] : kSeedStreams) {
      SCOPED_TRACE(::testing::Message() << "seed " << philox_seed << " stream " << stream);
      std::vector<float> expected_x(s.batch * image);
      std::vector<int32_t> expected_y(s.batch);
      const int64_t step = int64_t(stream);
      cpu::gather_batch(s, images.data(), labels.data(), indices.data(), mean.data(), inv_std.data(), philox_seed,
                        &step, expected_x.data(), expected_y.data());
      DeviceBuffer<int64_t> dev_step(std::vector<int64_t>{step});
      DeviceBuffer<float> dev_x(s.batch * image);  // poisoned until written
      DeviceBuffer<int32_t> dev_y(s.batch);
      cuda::gather_batch(s, dev_images.ptr, dev_labels.ptr, dev_indices.ptr, dev_mean.ptr, dev_inv_std.ptr,
                         philox_seed, dev_step.ptr, dev_x.ptr, dev_y.ptr);
      EXPECT_TRUE(all_close("x", dev_x.host(), to_double(expected_x), 0, 0));
      EXPECT_EQ(dev_y.host(), expected_y);
    }
  }
}

}  // namespace
}  // namespace raisin
