// CUDA parity for the batchnorm2d kernels (kernels/cuda/batchnorm.cu) against their CPU twins, on
// random inputs with per-channel offsets and spreads, negative scales, odd shapes, batch 1, spatial 1,
// a single value per channel, channels of more values than a block has threads, channels split over
// several blocks, and a channel whose mean is large compared to its spread; and the same outputs bit
// for bit from run to run.
// Tolerances (the GPU sums in float per thread, then in a tree per block and over a channel's blocks,
// the CPU in float blocks added in double): outputs and statistics rtol 1e-5 with atol 1e-5 (y, dx; values of order 1) or 1e-6 (mean,
// running mean); the channel sums dgamma and dbeta atol 1e-6 · Σ|terms| over the channel.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <cstdint>
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
using test::at;

struct Problem {
  ImageShape s;
  std::vector<float> x, gamma, beta, running_mean, running_var, dy;
};

Problem make_problem(const ImageShape& s, uint64_t seed) {
  Problem p{s, {}, {}, {}, {}, {}, {}};
  const size_t c = size_t(s.channels);
  const auto offset = random_floats(c, seed + 1, -2.0f, 2.0f);
  const auto spread = random_floats(c, seed + 2, 0.5f, 3.0f);
  p.x = random_floats(size_t(s.numel()), seed);
  for (int b = 0; b < s.batch; ++b)
    for (int ch = 0; ch < s.channels; ++ch)
      for (int64_t i = 0; i < s.spatial(); ++i) {
        float& v = p.x[at(s, b, ch, i)];
        v = offset[ch] + spread[ch] * v;
      }
  p.gamma = random_floats(c, seed + 3, 0.5f, 2.0f);
  for (size_t k = 0; k < c; k += 2) p.gamma[k] = -p.gamma[k];
  p.beta = random_floats(c, seed + 4);
  p.running_mean = random_floats(c, seed + 5);
  p.running_var = random_floats(c, seed + 6, 0.5f, 2.0f);
  p.dy = random_floats(size_t(s.numel()), seed + 7);
  return p;
}

// The reductions split a channel of batch·spatial values over blocks of at least 2048 values, up to
// about 512 blocks in all (batchnorm.cu's Chunking): {9, 2, 29, 33} runs 4 blocks per channel, the
// last one shorter; {8, 2, 48, 48} 9; ResNet-20's first stage at batch 128, {128, 16, 32, 32}, 32;
// {128, 13, 7, 7} 3 (13 channels, planes of 49 values); {96, 3, 20, 14} 13, with chunks that start
// and end inside planes; the others (and {1, 3, 7, 7}) one. Planes of a multiple of 4 values are read
// in 16-byte packs ({2, 3, 4, 5}, {5, 37, 6, 6}, {8, 2, 48, 48}, …), the others value by value.
const std::vector<ImageShape> kShapes = {
    {2, 3, 4, 5},    {3, 5, 7, 3},   {1, 4, 3, 3},     {7, 2, 1, 1},      {4, 1, 5, 2},
    {5, 37, 6, 6},   {1, 3, 1, 1},   {33, 3, 1, 1},    {2, 2, 30, 31},    {9, 2, 29, 33},
    {8, 2, 48, 48},  {1, 3, 7, 7},   {128, 13, 7, 7},  {96, 3, 20, 14},   {128, 16, 32, 32},
};
// Alternately PyTorch's default eps and a large one that changes the result visibly.
float eps_for(size_t shape_index) { return shape_index % 2 == 0 ? 1e-5f : 0.25f; }
constexpr float kMomentum = 0.1f;

// The tolerance of the channel sums dgamma = Σ dy·x̂ and dbeta = Σ dy: 1e-6 times the largest Σ|term|
// of a channel, with x̂ = (x − mean)·invstd.
double channel_sums_atol(const Problem& p, const std::vector<float>& mean, const std::vector<double>& invstd) {
  const ImageShape& s = p.s;
  double worst = 0;
  for (int c = 0; c < s.channels; ++c) {
    double dy_sum = 0, dy_xhat_sum = 0;
    for (int b = 0; b < s.batch; ++b)
      for (int64_t i = 0; i < s.spatial(); ++i) {
        const int64_t k = at(s, b, c, i);
        dy_sum += std::abs(p.dy[k]);
        dy_xhat_sum += std::abs(double(p.dy[k]) * (p.x[k] - mean[c]) * invstd[c]);
      }
    worst = std::max({worst, dy_sum, dy_xhat_sum});
  }
  return 1e-6 * worst;
}

