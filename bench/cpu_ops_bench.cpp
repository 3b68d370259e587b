// CPU micro-benchmarks at the shapes of LeNet-5 and ResNet-20 on CIFAR, batch 128: the GEMM-bound
// kernels, linear and conv2d, in GFLOP/s, and the memory-bound layers around the convolutions (max
// pooling, training batch norm, relu) in GB/s of compulsory traffic.
//
// NOTE: bench/CMakeLists.txt globs every cpu_*_bench.cpp into ONE executable, raisin_cpu_bench, and
// the link provides no main: this file holds the only BENCHMARK_MAIN(). Other cpu_*_bench.cpp files
// must only register benchmarks.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "kernels/cpu/kernels.h"

namespace {

using raisin::kernels::Conv2dShape;
using raisin::kernels::ImageShape;
using raisin::kernels::LinearShape;
using raisin::kernels::Pool2dShape;

std::vector<float> filled(int64_t n, float start) {
  std::vector<float> v(static_cast<size_t>(n));
  for (size_t i = 0; i < v.size(); i++) v[i] = start + 0.001f * float(i % 1000);
  return v;
}

void set_flops(benchmark::State& state, double flops_per_iteration) {
  // Counted in units of 1e9 flops; kIsRate divides by the elapsed seconds, so the figure is GFLOP/s.
  state.counters["GFLOP/s"] = benchmark::Counter(flops_per_iteration * 1e-9 * double(state.iterations()),
                                                 benchmark::Counter::kIsRate);
}

// ---- linear: y[B, O] = x[B, I] · w[O, I]ᵀ + b ----
void BM_LinearForward(benchmark::State& state) {
  const LinearShape s{int(state.range(0)), int(state.range(1)), int(state.range(2))};
  const auto x = filled(int64_t(s.batch) * s.in_features, 0.1f);
  const auto w = filled(int64_t(s.out_features) * s.in_features, -0.2f);
  const auto b = filled(s.out_features, 0.3f);
  std::vector<float> y(size_t(s.batch) * s.out_features);
  for (auto _ : state) {
    raisin::cpu::linear_forward(s, x.data(), w.data(), b.data(), y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_flops(state, 2.0 * s.batch * s.in_features * s.out_features);
}
// args: batch, in_features, out_features
BENCHMARK(BM_LinearForward)
    ->Args({128, 784, 512})
    ->Args({128, 512, 512})
    ->Args({1024, 1024, 1024})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// ---- conv2d ----
Conv2dShape conv_shape(const benchmark::State& state) {
  // args: batch, in_channels, in_h (= in_w), out_channels, kernel (square), stride, pad
  const int hw = int(state.range(2)), k = int(state.range(4)), stride = int(state.range(5)),
            pad = int(state.range(6));
  return Conv2dShape{int(state.range(0)), int(state.range(1)), hw, hw, int(state.range(3)), k, k,
                     stride, stride, pad, pad};
}

double conv_forward_flops(const Conv2dShape& s) {
  return 2.0 * s.batch * s.out_channels * s.out_h() * s.out_w() * s.in_channels * s.kernel_h * s.kernel_w;
}

struct ConvBuffers {
  std::vector<float> x, w, b, y, dy, dx, dw, db, workspace;
  explicit ConvBuffers(const Conv2dShape& s) {
    const int64_t x_size = int64_t(s.batch) * s.in_channels * s.in_h * s.in_w;
    const int64_t w_size = int64_t(s.out_channels) * s.in_channels * s.kernel_h * s.kernel_w;
    const int64_t y_size = int64_t(s.batch) * s.out_channels * s.out_h() * s.out_w();
    x = filled(x_size, 0.1f);
    w = filled(w_size, -0.2f);
    b = filled(s.out_channels, 0.3f);
    y.assign(size_t(y_size), 0.0f);
    dy = filled(y_size, 0.05f);
    dx.assign(size_t(x_size), 0.0f);
    dw.assign(size_t(w_size), 0.0f);
    db.assign(size_t(s.out_channels), 0.0f);
    workspace.assign(size_t(raisin::cpu::conv2d_workspace_floats(s)), 0.0f);
  }
};

void BM_Conv2dForward(benchmark::State& state) {
  const Conv2dShape s = conv_shape(state);
  ConvBuffers buf(s);
  for (auto _ : state) {
    raisin::cpu::conv2d_forward(s, buf.x.data(), buf.w.data(), buf.b.data(), buf.y.data(), buf.workspace.data());
    benchmark::DoNotOptimize(buf.y.data());
    benchmark::ClobberMemory();
  }
  set_flops(state, conv_forward_flops(s));
}

// Backward with dx, dw and db all requested: two GEMMs per sample, twice the forward's flops.
// (The gradients keep accumulating across iterations; their values do not matter here.)
void BM_Conv2dBackward(benchmark::State& state) {
  const Conv2dShape s = conv_shape(state);
  ConvBuffers buf(s);
  for (auto _ : state) {
    raisin::cpu::conv2d_backward(s, buf.x.data(), buf.w.data(), buf.dy.data(), buf.dx.data(), buf.dw.data(),
                                 buf.db.data(), buf.workspace.data());
    benchmark::DoNotOptimize(buf.dx.data());
    benchmark::DoNotOptimize(buf.dw.data());
    benchmark::ClobberMemory();
  }
  set_flops(state, 2.0 * conv_forward_flops(s));
}

// args: batch, in_channels, in_hw, out_channels, kernel, stride, pad
void conv_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"B", "Cin", "HW", "Cout", "k", "s", "p"});
  b->Args({128, 1, 28, 6, 5, 1, 2});    // LeNet-5 C1
  b->Args({128, 6, 14, 16, 5, 1, 0});   // LeNet-5 C3
  b->Args({128, 16, 32, 16, 3, 1, 1});  // ResNet-20 stage 1
  b->Args({128, 32, 16, 32, 3, 1, 1});  // ResNet-20 stage 2
  b->Args({128, 64, 8, 64, 3, 1, 1});   // ResNet-20 stage 3
  b->Args({128, 3, 32, 16, 3, 1, 1});   // ResNet-20 stem
  b->Args({128, 16, 32, 32, 3, 2, 1});  // ResNet-20 stage 2 entry (stride 2)
  b->Args({128, 16, 32, 32, 1, 2, 0});  // ResNet-20 stage 2 shortcut (1x1, stride 2)
  b->Unit(benchmark::kMillisecond);
  b->UseRealTime();
}
BENCHMARK(BM_Conv2dForward)->Apply(conv_shapes);
BENCHMARK(BM_Conv2dBackward)->Apply(conv_shapes);

