// CUDA kernel micro-benchmarks at the shapes of ResNet-20 and LeNet-5, batch 128: every kernel of the
// CUDA backend, timed with CUDA events around a batch of launches on the current stream. Memory-bound
// kernels report GB/s of compulsory traffic (each input read once, each output written once);
// cuBLAS/cuDNN-backed ones report GFLOP/s. Inputs are random (never zeros), generated on the host.
// Without a GPU every benchmark skips with the reason.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "kernels/cuda/device.h"
#include "kernels/cuda/kernels.h"

namespace {

using namespace raisin;
using kernels::Conv2dShape;
using kernels::GatherShape;
using kernels::ImageShape;
using kernels::LinearShape;
using kernels::LossShape;
using kernels::Pool2dShape;

// A device buffer of random values in [lo, hi), freed on scope exit.
template <typename T>
struct Device {
  T* ptr = nullptr;
  explicit Device(int64_t n, double lo = -1.0, double hi = 1.0, uint32_t seed = 1) {
    std::vector<T> host(size_t(n > 0 ? n : 1));
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(lo, hi);
    for (auto& v : host) v = T(u(rng));
    RAISIN_CUDA_CHECK(cudaMalloc(&ptr, host.size() * sizeof(T)));
    RAISIN_CUDA_CHECK(cudaMemcpy(ptr, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~Device() { cudaFree(ptr); }
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;
};

bool skip_without_gpu(benchmark::State& state) {
  if (cuda::device_count() > 0) return false;
  state.SkipWithError(cuda::no_device_reason().c_str());
  return true;
}

// Times `launch` with CUDA events: each benchmark iteration is kLaunches launches, reported as the
// time per launch. Work per launch: `bytes` of compulsory traffic and `flops` arithmetic (0: not shown).
void time_launches(benchmark::State& state, const std::function<void()>& launch, double bytes, double flops) {
  constexpr int kLaunches = 20;
  cudaEvent_t start, stop;
  RAISIN_CUDA_CHECK(cudaEventCreate(&start));
  RAISIN_CUDA_CHECK(cudaEventCreate(&stop));
  const cudaStream_t stream = cuda::current_stream();
  for (int i = 0; i < 3; ++i) launch();  // warm-up: module load, cuBLAS/cuDNN handles, algorithm search
  RAISIN_CUDA_CHECK(cudaStreamSynchronize(stream));
  for (auto _ : state) {
    RAISIN_CUDA_CHECK(cudaEventRecord(start, stream));
    for (int i = 0; i < kLaunches; ++i) launch();
    RAISIN_CUDA_CHECK(cudaEventRecord(stop, stream));
    RAISIN_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    RAISIN_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    state.SetIterationTime(double(ms) * 1e-3 / kLaunches);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  const double launches = double(state.iterations());
  if (bytes > 0) state.counters["GB/s"] = benchmark::Counter(bytes * 1e-9 * launches, benchmark::Counter::kIsRate);
  if (flops > 0)
    state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9 * launches, benchmark::Counter::kIsRate);
}

constexpr double kF = sizeof(float);

// ---- elementwise: n = 128·16·32·32 (ResNet-20's first stage activation) ----
constexpr int64_t kActivation = 128LL * 16 * 32 * 32;

void BM_Axpy(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  Device<float> x(kActivation), y(kActivation, -1, 1, 2);
  time_launches(state, [&] { cuda::axpy(kActivation, 0.5f, x.ptr, y.ptr); }, 3 * kF * kActivation, 0);
}
BENCHMARK(BM_Axpy)->UseManualTime()->Unit(benchmark::kMicrosecond);

void BM_ReluForward(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  Device<float> x(kActivation), y(kActivation);
  time_launches(state, [&] { cuda::relu_forward(kActivation, x.ptr, y.ptr); }, 2 * kF * kActivation, 0);
}
BENCHMARK(BM_ReluForward)->UseManualTime()->Unit(benchmark::kMicrosecond);

void BM_ReluBackward(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  Device<float> y(kActivation), dy(kActivation, -1, 1, 2), dx(kActivation, -1, 1, 3);
  time_launches(state, [&] { cuda::relu_backward(kActivation, y.ptr, dy.ptr, dx.ptr); }, 4 * kF * kActivation, 0);
}
BENCHMARK(BM_ReluBackward)->UseManualTime()->Unit(benchmark::kMicrosecond);

void BM_BiasReluForward(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const ImageShape s{128, 16, 32, 32};
  Device<float> b(s.channels), y(s.numel());
  time_launches(state, [&] { cuda::bias_relu_forward(s, b.ptr, y.ptr); }, 2 * kF * s.numel(), 0);
}
BENCHMARK(BM_BiasReluForward)->UseManualTime()->Unit(benchmark::kMicrosecond);

// LeNet-5's conv1 and conv2 and ResNet-20's first stage: args batch, channels, h (= w)
void BM_BiasBackward(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const ImageShape s{int(state.range(0)), int(state.range(1)), int(state.range(2)), int(state.range(2))};
  Device<float> dy(s.numel()), db(s.channels);
  time_launches(state, [&] { cuda::bias_add_backward(s, dy.ptr, db.ptr); }, kF * s.numel(), 0);
}
BENCHMARK(BM_BiasBackward)->Args({128, 6, 28})->Args({128, 16, 10})->Args({128, 16, 32})->UseManualTime()->Unit(benchmark::kMicrosecond);

void BM_ReduceSum(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  Device<float> x(kActivation), out(1);
  time_launches(state, [&] { cuda::reduce_sum(kActivation, x.ptr, out.ptr); }, kF * kActivation, 0);
}
BENCHMARK(BM_ReduceSum)->UseManualTime()->Unit(benchmark::kMicrosecond);

// ---- batch norm over ResNet-20's stages: args batch, channels, h (= w) ----
void BM_BatchnormForwardTrain(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const ImageShape s{int(state.range(0)), int(state.range(1)), int(state.range(2)), int(state.range(2))};
  Device<float> x(s.numel()), gamma(s.channels), beta(s.channels), y(s.numel()), mean(s.channels),
      invstd(s.channels), rmean(s.channels), rvar(s.channels, 0.5, 1.5);
  time_launches(state,
                [&] {
                  cuda::batchnorm2d_forward_train(s, 1e-5f, 0.1f, x.ptr, gamma.ptr, beta.ptr, y.ptr, mean.ptr,
                                                  invstd.ptr, rmean.ptr, rvar.ptr);
                },
                2 * kF * s.numel(), 0);
}
BENCHMARK(BM_BatchnormForwardTrain)->Args({128, 16, 32})->Args({128, 32, 16})->Args({128, 64, 8})->UseManualTime()->Unit(benchmark::kMicrosecond);

void BM_BatchnormBackwardTrain(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const ImageShape s{int(state.range(0)), int(state.range(1)), int(state.range(2)), int(state.range(2))};
  Device<float> x(s.numel()), gamma(s.channels), mean(s.channels, -0.1, 0.1), invstd(s.channels, 0.5, 2),
      dy(s.numel()), dx(s.numel()), dgamma(s.channels), dbeta(s.channels);
  time_launches(state,
                [&] {
                  cuda::batchnorm2d_backward_train(s, x.ptr, gamma.ptr, mean.ptr, invstd.ptr, dy.ptr, dx.ptr,
                                                   dgamma.ptr, dbeta.ptr);
                },
                4 * kF * s.numel(), 0);  // x, dy read; dx read and written
}
BENCHMARK(BM_BatchnormBackwardTrain)->Args({128, 16, 32})->Args({128, 32, 16})->Args({128, 64, 8})->UseManualTime()->Unit(benchmark::kMicrosecond);

// ---- pooling: LeNet-5's 2x2 max pool after conv1, ResNet-20's global average pool ----
void BM_MaxPoolForward(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const Pool2dShape s{128, 6, 28, 28, 2, 2, 2, 2};
  const int64_t in = int64_t(s.batch) * s.channels * s.in_h * s.in_w, out = in / 4;
  Device<float> x(in), y(out);
  Device<int32_t> argmax(out, 0, 1);
  time_launches(state, [&] { cuda::maxpool2d_forward(s, x.ptr, y.ptr, argmax.ptr); }, kF * (in + 2 * out), 0);
}
BENCHMARK(BM_MaxPoolForward)->UseManualTime()->Unit(benchmark::kMicrosecond);

void BM_MaxPoolBackward(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const Pool2dShape s{128, 6, 28, 28, 2, 2, 2, 2};
  const int64_t in = int64_t(s.batch) * s.channels * s.in_h * s.in_w, out = in / 4;
  Device<float> x(in), y(out), dy(out), dx(in);
  Device<int32_t> argmax(out, 0, 1);
  cuda::maxpool2d_forward(s, x.ptr, y.ptr, argmax.ptr);  // real winners for the backward pass
  time_launches(state, [&] { cuda::maxpool2d_backward(s, argmax.ptr, dy.ptr, dx.ptr); }, kF * (2 * out + 2 * in), 0);
}
BENCHMARK(BM_MaxPoolBackward)->UseManualTime()->Unit(benchmark::kMicrosecond);

void BM_GlobalAvgPoolForward(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const ImageShape s{128, 64, 8, 8};
  Device<float> x(s.numel()), y(int64_t(s.batch) * s.channels);
  time_launches(state, [&] { cuda::global_avgpool_forward(s, x.ptr, y.ptr); }, kF * s.numel(), 0);
}
BENCHMARK(BM_GlobalAvgPoolForward)->UseManualTime()->Unit(benchmark::kMicrosecond);

// ---- dropout ----
void BM_DropoutForward(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  Device<float> x(kActivation), y(kActivation);
  Device<int64_t> step(1, 1, 1);
  time_launches(state, [&] { cuda::dropout_forward(kActivation, 0.5f, 7, step.ptr, 0, x.ptr, y.ptr); },
                2 * kF * kActivation, 0);
}
BENCHMARK(BM_DropoutForward)->UseManualTime()->Unit(benchmark::kMicrosecond);

// ---- fused softmax-cross-entropy: args batch, classes ----
void BM_SoftmaxCrossEntropy(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const LossShape s{int(state.range(0)), int(state.range(1))};
  const int64_t n = int64_t(s.batch) * s.classes;
  Device<float> logits(n, -3, 3), weights(s.batch, 0.5, 2), loss(s.batch), mean(1), dlogits(n), norm(s.batch);
  std::vector<int32_t> labels_host(size_t(s.batch));
  for (int i = 0; i < s.batch; ++i) labels_host[size_t(i)] = (i * 7) % s.classes;
  int32_t* labels = nullptr;
  RAISIN_CUDA_CHECK(cudaMalloc(&labels, labels_host.size() * sizeof(int32_t)));
  RAISIN_CUDA_CHECK(cudaMemcpy(labels, labels_host.data(), labels_host.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
  time_launches(state,
                [&] {
                  cuda::softmax_cross_entropy_forward(s, logits.ptr, labels, weights.ptr, loss.ptr, mean.ptr,
                                                      dlogits.ptr, norm.ptr);
                },
                kF * (2 * n + 4 * s.batch), 0);
  cudaFree(labels);
}
BENCHMARK(BM_SoftmaxCrossEntropy)->Args({128, 10})->Args({4096, 10})->Args({4096, 1000})->UseManualTime()->Unit(benchmark::kMicrosecond);

// ---- batch gather + augmentation from a uint8 CIFAR-10-sized dataset ----
void BM_GatherBatch(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const GatherShape s{128, 3, 32, 32, 4, true};
  const int64_t count = 10000, image = int64_t(s.channels) * s.height * s.width;
  Device<uint8_t> images(count * image, 0, 255);
  Device<int32_t> labels(count, 0, 10), indices(s.batch, 0, double(count));
  Device<float> mean(3, 0.4, 0.5), inv_std(3, 3, 5), x(s.batch * image);
  Device<int32_t> y(s.batch, 0, 1);
  Device<int64_t> step(1, 2, 2);
  time_launches(state,
                [&] {
                  cuda::gather_batch(s, images.ptr, labels.ptr, indices.ptr, mean.ptr, inv_std.ptr, 1, step.ptr, x.ptr,
                                     y.ptr);
                },
                double(s.batch) * image * (1 + kF), 0);
}
BENCHMARK(BM_GatherBatch)->UseManualTime()->Unit(benchmark::kMicrosecond);

// ---- SGD with momentum over ResNet-20's 0.27 M parameters and a 10 M-parameter net ----
void BM_SgdUpdate(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const int64_t n = state.range(0);
  Device<float> param(n), grad(n, -1, 1, 2), buffer(n, -1, 1, 3), lr(1, 0.05, 0.05);
  time_launches(state, [&] { cuda::sgd_update(n, lr.ptr, 0.9f, 5e-4f, false, param.ptr, grad.ptr, buffer.ptr); },
                5 * kF * n, 0);
}
BENCHMARK(BM_SgdUpdate)->Arg(272474)->Arg(10 << 20)->UseManualTime()->Unit(benchmark::kMicrosecond);

// ---- RAIS: the robust distribution over MNIST's 60 000 and a million examples ----
void BM_RaisDistribution(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const int64_t n = state.range(0);
  Device<float> features(n * 4, 0, 2);
  Device<double> c(4, 0.1, 1, 2), d(4, 0.1, 1, 3), p(n), workspace(cuda::rais_distribution_workspace_doubles(n));
  // Compulsory traffic: the features read, p written.
  time_launches(state, [&] { cuda::rais_distribution(n, features.ptr, c.ptr, d.ptr, 0.01, p.ptr, workspace.ptr); },
                4 * kF * n + sizeof(double) * n, 0);
}
BENCHMARK(BM_RaisDistribution)->Arg(60000)->Arg(1000000)->UseManualTime()->Unit(benchmark::kMicrosecond);

// ---- RAIS: the alias-table build (split method) over 60 000 and a million weights ----
void BM_AliasBuild(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const int64_t n = state.range(0);
  Device<double> weights(n, 0.01, 1), prob(n), workspace(cuda::alias_workspace_doubles(n));
  Device<int32_t> alias(n, 0, 1);
  // Compulsory traffic: the weights read, prob and alias written.
  time_launches(state, [&] { cuda::alias_build(n, weights.ptr, prob.ptr, alias.ptr, workspace.ptr); },
                double(sizeof(double) * 2 + sizeof(int32_t)) * n, 0);
}
BENCHMARK(BM_AliasBuild)->Arg(60000)->Arg(1000000)->UseManualTime()->Unit(benchmark::kMicrosecond);

// ---- linear (cuBLAS): args batch, in, out ----
void BM_LinearForward(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const LinearShape s{int(state.range(0)), int(state.range(1)), int(state.range(2))};
  Device<float> x(int64_t(s.batch) * s.in_features), w(int64_t(s.out_features) * s.in_features), b(s.out_features),
      y(int64_t(s.batch) * s.out_features);
  time_launches(state, [&] { cuda::linear_forward(s, x.ptr, w.ptr, b.ptr, y.ptr); }, 0,
                2.0 * s.batch * s.in_features * s.out_features);
}
BENCHMARK(BM_LinearForward)->Args({128, 400, 120})->Args({4096, 4096, 4096})->UseManualTime()->Unit(benchmark::kMicrosecond);

void BM_LinearBackward(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const LinearShape s{int(state.range(0)), int(state.range(1)), int(state.range(2))};
  Device<float> x(int64_t(s.batch) * s.in_features), w(int64_t(s.out_features) * s.in_features),
      dy(int64_t(s.batch) * s.out_features), dx(int64_t(s.batch) * s.in_features),
      dw(int64_t(s.out_features) * s.in_features), db(s.out_features);
  time_launches(state, [&] { cuda::linear_backward(s, x.ptr, w.ptr, dy.ptr, dx.ptr, dw.ptr, db.ptr); }, 0,
                4.0 * s.batch * s.in_features * s.out_features);
}
BENCHMARK(BM_LinearBackward)->Args({4096, 4096, 4096})->UseManualTime()->Unit(benchmark::kMicrosecond);

// ---- conv2d (cuDNN): args batch, in_channels, h (= w), out_channels, kernel, stride, pad ----
Conv2dShape conv_shape(const benchmark::State& state) {
  const int hw = int(state.range(2)), k = int(state.range(4));
  return Conv2dShape{int(state.range(0)), int(state.range(1)), hw, hw, int(state.range(3)), k, k,
                     int(state.range(5)), int(state.range(5)), int(state.range(6)), int(state.range(6))};
}
double conv_flops(const Conv2dShape& s) {
  return 2.0 * s.batch * s.out_channels * s.out_h() * s.out_w() * s.in_channels * s.kernel_h * s.kernel_w;
}

void BM_Conv2dForward(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const Conv2dShape s = conv_shape(state);
  Device<float> x(int64_t(s.batch) * s.in_channels * s.in_h * s.in_w),
      w(int64_t(s.out_channels) * s.in_channels * s.kernel_h * s.kernel_w, -0.1, 0.1), b(s.out_channels),
      y(int64_t(s.batch) * s.out_channels * s.out_h() * s.out_w()), workspace(cuda::conv2d_workspace_floats(s));
  time_launches(state, [&] { cuda::conv2d_forward(s, x.ptr, w.ptr, b.ptr, y.ptr, workspace.ptr); }, 0, conv_flops(s));
}
BENCHMARK(BM_Conv2dForward)
    ->Args({128, 16, 32, 16, 3, 1, 1})
    ->Args({128, 32, 16, 32, 3, 1, 1})
    ->Args({128, 64, 8, 64, 3, 1, 1})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

void BM_Conv2dBackward(benchmark::State& state) {
  if (skip_without_gpu(state)) return;
  const Conv2dShape s = conv_shape(state);
  const int64_t in = int64_t(s.batch) * s.in_channels * s.in_h * s.in_w,
                wn = int64_t(s.out_channels) * s.in_channels * s.kernel_h * s.kernel_w,
                out = int64_t(s.batch) * s.out_channels * s.out_h() * s.out_w();
  Device<float> x(in), w(wn, -0.1, 0.1), dy(out), dx(in), dw(wn), db(s.out_channels),
      workspace(cuda::conv2d_workspace_floats(s));
  time_launches(state,
                [&] { cuda::conv2d_backward(s, x.ptr, w.ptr, dy.ptr, dx.ptr, dw.ptr, db.ptr, workspace.ptr); }, 0,
                2 * conv_flops(s));
}
BENCHMARK(BM_Conv2dBackward)->Args({128, 16, 32, 16, 3, 1, 1})->Args({128, 64, 8, 64, 3, 1, 1})->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