// Runs a (dx, dgamma, dbeta) CUDA backward on device copies of the host buffers it is given (null
// stays null) and copies the results back, so test::expect_backward_xwb can drive it.
template <typename Backward>
void on_device(const ImageShape& s, float* dx, float* dgamma, float* dbeta, Backward&& backward) {
  const size_t n = size_t(s.numel()), c = size_t(s.channels);
  DeviceBuffer<float> dev_dx(dx ? std::vector<float>(dx, dx + n) : std::vector<float>(1));
  DeviceBuffer<float> dev_dgamma(dgamma ? std::vector<float>(dgamma, dgamma + c) : std::vector<float>(1));
  DeviceBuffer<float> dev_dbeta(dbeta ? std::vector<float>(dbeta, dbeta + c) : std::vector<float>(1));
  backward(dx ? dev_dx.ptr : nullptr, dgamma ? dev_dgamma.ptr : nullptr, dbeta ? dev_dbeta.ptr : nullptr);
  if (dx) std::ranges::copy(dev_dx.host(), dx);
  if (dgamma) std::ranges::copy(dev_dgamma.host(), dgamma);
  if (dbeta) std::ranges::copy(dev_dbeta.host(), dbeta);
}

TEST_F(CudaParity, BatchNormForwardTrainMatchesCpu) {
  uint64_t seed = 100;
  for (size_t k = 0; k < kShapes.size(); ++k) {
    const ImageShape& s = kShapes[k];
    const float eps = eps_for(k);
    SCOPED_TRACE(name(s) + " eps " + std::to_string(eps));
    const Problem p = make_problem(s, seed += 10);
    const size_t n = p.x.size(), C = size_t(s.channels);

    std::vector<float> y(n), save_mean(C), save_invstd(C), rm = p.running_mean, rv = p.running_var;
    cpu::batchnorm2d_forward_train(s, eps, kMomentum, p.x.data(), p.gamma.data(), p.beta.data(), y.data(),
                                   save_mean.data(), save_invstd.data(), rm.data(), rv.data());

    const DeviceBuffer<float> dev_x(p.x), dev_gamma(p.gamma), dev_beta(p.beta);
    DeviceBuffer<float> dev_y(n), dev_mean(C), dev_invstd(C), dev_rm(p.running_mean), dev_rv(p.running_var);
    cuda::batchnorm2d_forward_train(s, eps, kMomentum, dev_x.ptr, dev_gamma.ptr, dev_beta.ptr, dev_y.ptr,
                                    dev_mean.ptr, dev_invstd.ptr, dev_rm.ptr, dev_rv.ptr);
    EXPECT_TRUE(all_close("y", dev_y.host(), to_double(y), 1e-5, 1e-5));
    EXPECT_TRUE(all_close("save_mean", dev_mean.host(), to_double(save_mean), 1e-5, 1e-6));
    EXPECT_TRUE(all_close("save_invstd", dev_invstd.host(), to_double(save_invstd), 1e-5, 0));
    EXPECT_TRUE(all_close("running_mean", dev_rm.host(), to_double(rm), 1e-5, 1e-6));
    EXPECT_TRUE(all_close("running_var", dev_rv.host(), to_double(rv), 1e-5, 0));

    // The saved and running statistics are optional outputs.
    DeviceBuffer<float> dev_y_alone(n);
    cuda::batchnorm2d_forward_train(s, eps, kMomentum, dev_x.ptr, dev_gamma.ptr, dev_beta.ptr, dev_y_alone.ptr,
                                    nullptr, nullptr, nullptr, nullptr);
    EXPECT_EQ(dev_y_alone.host(), dev_y.host());
  }
}

