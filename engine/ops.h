// Differentiable ops: each checks its inputs (shape, dtype, device, with a message naming the op and
// the shapes), runs the forward kernel, and, when the tape records, the matching backward kernel
// later. The kernels themselves live in kernels/ (one signature per op, two backends).
#pragma once
#include "engine/autograd.h"

namespace raisin {

struct Conv2dOptions {
  int stride = 1;
  int padding = 0;
};

struct Pool2dOptions {
  int kernel = 2;
  int stride = 2;
  int padding = 0;
};

// x [B, in] · w[out, in]ᵀ + b[out]; b may be null.
Var linear(Context& ctx, const Var& x, const Var& w, const Var& b);
// x [B, Cin, H, W] ⋆ w [Cout, Cin, kh, kw] + b[Cout]; b may be null.
Var conv2d(Context& ctx, const Var& x, const Var& w, const Var& b, Conv2dOptions options);
Var relu(Context& ctx, const Var& x);
Var maxpool2d(Context& ctx, const Var& x, Pool2dOptions options);
Var avgpool2d(Context& ctx, const Var& x, Pool2dOptions options);
// [B, C, H, W] → [B, C]
Var global_avgpool(Context& ctx, const Var& x);
// Batch statistics when ctx.training (running_mean/var updated in place), running ones otherwise.
Var batchnorm2d(Context& ctx, const Var& x, const Var& gamma, const Var& beta, Tensor& running_mean,
                Tensor& running_var, float eps, float momentum);
// Zeroes each element with probability p (when ctx.training), scaling the rest by 1/(1 − p).
Var dropout(Context& ctx, const Var& x, float p);
Var reshape(Context& ctx, const Var& x, const Shape& shape);
Var flatten(Context& ctx, const Var& x, int start_dim = 1);
Var add(Context& ctx, const Var& a, const Var& b);

// The fused softmax-cross-entropy loss of RAIS (RAIS.md §1, §3).
struct LossOutput {
  Var mean_loss;         // (1/B) Σ ω_i ℓ_i, a scalar
  Tensor example_loss;   // ℓ_i, [B]
  Tensor proxy_norm;     // ṽ_i = ‖softmax(z_i) − onehot(y_i)‖₂, [B]
  Tensor dlogits;        // ω_i (softmax(z_i) − onehot(y_i)) / B, [B, K]
};
// logits [B, K] f32, labels [B] i32 in [0, K), weights [B] f32 or undefined (ω ≡ 1).
LossOutput softmax_cross_entropy(Context& ctx, const Var& logits, const Tensor& labels, const Tensor& weights);

}  // namespace raisin
