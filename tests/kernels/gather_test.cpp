// Tests for the CPU batch-assembly kernel gather_batch (kernels/cpu/gather.cpp) against a plain
// element-by-element reference of the contract in kernels/signatures.inc: gathering by index (with
// duplicates), per-channel normalisation, pad-and-crop offsets and flips drawn from
// philox_block(seed, stream, b), the zero padding, reproducibility, and the draw frequencies.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/philox.h"
#include "tests/support/check.h"

namespace {

using raisin::kernels::GatherShape;
using raisin::kernels::philox_block;
using raisin::kernels::Philox4;

// Seeds and streams with both 32-bit halves set, so that a kernel dropping the high words is caught.
constexpr uint64_t kSeed = 0x0123456789abcdefull, kStream = 0xfedcba9876543210ull;

struct Data {
  int count, channels, height, width;
  std::vector<uint8_t> images;
  std::vector<int32_t> labels;
  std::vector<float> mean, inv_std;
};

Data random_data(int count, int channels, int height, int width, uint64_t seed) {
  Data d{count, channels, height, width, {}, {}, {}, {}};
  const std::vector<int32_t> pixels =
      raisin::test::random_ints(size_t(count) * channels * height * width, seed, 256);
  d.images.assign(pixels.begin(), pixels.end());
  d.labels = raisin::test::random_ints(size_t(count), seed + 1, 10);
  d.mean = raisin::test::random_floats(size_t(channels), seed + 2, 0.2f, 0.6f);
  d.inv_std = raisin::test::random_floats(size_t(channels), seed + 3, 2.0f, 5.0f);
  return d;
}

// The value the contract gives a pixel byte of channel c: (p / 255 − mean[c]) · inv_std[c], in float.
float normalised(const Data& d, int c, int p) { return (float(p) / 255.0f - d.mean[c]) * d.inv_std[c]; }

struct Draw {
  int dy, dx;
  bool flip;
};

Draw draw(const GatherShape& s, uint64_t seed, uint64_t stream, int b) {
  const Philox4 r = philox_block(seed, stream, uint64_t(b));
  const uint32_t span = uint32_t(2 * s.pad + 1);
  return {int(r.v[0] % span), int(r.v[1] % span), s.flip && (r.v[2] & 1u) != 0};
}

// The contract, element by element: read the zero-padded image at (h + dy − pad, w' + dx − pad).
void reference(const GatherShape& s, const Data& d, const std::vector<int32_t>& indices, uint64_t seed,
               uint64_t stream, std::vector<float>& x, std::vector<int32_t>& y) {
  const int C = s.channels, H = s.height, W = s.width;
  x.assign(size_t(s.batch) * C * H * W, NAN);
  y.assign(size_t(s.batch), -1);
  for (int b = 0; b < s.batch; ++b) {
    const int i = indices[b];
    y[b] = d.labels[i];
    const Draw r = draw(s, seed, stream, b);
    for (int c = 0; c < C; ++c)
      for (int h = 0; h < H; ++h)
        for (int w = 0; w < W; ++w) {
          const int wp = r.flip ? W - 1 - w : w;
          const int sh = h + r.dy - s.pad, sw = wp + r.dx - s.pad;
          int pixel = 0;
          if (sh >= 0 && sh < H && sw >= 0 && sw < W) pixel = d.images[((size_t(i) * C + c) * H + sh) * W + sw];
          x[((size_t(b) * C + c) * H + h) * W + w] = normalised(d, c, pixel);
        }
  }
}

void run(const GatherShape& s, const Data& d, const std::vector<int32_t>& indices, uint64_t seed, uint64_t stream,
         std::vector<float>& x, std::vector<int32_t>& y) {
  x.assign(size_t(s.batch) * s.channels * s.height * s.width + 1, NAN);  // x.back() is a guard
  y.assign(size_t(s.batch) + 1, -7);
  const int64_t step = int64_t(stream);  // the kernel reads the step (its Philox stream) from device memory
  raisin::cpu::gather_batch(s, d.images.data(), d.labels.data(), indices.data(), d.mean.data(), d.inv_std.data(),
                            seed, &step, x.data(), y.data());
  EXPECT_TRUE(std::isnan(x.back())) << "gather_batch wrote past the end of x";
  EXPECT_EQ(y.back(), -7) << "gather_batch wrote past the end of y";
  x.pop_back();
  y.pop_back();
}

// Bitwise equality: the kernel must compute the contract's float expression exactly.
::testing::AssertionResult identical(const std::vector<float>& actual, const std::vector<float>& expected) {
  if (actual.size() != expected.size())
    return ::testing::AssertionFailure() << "sizes " << actual.size() << " vs " << expected.size();
  for (size_t k = 0; k < actual.size(); ++k)
    if (std::memcmp(&actual[k], &expected[k], sizeof(float)) != 0)
      return ::testing::AssertionFailure() << "element " << k << ": " << actual[k] << " vs expected " << expected[k];
  return ::testing::AssertionSuccess();
}

TEST(GatherBatch, WithoutAugmentationCopiesAndNormalises) {
  const Data d = random_data(20, 3, 5, 7, 11);
  const GatherShape s{6, 3, 5, 7, 0, false};
  const std::vector<int32_t> indices = {19, 0, 4, 7, 12, 3};
  std::vector<float> x, expected_x;
  std::vector<int32_t> y, expected_y;
  run(s, d, indices, kSeed, kStream, x, y);
  reference(s, d, indices, kSeed, kStream, expected_x, expected_y);
  EXPECT_TRUE(identical(x, expected_x));
  EXPECT_EQ(y, expected_y);
  // And directly: slot b is image indices[b], normalised, in place.
  const size_t image = 3 * 5 * 7;
  for (int b = 0; b < s.batch; ++b)
    for (size_t k = 0; k < image; ++k) {
      const int c = int(k / 35);
      ASSERT_EQ(x[b * image + k], normalised(d, c, d.images[indices[b] * image + k])) << "slot " << b << " k " << k;
    }
}

TEST(GatherBatch, DuplicateIndicesGiveIdenticalSlots) {
  const Data d = random_data(5, 2, 4, 4, 12);
  const GatherShape s{5, 2, 4, 4, 0, false};
  const std::vector<int32_t> indices = {3, 3, 0, 3, 0};
  std::vector<float> x;
  std::vector<int32_t> y;
  run(s, d, indices, kSeed, kStream, x, y);
  const size_t image = 2 * 4 * 4;
  const std::vector<float> slot0(x.begin(), x.begin() + image);
  for (int b : {1, 3}) EXPECT_TRUE(identical({x.begin() + b * image, x.begin() + (b + 1) * image}, slot0));
  EXPECT_TRUE(identical({x.begin() + 2 * image, x.begin() + 3 * image}, {x.begin() + 4 * image, x.end()}));
  EXPECT_EQ(y, (std::vector<int32_t>{d.labels[3], d.labels[3], d.labels[0], d.labels[3], d.labels[0]}));
}

// Crops and flips on square and non-square images, pads of 1 to 5 (one larger than the image), batches
// below and above the OpenMP threshold, seeds and streams with high words set.
TEST(GatherBatch, CropsAndFlipsMatchPhiloxFormula) {
  struct Case {
    int batch, channels, height, width, pad;
    bool flip;
  };
  for (const Case& c : {Case{64, 3, 8, 8, 4, true}, Case{33, 1, 5, 7, 2, true}, Case{40, 2, 6, 3, 1, false},
                        Case{17, 3, 4, 4, 5, true}, Case{256, 3, 32, 32, 4, true}, Case{50, 1, 28, 28, 0, true}}) {
    for (uint64_t seed : {kSeed, uint64_t(1)}) {
      for (uint64_t stream : {kStream, uint64_t(0), uint64_t(1) << 32}) {
        SCOPED_TRACE(::testing::Message() << "batch " << c.batch << " image " << c.channels << "x" << c.height << "x"
                                          << c.width << " pad " << c.pad << " flip " << c.flip << " seed " << seed
                                          << " stream " << stream);
        const Data d = random_data(c.batch + 3, c.channels, c.height, c.width, 13);
        const GatherShape s{c.batch, c.channels, c.height, c.width, c.pad, c.flip};
        std::vector<int32_t> indices = raisin::test::random_ints(size_t(c.batch), 14, c.batch + 3);
        std::vector<float> x, expected_x;
        std::vector<int32_t> y, expected_y;
        run(s, d, indices, seed, stream, x, y);
        reference(s, d, indices, seed, stream, expected_x, expected_y);
        EXPECT_TRUE(identical(x, expected_x));
        EXPECT_EQ(y, expected_y);
      }
    }
  }
}

TEST(GatherBatch, SameSeedAndStreamReproduceDifferentOnesDoNot) {
  const Data d = random_data(16, 3, 8, 8, 15);
  const GatherShape s{16, 3, 8, 8, 4, true};
  std::vector<int32_t> indices(16);
  for (int b = 0; b < 16; ++b) indices[b] = b;
  std::vector<float> a, again, other_stream, other_seed;
  std::vector<int32_t> y;
  run(s, d, indices, kSeed, kStream, a, y);
  run(s, d, indices, kSeed, kStream, again, y);
  run(s, d, indices, kSeed, kStream + 1, other_stream, y);
  run(s, d, indices, kSeed + 1, kStream, other_seed, y);
  EXPECT_TRUE(identical(a, again));
  EXPECT_NE(a, other_stream);
  EXPECT_NE(a, other_seed);
}

// A uniform image makes the padding visible: an element is the pad value exactly where the shifted read
// falls outside the image, and that value is (0 − mean[c]) · inv_std[c].
TEST(GatherBatch, PaddingReadsPixelZero) {
  const int C = 2, H = 6, W = 6, pad = 3, batch = 200;
  Data d = random_data(1, C, H, W, 16);
  std::fill(d.images.begin(), d.images.end(), uint8_t(200));
  const GatherShape s{batch, C, H, W, pad, true};
  const std::vector<int32_t> indices(batch, 0);
  std::vector<float> x;
  std::vector<int32_t> y;
  run(s, d, indices, kSeed, kStream, x, y);
  int padded_slots = 0;
  for (int b = 0; b < batch; ++b) {
    const Draw r = draw(s, kSeed, kStream, b);
    padded_slots += (r.dy != pad || r.dx != pad);
    for (int c = 0; c < C; ++c) {
      const float pad_value = (0.0f - d.mean[c]) * d.inv_std[c];
      for (int h = 0; h < H; ++h)
        for (int w = 0; w < W; ++w) {
          const int wp = r.flip ? W - 1 - w : w;
          const bool outside = h + r.dy - pad < 0 || h + r.dy - pad >= H || wp + r.dx - pad < 0 || wp + r.dx - pad >= W;
          const float v = x[((size_t(b) * C + c) * H + h) * W + w];
          ASSERT_EQ(v, outside ? pad_value : normalised(d, c, 200)) << "slot " << b << " c " << c << " h " << h << " w " << w;
        }
    }
  }
  EXPECT_GT(padded_slots, batch / 2);  // most draws shift the image
}

// With pad 0 a flip is an exact mirror, taken with probability ≈ 1/2; crop offsets are uniform.
TEST(GatherBatch, FlipMirrorsWithFrequencyOneHalfAndOffsetsAreUniform) {
  const int W = 5, H = 3, batch = 8192;
  Data d = random_data(1, 1, H, W, 17);
  for (int h = 0; h < H; ++h)
    for (int w = 0; w < W; ++w) d.images[h * W + w] = uint8_t(10 * w + h);  // no two columns alike
  const std::vector<int32_t> indices(batch, 0);
  std::vector<float> x;
  std::vector<int32_t> y;
  run(GatherShape{batch, 1, H, W, 0, true}, d, indices, kSeed, kStream, x, y);
  int flips = 0;
  for (int b = 0; b < batch; ++b) {
    const bool flipped = x[size_t(b) * H * W] == normalised(d, 0, d.images[W - 1]);
    flips += flipped;
    for (int h = 0; h < H; ++h)
      for (int w = 0; w < W; ++w)
        ASSERT_EQ(x[(size_t(b) * H + h) * W + w], normalised(d, 0, d.images[h * W + (flipped ? W - 1 - w : w)]));
  }
  // Binomial(8192, 1/2): the standard deviation is 45, so ±400 is about 9 sigma.
  EXPECT_NEAR(flips, batch / 2, 400);

  // Offsets: each of the 2·pad + 1 values about equally often, for dy and dx.
  const GatherShape s{batch, 1, H, W, 2, false};
  std::vector<int> dy_counts(5, 0), dx_counts(5, 0);
  for (int b = 0; b < batch; ++b) {
    const Draw r = draw(s, kSeed, kStream, b);
    ++dy_counts[r.dy], ++dx_counts[r.dx];
    EXPECT_FALSE(r.flip);
  }
  for (int k = 0; k < 5; ++k) {
    EXPECT_NEAR(dy_counts[k], batch / 5, 250) << "dy = " << k;
    EXPECT_NEAR(dx_counts[k], batch / 5, 250) << "dx = " << k;
  }
  // flip = false never flips, whatever v[2] says.
  run(GatherShape{batch, 1, H, W, 0, false}, d, indices, kSeed, kStream, x, y);
  for (int b = 0; b < batch; ++b) ASSERT_EQ(x[size_t(b) * H * W], normalised(d, 0, d.images[0]));
}

}  // namespace