// A channel with a NaN or an infinity in its batch keeps its running statistics on the GPU too.
TEST_F(CudaParity, BatchNormNonFiniteChannelKeepsItsRunningStatistics) {
  const ImageShape s{4, 3, 16, 16};
  Problem p = make_problem(s, 12);
  p.x[size_t(1 * 256 + 7)] = NAN;
  p.x[size_t(2 * 768 + 2 * 256 + 3)] = std::numeric_limits<float>::infinity();
  const size_t n = p.x.size();
  std::vector<float> y(n), save_mean(3), save_invstd(3), rm = p.running_mean, rv = p.running_var;
  constexpr float kEps = 1e-5f;
  cpu::batchnorm2d_forward_train(s, kEps, kMomentum, p.x.data(), p.gamma.data(), p.beta.data(), y.data(),
                                 save_mean.data(), save_invstd.data(), rm.data(), rv.data());
  const DeviceBuffer<float> dev_x(p.x), dev_gamma(p.gamma), dev_beta(p.beta);
  DeviceBuffer<float> dev_y(n), dev_mean(3), dev_invstd(3), dev_rm(p.running_mean), dev_rv(p.running_var);
  cuda::batchnorm2d_forward_train(s, kEps, kMomentum, dev_x.ptr, dev_gamma.ptr, dev_beta.ptr, dev_y.ptr, dev_mean.ptr,
                                  dev_invstd.ptr, dev_rm.ptr, dev_rv.ptr);
  const std::vector<float> gpu_rm = dev_rm.host(), gpu_rv = dev_rv.host();
  EXPECT_TRUE(all_close("running_mean", {gpu_rm[0]}, {double(rm[0])}, 1e-5, 1e-6));
  for (size_t c : {1, 2}) {
    EXPECT_EQ(gpu_rm[c], p.running_mean[c]) << "channel " << c;
    EXPECT_EQ(gpu_rv[c], p.running_var[c]) << "channel " << c;
  }
}

// x = 1000 + 0.01·u: float E[x²] − E[x]² would lose the variance entirely, and a plain float Welford
// update would round the running mean to multiples of ulp(1000) ≈ 6e-5, 0.6% of the spread.
TEST_F(CudaParity, BatchNormForwardTrainLargeMeanSmallSpread) {
  for (const ImageShape& s : {ImageShape{4, 2, 8, 8}, ImageShape{8, 2, 48, 48}}) {
    SCOPED_TRACE(name(s));
    Problem p = make_problem(s, 7);
    for (auto& v : p.x) v = 1000.0f + 0.01f * v;
    const size_t n = p.x.size(), C = size_t(s.channels);
    std::vector<float> y(n), save_mean(C), save_invstd(C);
    cpu::batchnorm2d_forward_train(s, 1e-5f, kMomentum, p.x.data(), p.gamma.data(), p.beta.data(), y.data(),
                                   save_mean.data(), save_invstd.data(), nullptr, nullptr);
    const DeviceBuffer<float> dev_x(p.x), dev_gamma(p.gamma), dev_beta(p.beta);
    DeviceBuffer<float> dev_y(n), dev_mean(C), dev_invstd(C);
    cuda::batchnorm2d_forward_train(s, 1e-5f, kMomentum, dev_x.ptr, dev_gamma.ptr, dev_beta.ptr, dev_y.ptr,
                                    dev_mean.ptr, dev_invstd.ptr, nullptr, nullptr);
    EXPECT_TRUE(all_close("y", dev_y.host(), to_double(y), 1e-5, 1e-5));
    EXPECT_TRUE(all_close("save_mean", dev_mean.host(), to_double(save_mean), 1e-7, 0));
    EXPECT_TRUE(all_close("save_invstd", dev_invstd.host(), to_double(save_invstd), 1e-5, 0));
  }
}

