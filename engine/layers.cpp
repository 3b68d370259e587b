// Layer constructors (parameters, buffers, initialisation) and the residual block's forward.
#include "engine/layers.h"

#include <cmath>

namespace raisin {

Linear::Linear(int in_features, int out_features, Rng& rng, bool has_bias) {
  if (in_features < 1 || out_features < 1)
    throw error("Linear(", in_features, ", ", out_features, "): sizes must be positive");
  const float bound = 1.0f / std::sqrt(float(in_features));
  Tensor w = Tensor::empty({out_features, in_features});
  uniform_fill(w, bound, rng);
  weight = register_parameter("weight", w);
  if (has_bias) {
    Tensor b = Tensor::empty({out_features});
    uniform_fill(b, bound, rng);
    bias = register_parameter("bias", b);
  }
}

Var Linear::forward(Context& ctx, const Var& x) { return linear(ctx, x, weight, bias); }

Conv2d::Conv2d(int in_channels, int out_channels, int kernel, Rng& rng, Conv2dOptions options, bool has_bias)
    : options(options) {
  if (in_channels < 1 || out_channels < 1 || kernel < 1)
    throw error("Conv2d(", in_channels, ", ", out_channels, ", kernel ", kernel, "): sizes must be positive");
  const float bound = 1.0f / std::sqrt(float(in_channels * kernel * kernel));
  Tensor w = Tensor::empty({out_channels, in_channels, kernel, kernel});
  uniform_fill(w, bound, rng);
  weight = register_parameter("weight", w);
  if (has_bias) {
    Tensor b = Tensor::empty({out_channels});
    uniform_fill(b, bound, rng);
    bias = register_parameter("bias", b);
  }
}

Var Conv2d::forward(Context& ctx, const Var& x) { return conv2d(ctx, x, weight, bias, options); }

BatchNorm2d::BatchNorm2d(int channels, float eps, float momentum) : eps(eps), momentum(momentum) {
  if (channels < 1) throw error("BatchNorm2d(", channels, "): channels must be positive");
  Tensor ones = Tensor::empty({channels});
  ones.fill(1.0f);
  weight = register_parameter("weight", ones);
  bias = register_parameter("bias", Tensor::zeros({channels}));
  running_mean = register_buffer("running_mean", Tensor::zeros({channels}));
  Tensor var = Tensor::empty({channels});
  var.fill(1.0f);
  running_var = register_buffer("running_var", var);
  num_batches_tracked = register_buffer("num_batches_tracked", Tensor::zeros({}, DType::i64));
}

Var BatchNorm2d::forward(Context& ctx, const Var& x) {
  Var y = batchnorm2d(ctx, x, weight, bias, running_mean, running_var, eps, momentum);
  if (ctx.training) ctx.update_host([counter = num_batches_tracked] { ++counter.i64()[0]; });
  return y;
}

Dropout::Dropout(float p) : p(p) {
  if (!(p >= 0.0f && p < 1.0f)) throw error("Dropout(", p, "): probability must be in [0, 1)");
}

ResidualBlock::ResidualBlock(int in_channels, int out_channels, int stride, Rng& rng)
    : conv1(register_module("conv1", std::make_unique<Conv2d>(in_channels, out_channels, 3, rng,
                                                              Conv2dOptions{stride, 1}, false))),
      bn1(register_module("bn1", std::make_unique<BatchNorm2d>(out_channels))),
      conv2(register_module("conv2", std::make_unique<Conv2d>(out_channels, out_channels, 3, rng,
                                                              Conv2dOptions{1, 1}, false))),
      bn2(register_module("bn2", std::make_unique<BatchNorm2d>(out_channels))),
      downsample(nullptr) {
  if (stride != 1 || in_channels != out_channels) {
    downsample = &register_module("downsample", std::make_unique<Sequential>());
    downsample->add<Conv2d>(in_channels, out_channels, 1, rng, Conv2dOptions{stride, 0}, false);
    downsample->add<BatchNorm2d>(out_channels);
  }
}

Var ResidualBlock::forward(Context& ctx, const Var& x) {
  Var h = relu(ctx, bn1.forward(ctx, conv1.forward(ctx, x)));
  h = bn2.forward(ctx, conv2.forward(ctx, h));
  Var shortcut = downsample ? downsample->forward(ctx, x) : x;
  return relu(ctx, add(ctx, h, shortcut));
}

}  // namespace raisin
