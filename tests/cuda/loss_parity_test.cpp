// CUDA parity for the fused softmax-cross-entropy kernels (kernels/cuda/loss.cu) against their CPU
// twins: random logits with and without weights and proxy norms, batch 1, classes 1, 10 and 1000
// (one warp per example) and beyond 1024 (one block per example), huge and confident logits, an
// invalid label (CUDA only: NaN outputs instead of an out-of-bounds read), and the accumulating
// backward with a device scalar upstream gradient.
// Tolerances: the GPU works in float (expf, float sums in a tree), the CPU in double: example_loss,
// proxy_norm and mean_loss rtol 1e-5 with atol 1e-6; dlogits rtol 1e-5 with atol 1e-7/batch (its
// entries are probabilities divided by batch); the backward rtol 1e-6 (one rounding apart).
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/kernels.h"
#include "tests/cuda/parity.h"
#include "tests/support/check.h"
#include "tests/support/shapes.h"

namespace raisin {
namespace {

using kernels::LossShape;
using test::all_close;
using test::random_floats;
using test::random_ints;
using test::to_double;
using test::name;

struct Output {
  std::vector<float> example_loss, dlogits, proxy_norm;  // proxy_norm empty: not asked for
  float mean_loss = NAN;
};

Output cpu_forward(const LossShape& s, const std::vector<float>& logits, const std::vector<int32_t>& labels,
                   const std::vector<float>& weights /* empty: null */, bool want_proxy) {
  Output o;
  o.example_loss.assign(s.batch, NAN);
  o.dlogits.assign(size_t(s.batch) * s.classes, NAN);
  if (want_proxy) o.proxy_norm.assign(s.batch, NAN);
  cpu::softmax_cross_entropy_forward(s, logits.data(), labels.data(), weights.empty() ? nullptr : weights.data(),
                                     o.example_loss.data(), &o.mean_loss, o.dlogits.data(),
                                     want_proxy ? o.proxy_norm.data() : nullptr);
  return o;
}

Output cuda_forward(const LossShape& s, const std::vector<float>& logits, const std::vector<int32_t>& labels,
                    const std::vector<float>& weights /* empty: null */, bool want_proxy) {
  const DeviceBuffer<float> dev_logits(logits), dev_weights(weights.empty() ? std::vector<float>(1) : weights);
  const DeviceBuffer<int32_t> dev_labels(labels);
  DeviceBuffer<float> loss{std::vector<float>(s.batch, NAN)}, mean{std::vector<float>{NAN}},
      dlogits{std::vector<float>(size_t(s.batch) * s.classes, NAN)}, norm{std::vector<float>(s.batch, NAN)};
  cuda::softmax_cross_entropy_forward(s, dev_logits.ptr, dev_labels.ptr, weights.empty() ? nullptr : dev_weights.ptr,
                                      loss.ptr, mean.ptr, dlogits.ptr, want_proxy ? norm.ptr : nullptr);
  Output o{loss.host(), dlogits.host(), {}, mean.host()[0]};
  if (want_proxy) o.proxy_norm = norm.host();
  return o;
}

void expect_parity(const LossShape& s, const std::vector<float>& logits, const std::vector<int32_t>& labels,
                   const std::vector<float>& weights, bool want_proxy) {
  const Output want = cpu_forward(s, logits, labels, weights, want_proxy);
  const Output got = cuda_forward(s, logits, labels, weights, want_proxy);
  EXPECT_TRUE(all_close("example_loss", got.example_loss, to_double(want.example_loss), 1e-5, 1e-6));
  EXPECT_TRUE(all_close("dlogits", got.dlogits, to_double(want.dlogits), 1e-5, 1e-7 / s.batch));
  EXPECT_TRUE(all_close("proxy_norm", got.proxy_norm, to_double(want.proxy_norm), 1e-5, 1e-6));
  EXPECT_TRUE(all_close("mean_loss", {got.mean_loss}, {double(want.mean_loss)}, 1e-5, 1e-6));
}

// {2, 1024}: the largest one-warp case; {2, 1025} and {3, 3000}: one block per example.
const std::vector<LossShape> kShapes = {{1, 1},    {1, 2},    {7, 10},    {33, 10},  {5, 1000},
                                        {2, 1024}, {2, 1025}, {3, 3000}, {300, 4}};

TEST_F(CudaParity, CrossEntropyForwardMatchesCpu) {
  uint64_t seed = 10;
  for (const LossShape& s : kShapes) {
    SCOPED_TRACE(name(s));
    seed += 10;
    const auto logits = random_floats(size_t(s.batch) * s.classes, seed, -8.0f, 8.0f);
    const auto labels = random_ints(s.batch, seed + 1, s.classes);
    const auto weights = random_floats(s.batch, seed + 2, 0.2f, 3.0f);
    for (bool weighted : {false, true})
      for (bool want_proxy : {true, false}) {
        SCOPED_TRACE(::testing::Message() << (weighted ? "weighted" : "weights null")
                                          << (want_proxy ? "" : ", proxy_norm null"));
        expect_parity(s, logits, labels, weighted ? weights : std::vector<float>{}, want_proxy);
      }
  }
}

// Ties for the max, confident predictions (loss ≈ 4e^{−30}, 4e^{−40}, 4e^{−60}: kept to relative
// accuracy only with log1p and Σ_{j≠y} e_j; e^{−60}² underflows in float, so the norm needs its
// scaling), logits near ±FLT_MAX, and constant rows.
TEST_F(CudaParity, CrossEntropyForwardExtremeLogitsMatchCpu) {
  const float big = 3e38f, mid = 1e38f;
  const LossShape s{11, 5};
  const std::vector<float> logits = {
      30,    0,     0,     0,     0,     //
      0,     0,     0,     0,     40,    //
      60,    0,     0,     0,     0,     //
      1e4f,  1e4f,  1e4f - 1, 1e4f - 2, 1e4f,  //
      -1e4f, -1e4f, -1e4f, -1e4f, -1e4f,  //
      big,   -big,  -big,  -big,  -big,  //
      big,   mid,   -big,  -big,  -big,  //
      big,   big,   big,   big,   big,   //
      -big,  -big,  -big,  -big,  -big,  //
      -big,  big,   big,   -big,  -big,  //
      0,     200,   0,     0,     0,     //
  };
  const std::vector<int32_t> labels = {0, 4, 0, 1, 2, 0, 1, 2, 0, 1, 0};
  const auto weights = random_floats(s.batch, 3, 0.2f, 3.0f);
  for (bool weighted : {false, true}) {
    SCOPED_TRACE(weighted ? "weighted" : "weights null");
    const Output want = cpu_forward(s, logits, labels, weighted ? weights : std::vector<float>{}, true);
    const Output got = cuda_forward(s, logits, labels, weighted ? weights : std::vector<float>{}, true);
    EXPECT_TRUE(all_close("example_loss", got.example_loss, to_double(want.example_loss), 1e-5, 0));
    EXPECT_TRUE(all_close("dlogits", got.dlogits, to_double(want.dlogits), 1e-5, 1e-30));
    EXPECT_TRUE(all_close("proxy_norm", got.proxy_norm, to_double(want.proxy_norm), 1e-5, 1e-30));
    EXPECT_TRUE(all_close("mean_loss", {got.mean_loss}, {double(want.mean_loss)}, 1e-5, 0));
  }
}

// A label outside [0, classes) cannot be checked on the host without waiting for the GPU; the kernel
// marks the example's outputs NaN (and so the mean) and leaves the other examples intact.
TEST_F(CudaParity, CrossEntropyInvalidLabelGivesNaN) {
  for (const LossShape& s : {LossShape{3, 10}, LossShape{3, 2000}}) {
    SCOPED_TRACE(name(s));
    const auto logits = random_floats(size_t(s.batch) * s.classes, 7);
    const std::vector<int32_t> labels = {1, s.classes, 0}, valid = {1, 0, 0};
    const Output got = cuda_forward(s, logits, labels, {}, true);
    const Output want = cpu_forward(s, logits, valid, {}, true);
    EXPECT_TRUE(std::isnan(got.mean_loss));
    for (int i = 0; i < s.batch; ++i) {
      EXPECT_EQ(std::isnan(got.example_loss[i]), i == 1) << i;
      EXPECT_EQ(std::isnan(got.proxy_norm[i]), i == 1) << i;
      for (int j = 0; j < s.classes; ++j) {
        const size_t k = size_t(i) * s.classes + j;
        if (i == 1) {
          EXPECT_TRUE(std::isnan(got.dlogits[k])) << i << "," << j;
        } else {
          EXPECT_NEAR(got.dlogits[k], want.dlogits[k], 1e-5 * std::abs(want.dlogits[k]) + 1e-7 / s.batch);
        }
      }
    }
  }
}

TEST_F(CudaParity, CrossEntropyBackwardScalesAndAccumulatesLikeCpu) {
  for (const LossShape& s : {LossShape{1, 1}, LossShape{6, 9}, LossShape{70, 1000}}) {
    SCOPED_TRACE(name(s));
    const size_t n = size_t(s.batch) * s.classes;
    const auto dlogits = random_floats(n, 51), pre = random_floats(n, 52);
    const float dmean = 0.37f;
    auto expect = pre;
    cpu::softmax_cross_entropy_backward(s, &dmean, dlogits.data(), expect.data());
    const DeviceBuffer<float> dev_dmean{std::vector<float>{dmean}}, dev_dlogits(dlogits);
    DeviceBuffer<float> dev_out(pre);
    cuda::softmax_cross_entropy_backward(s, dev_dmean.ptr, dev_dlogits.ptr, dev_out.ptr);
    cuda::softmax_cross_entropy_backward(s, dev_dmean.ptr, dev_dlogits.ptr, nullptr);  // skipped
    EXPECT_TRUE(all_close("dlogits_out", dev_out.host(), to_double(expect), 1e-6, 1e-7));
  }
}

}  // namespace
}  // namespace raisin