TEST_F(CudaParity, BatchNormForwardInferMatchesCpu) {
  uint64_t seed = 200;
  for (size_t k = 0; k < kShapes.size(); ++k) {
    const ImageShape& s = kShapes[k];
    const float eps = eps_for(k);
    SCOPED_TRACE(name(s) + " eps " + std::to_string(eps));
    const Problem p = make_problem(s, seed += 10);
    std::vector<float> y(p.x.size());
    cpu::batchnorm2d_forward_infer(s, eps, p.x.data(), p.gamma.data(), p.beta.data(), p.running_mean.data(),
                                   p.running_var.data(), y.data());
    const DeviceBuffer<float> dev_x(p.x), dev_gamma(p.gamma), dev_beta(p.beta), dev_rm(p.running_mean),
        dev_rv(p.running_var);
    DeviceBuffer<float> dev_y(p.x.size());
    cuda::batchnorm2d_forward_infer(s, eps, dev_x.ptr, dev_gamma.ptr, dev_beta.ptr, dev_rm.ptr, dev_rv.ptr,
                                    dev_y.ptr);
    EXPECT_TRUE(all_close("y", dev_y.host(), to_double(y), 1e-5, 1e-5));
  }
}

// The CPU gradients from zero are the reference; expect_backward_xwb checks the CUDA kernel from
// zero, into pre-filled buffers (it must add) and with null gradients.
TEST_F(CudaParity, BatchNormBackwardTrainMatchesCpu) {
  uint64_t seed = 300;
  for (size_t k = 0; k < kShapes.size(); ++k) {
    const ImageShape& s = kShapes[k];
    const float eps = eps_for(k);
    SCOPED_TRACE(name(s) + " eps " + std::to_string(eps));
    const Problem p = make_problem(s, seed += 10);
    const size_t n = p.x.size(), C = size_t(s.channels);
    std::vector<float> y(n), save_mean(C), save_invstd(C);
    cpu::batchnorm2d_forward_train(s, eps, kMomentum, p.x.data(), p.gamma.data(), p.beta.data(), y.data(),
                                   save_mean.data(), save_invstd.data(), nullptr, nullptr);
    std::vector<float> dx(n, 0.0f), dgamma(C, 0.0f), dbeta(C, 0.0f);
    cpu::batchnorm2d_backward_train(s, p.x.data(), p.gamma.data(), save_mean.data(), save_invstd.data(),
                                    p.dy.data(), dx.data(), dgamma.data(), dbeta.data());

    const double atol_sums = channel_sums_atol(p, save_mean, to_double(save_invstd));

    const DeviceBuffer<float> dev_x(p.x), dev_gamma(p.gamma), dev_mean(save_mean), dev_invstd(save_invstd),
        dev_dy(p.dy);
    test::expect_backward_xwb(
        [&](float* gx, float* ggamma, float* gbeta) {
          on_device(s, gx, ggamma, gbeta, [&](float* ddx, float* ddgamma, float* ddbeta) {
            cuda::batchnorm2d_backward_train(s, dev_x.ptr, dev_gamma.ptr, dev_mean.ptr, dev_invstd.ptr, dev_dy.ptr,
                                             ddx, ddgamma, ddbeta);
          });
        },
        to_double(dx), to_double(dgamma), to_double(dbeta), 1e-5, 1e-5, atol_sums);
  }
}

TEST_F(CudaParity, BatchNormBackwardInferMatchesCpu) {
  uint64_t seed = 400;
  for (size_t k = 0; k < kShapes.size(); ++k) {
    const ImageShape& s = kShapes[k];
    const float eps = eps_for(k);
    SCOPED_TRACE(name(s) + " eps " + std::to_string(eps));
    const Problem p = make_problem(s, seed += 10);
    const size_t n = p.x.size(), C = size_t(s.channels);
    std::vector<float> dx(n, 0.0f), dgamma(C, 0.0f), dbeta(C, 0.0f);
    cpu::batchnorm2d_backward_infer(s, eps, p.x.data(), p.gamma.data(), p.running_mean.data(),
                                    p.running_var.data(), p.dy.data(), dx.data(), dgamma.data(), dbeta.data());

    std::vector<double> invstd(C);
    for (size_t c = 0; c < C; ++c) invstd[c] = 1.0 / std::sqrt(double(p.running_var[c]) + eps);
    const double atol_sums = channel_sums_atol(p, p.running_mean, invstd);

    const DeviceBuffer<float> dev_x(p.x), dev_gamma(p.gamma), dev_rm(p.running_mean), dev_rv(p.running_var),
        dev_dy(p.dy);
    test::expect_backward_xwb(
        [&](float* gx, float* ggamma, float* gbeta) {
          on_device(s, gx, ggamma, gbeta, [&](float* ddx, float* ddgamma, float* ddbeta) {
            cuda::batchnorm2d_backward_infer(s, eps, dev_x.ptr, dev_gamma.ptr, dev_rm.ptr, dev_rv.ptr, dev_dy.ptr,
                                             ddx, ddgamma, ddbeta);
          });
        },
        to_double(dx), to_double(dgamma), to_double(dbeta), 1e-5, 1e-5, atol_sums);
  }
}

