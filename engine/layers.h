// The layers models are built from, each a thin Module over one op (engine/ops.h). Weight layouts
// and default initialisation follow PyTorch: weights and biases of Linear and Conv2d uniform in
// ±1/sqrt(fan_in); BatchNorm2d starts at weight 1, bias 0, running mean 0, running var 1.
#pragma once
#include <cstdint>

#include "engine/init.h"
#include "engine/module.h"
#include "engine/ops.h"

namespace raisin {

class Linear : public Module {
 public:
  Linear(int in_features, int out_features, Rng& rng, bool bias = true);
  Var forward(Context& ctx, const Var& x) override;
  Var weight, bias;  // [out, in], [out] (bias null without one)
};

class Conv2d : public Module {
 public:
  Conv2d(int in_channels, int out_channels, int kernel, Rng& rng, Conv2dOptions options = {}, bool bias = true);
  Var forward(Context& ctx, const Var& x) override;
  Var weight, bias;  // [out, in, k, k], [out] (bias null without one)
  Conv2dOptions options;
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int channels, float eps = 1e-5f, float momentum = 0.1f);
  Var forward(Context& ctx, const Var& x) override;
  Var weight, bias;
  Tensor running_mean, running_var;
  Tensor num_batches_tracked;  // i64 scalar, as PyTorch keeps it (training forward passes so far)
  float eps, momentum;
};

class ReLU : public Module {
 public:
  Var forward(Context& ctx, const Var& x) override { return relu(ctx, x); }
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(int kernel, int stride = 0, int padding = 0) : options{kernel, stride ? stride : kernel, padding} {}
  Var forward(Context& ctx, const Var& x) override { return maxpool2d(ctx, x, options); }
  Pool2dOptions options;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(int kernel, int stride = 0, int padding = 0) : options{kernel, stride ? stride : kernel, padding} {}
  Var forward(Context& ctx, const Var& x) override { return avgpool2d(ctx, x, options); }
  Pool2dOptions options;
};

// [B, C, H, W] → [B, C]
class GlobalAvgPool : public Module {
 public:
  Var forward(Context& ctx, const Var& x) override { return global_avgpool(ctx, x); }
};

class Dropout : public Module {
 public:
  explicit Dropout(float p);
  Var forward(Context& ctx, const Var& x) override { return dropout(ctx, x, p); }
  float p;
};

class Flatten : public Module {
 public:
  explicit Flatten(int start_dim = 1) : start_dim(start_dim) {}
  Var forward(Context& ctx, const Var& x) override { return flatten(ctx, x, start_dim); }
  int start_dim;
};

// ResNet's basic block (He et al. 2016): relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), with
// 3x3 convolutions without bias; the shortcut is the identity, or a strided 1x1 convolution and batch
// norm (`downsample.0`, `downsample.1`, as torchvision names them) when the shape changes.
class ResidualBlock : public Module {
 public:
  ResidualBlock(int in_channels, int out_channels, int stride, Rng& rng);
  Var forward(Context& ctx, const Var& x) override;
  Conv2d& conv1;
  BatchNorm2d& bn1;
  Conv2d& conv2;
  BatchNorm2d& bn2;
  Sequential* downsample;  // null for the identity shortcut
};

}  // namespace raisin