// ---- memory-bound layers around the convolutions: each reports GB/s of compulsory traffic ----
void set_bytes(benchmark::State& state, double bytes_per_iteration) {
  state.counters["GB/s"] =
      benchmark::Counter(bytes_per_iteration * 1e-9 * double(state.iterations()), benchmark::Counter::kIsRate);
}

ImageShape image_shape(const benchmark::State& state) {
  return ImageShape{int(state.range(0)), int(state.range(1)), int(state.range(2)), int(state.range(2))};
}

// args: batch, channels, hw (square); a 2x2 window with stride 2
void BM_MaxPoolForward(benchmark::State& state) {
  const ImageShape im = image_shape(state);
  const Pool2dShape s{im.batch, im.channels, im.height, im.width, 2, 2, 2, 2};
  const int64_t out = int64_t(s.batch) * s.channels * s.out_h() * s.out_w();
  const auto x = filled(im.numel(), 0.1f);
  std::vector<float> y(static_cast<size_t>(out));
  std::vector<int32_t> argmax(static_cast<size_t>(out));
  for (auto _ : state) {
    raisin::cpu::maxpool2d_forward(s, x.data(), y.data(), argmax.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, 4.0 * double(im.numel() + 2 * out));  // read x, write y and argmax
}

void BM_MaxPoolBackward(benchmark::State& state) {
  const ImageShape im = image_shape(state);
  const Pool2dShape s{im.batch, im.channels, im.height, im.width, 2, 2, 2, 2};
  const int64_t out = int64_t(s.batch) * s.channels * s.out_h() * s.out_w();
  const auto x = filled(im.numel(), 0.1f), dy = filled(out, 0.2f);
  std::vector<float> y(static_cast<size_t>(out)), dx(size_t(im.numel()), 0.0f);
  std::vector<int32_t> argmax(static_cast<size_t>(out));
  raisin::cpu::maxpool2d_forward(s, x.data(), y.data(), argmax.data());
  for (auto _ : state) {
    raisin::cpu::maxpool2d_backward(s, argmax.data(), dy.data(), dx.data());
    benchmark::DoNotOptimize(dx.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, 4.0 * double(2 * out + 2 * im.numel()));  // read argmax, dy; read-modify-write dx
}

// Training batch norm, forward then backward (dx, dgamma, dbeta), as one training step runs it.
void BM_BatchNormTrainForwardBackward(benchmark::State& state) {
  const ImageShape s = image_shape(state);
  const auto x = filled(s.numel(), 0.1f), dy = filled(s.numel(), 0.2f);
  const auto gamma = filled(s.channels, 1.0f), beta = filled(s.channels, 0.0f);
  std::vector<float> y(size_t(s.numel())), dx(size_t(s.numel()), 0.0f);
  std::vector<float> mean(size_t(s.channels)), invstd(size_t(s.channels)), rmean(size_t(s.channels), 0.0f),
      rvar(size_t(s.channels), 1.0f), dgamma(size_t(s.channels), 0.0f), dbeta(size_t(s.channels), 0.0f);
  for (auto _ : state) {
    raisin::cpu::batchnorm2d_forward_train(s, 1e-5f, 0.1f, x.data(), gamma.data(), beta.data(), y.data(),
                                           mean.data(), invstd.data(), rmean.data(), rvar.data());
    raisin::cpu::batchnorm2d_backward_train(s, x.data(), gamma.data(), mean.data(), invstd.data(), dy.data(),
                                            dx.data(), dgamma.data(), dbeta.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::DoNotOptimize(dx.data());
    benchmark::ClobberMemory();
  }
  // forward reads x, writes y; backward reads x and dy, read-modify-writes dx
  set_bytes(state, 4.0 * double(s.numel()) * 6.0);
}

void BM_ReluForward(benchmark::State& state) {
  const ImageShape s = image_shape(state);
  const auto x = filled(s.numel(), -0.4f);
  std::vector<float> y(size_t(s.numel()));
  for (auto _ : state) {
    raisin::cpu::relu_forward(s.numel(), x.data(), y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, 4.0 * double(s.numel()) * 2.0);
}

void BM_ReluBackward(benchmark::State& state) {
  const ImageShape s = image_shape(state);
  const auto y = filled(s.numel(), -0.4f), dy = filled(s.numel(), 0.2f);
  std::vector<float> dx(size_t(s.numel()), 0.0f);
  for (auto _ : state) {
    raisin::cpu::relu_backward(s.numel(), y.data(), dy.data(), dx.data());
    benchmark::DoNotOptimize(dx.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, 4.0 * double(s.numel()) * 4.0);
}

// args: batch, channels, hw. Max pooling at LeNet-5's two pools; batch norm and relu at ResNet-20's
// three stages (and relu at LeNet-5's first activation).
BENCHMARK(BM_MaxPoolForward)->ArgNames({"B", "C", "HW"})->Args({128, 6, 28})->Args({128, 16, 10})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_MaxPoolBackward)->ArgNames({"B", "C", "HW"})->Args({128, 6, 28})->Args({128, 16, 10})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_BatchNormTrainForwardBackward)->ArgNames({"B", "C", "HW"})->Args({128, 16, 32})
    ->Args({128, 32, 16})->Args({128, 64, 8})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_ReluForward)->ArgNames({"B", "C", "HW"})->Args({128, 6, 28})->Args({128, 16, 32})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_ReluBackward)->ArgNames({"B", "C", "HW"})->Args({128, 6, 28})->Args({128, 16, 32})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