// Tensors that start one float past a 16-byte boundary cannot be read in 16-byte packs, whatever
// their plane size: the kernels fall back to single values and still match.
TEST_F(CudaParity, BatchNormMisalignedTensorsMatchCpu) {
  for (const ImageShape& s : {ImageShape{2, 3, 4, 5}, ImageShape{8, 2, 48, 48}}) {
    SCOPED_TRACE(name(s));
    const Problem p = make_problem(s, 500);
    const size_t n = p.x.size(), C = size_t(s.channels);
    std::vector<float> y(n), save_mean(C), save_invstd(C), dx(n, 0.0f), dgamma(C, 0.0f), dbeta(C, 0.0f);
    cpu::batchnorm2d_forward_train(s, 1e-5f, kMomentum, p.x.data(), p.gamma.data(), p.beta.data(), y.data(),
                                   save_mean.data(), save_invstd.data(), nullptr, nullptr);
    cpu::batchnorm2d_backward_train(s, p.x.data(), p.gamma.data(), save_mean.data(), save_invstd.data(),
                                    p.dy.data(), dx.data(), dgamma.data(), dbeta.data());

    // Each tensor one float into its buffer.
    auto shifted = [](const std::vector<float>& v) {
      std::vector<float> out{0.0f};
      out.insert(out.end(), v.begin(), v.end());
      return out;
    };
    auto unshifted = [](const std::vector<float>& v) { return std::vector<float>(v.begin() + 1, v.end()); };
    const DeviceBuffer<float> dev_x(shifted(p.x)), dev_dy(shifted(p.dy)), dev_gamma(p.gamma), dev_beta(p.beta);
    DeviceBuffer<float> dev_y(n + 1), dev_dx(shifted(std::vector<float>(n, 0.0f))), dev_mean(C), dev_invstd(C),
        dev_dgamma{std::vector<float>(C, 0.0f)}, dev_dbeta{std::vector<float>(C, 0.0f)};
    cuda::batchnorm2d_forward_train(s, 1e-5f, kMomentum, dev_x.ptr + 1, dev_gamma.ptr, dev_beta.ptr, dev_y.ptr + 1,
                                    dev_mean.ptr, dev_invstd.ptr, nullptr, nullptr);
    cuda::batchnorm2d_backward_train(s, dev_x.ptr + 1, dev_gamma.ptr, dev_mean.ptr, dev_invstd.ptr, dev_dy.ptr + 1,
                                     dev_dx.ptr + 1, dev_dgamma.ptr, dev_dbeta.ptr);
    EXPECT_TRUE(all_close("y", unshifted(dev_y.host()), to_double(y), 1e-5, 1e-5));
    EXPECT_TRUE(all_close("dx", unshifted(dev_dx.host()), to_double(dx), 1e-5, 1e-5));
    const double atol_sums = channel_sums_atol(p, save_mean, to_double(save_invstd));
    EXPECT_TRUE(all_close("dgamma", dev_dgamma.host(), to_double(dgamma), 1e-5, atol_sums));
    EXPECT_TRUE(all_close("dbeta", dev_dbeta.host(), to_double(dbeta), 1e-5, atol_sums));
  }
}

// Blocks of one channel combine its partial results in a fixed order and without atomics, so a second
// run gives the same bits although the blocks run in another order.
TEST_F(CudaParity, BatchNormRunsAreBitIdentical) {
  for (const ImageShape& s : {ImageShape{128, 16, 32, 32}, ImageShape{96, 3, 20, 14}, ImageShape{128, 13, 7, 7}}) {
    SCOPED_TRACE(name(s));
    const Problem p = make_problem(s, 600);
    const size_t n = p.x.size(), C = size_t(s.channels);
    const DeviceBuffer<float> dev_x(p.x), dev_dy(p.dy), dev_gamma(p.gamma), dev_beta(p.beta),
        dev_rm(p.running_mean), dev_rv(p.running_var);
    // Every output of a forward and the two backward passes, as bits.
    auto run = [&] {
      DeviceBuffer<float> y(n), mean(C), invstd(C), rm(p.running_mean), rv(p.running_var);
      cuda::batchnorm2d_forward_train(s, 1e-5f, kMomentum, dev_x.ptr, dev_gamma.ptr, dev_beta.ptr, y.ptr, mean.ptr,
                                      invstd.ptr, rm.ptr, rv.ptr);
      DeviceBuffer<float> dx(std::vector<float>(n, 0.5f)), dgamma(std::vector<float>(C, 0.5f)),
          dbeta(std::vector<float>(C, 0.5f));
      cuda::batchnorm2d_backward_train(s, dev_x.ptr, dev_gamma.ptr, mean.ptr, invstd.ptr, dev_dy.ptr, dx.ptr,
                                       dgamma.ptr, dbeta.ptr);
      DeviceBuffer<float> dx_infer(std::vector<float>(n, 0.5f)), dgamma_infer(std::vector<float>(C, 0.5f)),
          dbeta_infer(std::vector<float>(C, 0.5f));
      cuda::batchnorm2d_backward_infer(s, 1e-5f, dev_x.ptr, dev_gamma.ptr, dev_rm.ptr, dev_rv.ptr, dev_dy.ptr,
                                       dx_infer.ptr, dgamma_infer.ptr, dbeta_infer.ptr);
      std::vector<std::vector<uint32_t>> outputs;
      for (const DeviceBuffer<float>* out :
           {&y, &mean, &invstd, &rm, &rv, &dx, &dgamma, &dbeta, &dx_infer, &dgamma_infer, &dbeta_infer}) {
        std::vector<uint32_t> bits;
        for (float v : out->host()) bits.push_back(std::bit_cast<uint32_t>(v));
        outputs.push_back(std::move(bits));
      }
      return outputs;
    };
    const auto first = run();
    for (int again = 0; again < 3; ++again) EXPECT_TRUE(run() == first) << "run " << again + 2 << " differs";
  }
}

// The kernels' scratch memory for partial results comes from the caching allocator and goes back to
// it: once a first call has filled the cache, further calls make no cudaMalloc and hold no memory.
TEST_F(CudaParity, BatchNormScratchIsCachedAndReleased) {
  const ImageShape s{128, 13, 7, 7};
  const Problem p = make_problem(s, 700);
  const size_t n = p.x.size(), C = size_t(s.channels);
  const DeviceBuffer<float> dev_x(p.x), dev_dy(p.dy), dev_gamma(p.gamma), dev_beta(p.beta), dev_rm(p.running_mean),
      dev_rv(p.running_var);
  DeviceBuffer<float> y(n), mean(C), invstd(C), dx(n), dgamma(C), dbeta(C);
  auto step = [&] {
    cuda::batchnorm2d_forward_train(s, 1e-5f, kMomentum, dev_x.ptr, dev_gamma.ptr, dev_beta.ptr, y.ptr, mean.ptr,
                                    invstd.ptr, nullptr, nullptr);
    cuda::batchnorm2d_backward_train(s, dev_x.ptr, dev_gamma.ptr, mean.ptr, invstd.ptr, dev_dy.ptr, dx.ptr, dgamma.ptr,
                                     dbeta.ptr);
    cuda::batchnorm2d_backward_infer(s, 1e-5f, dev_x.ptr, dev_gamma.ptr, dev_rm.ptr, dev_rv.ptr, dev_dy.ptr, dx.ptr,
                                     dgamma.ptr, dbeta.ptr);
  };
  step();
  const cuda::AllocatorStats before = cuda::device_allocator().stats();
  for (int i = 0; i < 3; ++i) step();
  const cuda::AllocatorStats after = cuda::device_allocator().stats();
  EXPECT_EQ(after.device_mallocs, before.device_mallocs);
  EXPECT_EQ(after.bytes_in_use, before.bytes_in_use);
}

}  // namespace
}  // namespace raisin
