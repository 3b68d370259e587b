// Differentiable ops: validation, forward through the kernels of the inputs' device (engine/backend.h),
// and the recorded backward.
#include "engine/ops.h"

#include "engine/backend.h"

namespace raisin {

namespace {

using kernels::Conv2dShape;
using kernels::ImageShape;
using kernels::LinearShape;
using kernels::LossShape;
using kernels::Pool2dShape;

// Checks that an input exists, is f32 with `ndim` dimensions (any when -1), and sits where the
// kernels can reach it.
const Tensor& checked(const char* op, const char* what, const Var& v, int ndim) {
  if (!v || !v->value.defined()) throw error(op, ": ", what, " is missing");
  const Tensor& t = v->value;
  if (t.dtype() != DType::f32) throw error(op, ": ", what, " ", t.str(), " must be f32");
  if (ndim >= 0 && t.ndim() != ndim)
    throw error(op, ": ", what, " must have ", ndim, " dimensions, got ", t.shape().str());
  if (!has_backend(t.device().kind))
    throw error(op, ": ", what, " ", t.str(), " is on ", t.device().str(),
                ", but this program has no backend for it (built or started without CUDA); move it to the cpu");
  return t;
}

void check_same_device(const char* op, const char* what_a, const Tensor& a, const char* what_b, const Tensor& b) {
  if (!(a.device() == b.device()))
    throw error(op, ": ", what_a, " ", a.str(), " and ", what_b, " ", b.str(), " are on different devices");
}

int as_int(const char* op, int64_t v) {
  if (v > INT32_MAX) throw error(op, ": size ", v, " exceeds the kernels' 32-bit limit");
  return int(v);
}

// The output variable: it requires gradients when the tape records any input that does.
Var output(const Context& ctx, Tensor value, std::initializer_list<const Var*> inputs) {
  auto v = constant(std::move(value));
  v->requires_grad = ctx.records(inputs);
  return v;
}

float* grad_or_null(Tape* tape, const Var& v) { return v && v->requires_grad ? tape->grad(v).f32() : nullptr; }

const float* data_or_null(const Var& v) { return v ? v->value.f32() : nullptr; }

void check_window(const char* op, const Tensor& x, int kernel, int stride, int padding) {
  if (kernel < 1 || stride < 1 || padding < 0)
    throw error(op, ": kernel ", kernel, ", stride ", stride, ", padding ", padding,
                " must be positive (padding non-negative)");
  if (x.size(2) + 2 * padding < kernel || x.size(3) + 2 * padding < kernel)
    throw error(op, ": kernel ", kernel, " with padding ", padding, " does not fit input ", x.shape().str());
}

}  // namespace

Var linear(Context& ctx, const Var& x, const Var& w, const Var& b) {
  const Tensor& X = checked("linear", "input", x, 2);
  const Backend& k = backend(X.device());
  const Tensor& W = checked("linear", "weight", w, 2);
  check_same_device("linear", "input", X, "weight", W);
  if (X.size(1) != W.size(1))
    throw error("linear: input ", X.shape().str(), " does not match weight ", W.shape().str(), " (in_features ",
                X.size(1), " vs ", W.size(1), ")");
  if (b) {
    const Tensor& B = checked("linear", "bias", b, 1);
    check_same_device("linear", "weight", W, "bias", B);
    if (B.size(0) != W.size(0))
      throw error("linear: bias ", B.shape().str(), " does not match weight ", W.shape().str(), " (out_features ",
                  B.size(0), " vs ", W.size(0), ")");
  }
  const LinearShape s{as_int("linear", X.size(0)), as_int("linear", X.size(1)), as_int("linear", W.size(0))};
  Tensor y = ctx.allocate(X.device(), {s.batch, s.out_features});
  k.linear_forward(s, X.f32(), W.f32(), data_or_null(b), y.f32());
  Var out = output(ctx, y, {&x, &w, &b});
  if (out->requires_grad) {
    ctx.tape->record([k = &k, s, x, w, b, out, tape = ctx.tape] {
      k->linear_backward(s, x->value.f32(), w->value.f32(), tape->grad(out).f32(), grad_or_null(tape, x),
                           grad_or_null(tape, w), grad_or_null(tape, b));
    });
  }
  return out;
}

Var conv2d(Context& ctx, const Var& x, const Var& w, const Var& b, Conv2dOptions options) {
  const Tensor& X = checked("conv2d", "input", x, 4);
  const Backend& k = backend(X.device());
  const Tensor& W = checked("conv2d", "weight", w, 4);
  check_same_device("conv2d", "input", X, "weight", W);
  if (X.size(1) != W.size(1))
    throw error("conv2d: input ", X.shape().str(), " does not match weight ", W.shape().str(), " (in_channels ",
                X.size(1), " vs ", W.size(1), ")");
  if (b) {
    const Tensor& B = checked("conv2d", "bias", b, 1);
    check_same_device("conv2d", "weight", W, "bias", B);
    if (B.size(0) != W.size(0))
      throw error("conv2d: bias ", B.shape().str(), " does not match weight ", W.shape().str(), " (out_channels ",
                  B.size(0), " vs ", W.size(0), ")");
  }
  if (options.stride < 1 || options.padding < 0)
    throw error("conv2d: stride ", options.stride, " must be positive and padding ", options.padding,
                " non-negative");
  const Conv2dShape s{as_int("conv2d", X.size(0)), as_int("conv2d", X.size(1)), as_int("conv2d", X.size(2)),
                      as_int("conv2d", X.size(3)), as_int("conv2d", W.size(0)), as_int("conv2d", W.size(2)),
                      as_int("conv2d", W.size(3)), options.stride, options.stride, options.padding,
                      options.padding};
  if (X.size(2) + 2 * options.padding < W.size(2) || X.size(3) + 2 * options.padding < W.size(3))
    throw error("conv2d: kernel ", W.shape().str(), " with padding ", options.padding, " does not fit input ",
                X.shape().str());
  Tensor y = ctx.allocate(X.device(), {s.batch, s.out_channels, s.out_h(), s.out_w()});
  Tensor workspace = ctx.allocate(X.device(), {k.conv2d_workspace_floats(s)});
  k.conv2d_forward(s, X.f32(), W.f32(), data_or_null(b), y.f32(), workspace.f32());
  Var out = output(ctx, y, {&x, &w, &b});
  if (out->requires_grad) {
    ctx.tape->record([k = &k, s, x, w, b, out, workspace, tape = ctx.tape] {
      k->conv2d_backward(s, x->value.f32(), w->value.f32(), tape->grad(out).f32(), grad_or_null(tape, x),
                           grad_or_null(tape, w), grad_or_null(tape, b), workspace.f32());
    });
  }
  return out;
}

Var relu(Context& ctx, const Var& x) {
  const Tensor& X = checked("relu", "input", x, -1);
  const Backend& k = backend(X.device());
  Tensor y = ctx.allocate(X.device(), X.shape());
  k.relu_forward(X.numel(), X.f32(), y.f32());
  Var out = output(ctx, y, {&x});
  if (out->requires_grad) {
    ctx.tape->record([k = &k, x, out, tape = ctx.tape] {
      k->relu_backward(out->value.numel(), out->value.f32(), tape->grad(out).f32(), tape->grad(x).f32());
    });
  }
  return out;
}

static Pool2dShape pool_shape(const char* op, const Tensor& X, Pool2dOptions o) {
  check_window(op, X, o.kernel, o.stride, o.padding);
  if (2 * o.padding > o.kernel)
    throw error(op, ": padding ", o.padding, " must be at most half the kernel ", o.kernel);
  return Pool2dShape{as_int(op, X.size(0)), as_int(op, X.size(1)), as_int(op, X.size(2)), as_int(op, X.size(3)),
                     o.kernel,           o.kernel,           o.stride,           o.stride,
                     o.padding,          o.padding};
}

Var maxpool2d(Context& ctx, const Var& x, Pool2dOptions options) {
  const Tensor& X = checked("maxpool2d", "input", x, 4);
  const Backend& k = backend(X.device());
  const Pool2dShape s = pool_shape("maxpool2d", X, options);
  Tensor y = ctx.allocate(X.device(), {s.batch, s.channels, s.out_h(), s.out_w()});
  Tensor argmax = ctx.allocate(X.device(), y.shape(), DType::i32);
  k.maxpool2d_forward(s, X.f32(), y.f32(), argmax.i32());
  Var out = output(ctx, y, {&x});
  if (out->requires_grad) {
    ctx.tape->record([k = &k, s, x, out, argmax, tape = ctx.tape] {
      k->maxpool2d_backward(s, argmax.i32(), tape->grad(out).f32(), tape->grad(x).f32());
    });
  }
  return out;
}

Var avgpool2d(Context& ctx, const Var& x, Pool2dOptions options) {
  const Tensor& X = checked("avgpool2d", "input", x, 4);
  const Backend& k = backend(X.device());
  const Pool2dShape s = pool_shape("avgpool2d", X, options);
  Tensor y = ctx.allocate(X.device(), {s.batch, s.channels, s.out_h(), s.out_w()});
  k.avgpool2d_forward(s, X.f32(), y.f32());
  Var out = output(ctx, y, {&x});
  if (out->requires_grad) {
    ctx.tape->record([k = &k, s, x, out, tape = ctx.tape] {
      k->avgpool2d_backward(s, tape->grad(out).f32(), tape->grad(x).f32());
    });
  }
  return out;
}

static ImageShape image_shape(const char* op, const Tensor& X) {
  return ImageShape{as_int(op, X.size(0)), as_int(op, X.size(1)), as_int(op, X.size(2)), as_int(op, X.size(3))};
}

Var global_avgpool(Context& ctx, const Var& x) {
  const Tensor& X = checked("global_avgpool", "input", x, 4);
  const Backend& k = backend(X.device());
  const ImageShape s = image_shape("global_avgpool", X);
  Tensor y = ctx.allocate(X.device(), {s.batch, s.channels});
  k.global_avgpool_forward(s, X.f32(), y.f32());
  Var out = output(ctx, y, {&x});
  if (out->requires_grad) {
    ctx.tape->record([k = &k, s, x, out, tape = ctx.tape] {
      k->global_avgpool_backward(s, tape->grad(out).f32(), tape->grad(x).f32());
    });
  }
  return out;
}

Var batchnorm2d(Context& ctx, const Var& x, const Var& gamma, const Var& beta, Tensor& running_mean,
                Tensor& running_var, float eps, float momentum) {
  const Tensor& X = checked("batchnorm2d", "input", x, 4);
  const Backend& k = backend(X.device());
  const Tensor& G = checked("batchnorm2d", "weight", gamma, 1);
  const Tensor& B = checked("batchnorm2d", "bias", beta, 1);
  const int64_t channels = X.size(1);
  for (const Tensor* t : {&G, &B, static_cast<const Tensor*>(&running_mean), static_cast<const Tensor*>(&running_var)})
    if (t->ndim() != 1 || t->size(0) != channels || t->dtype() != DType::f32 || !(t->device() == X.device()))
      throw error("batchnorm2d: input ", X.str(), " has ", channels,
                  " channels, but a parameter or running statistic is ", t->str());
  const ImageShape s = image_shape("batchnorm2d", X);
  Tensor y = ctx.allocate(X.device(), X.shape());
  if (!ctx.training) {
    k.batchnorm2d_forward_infer(s, eps, X.f32(), G.f32(), B.f32(), running_mean.f32(), running_var.f32(),
                                   y.f32());
    Var out = output(ctx, y, {&x, &gamma, &beta});
    if (out->requires_grad) {
      ctx.tape->record([k = &k, s, eps, x, gamma, beta, out, mean = running_mean, var = running_var, tape = ctx.tape] {
        k->batchnorm2d_backward_infer(s, eps, x->value.f32(), gamma->value.f32(), mean.f32(), var.f32(),
                                        tape->grad(out).f32(), grad_or_null(tape, x), grad_or_null(tape, gamma),
                                        grad_or_null(tape, beta));
      });
    }
    return out;
  }
  if (int64_t(s.batch) * s.spatial() < 2)
    throw error("batchnorm2d: training needs more than one value per channel, got input ", X.shape().str());
  Tensor save_mean = ctx.allocate(X.device(), {channels});
  Tensor save_invstd = ctx.allocate(X.device(), {channels});
  k.batchnorm2d_forward_train(s, eps, momentum, X.f32(), G.f32(), B.f32(), y.f32(), save_mean.f32(),
                                 save_invstd.f32(), running_mean.f32(), running_var.f32());
  Var out = output(ctx, y, {&x, &gamma, &beta});
  if (out->requires_grad) {
    ctx.tape->record([k = &k, s, x, gamma, beta, out, save_mean, save_invstd, tape = ctx.tape] {
      k->batchnorm2d_backward_train(s, x->value.f32(), gamma->value.f32(), save_mean.f32(), save_invstd.f32(),
                                      tape->grad(out).f32(), grad_or_null(tape, x), grad_or_null(tape, gamma),
                                      grad_or_null(tape, beta));
    });
  }
  return out;
}

Var dropout(Context& ctx, const Var& x, float p) {
  const Tensor& X = checked("dropout", "input", x, -1);
  const Backend& k = backend(X.device());
  if (!(p >= 0.0f && p < 1.0f)) throw error("dropout: probability ", p, " must be in [0, 1)");
  if (!ctx.training || p == 0.0f) return x;
  if (!ctx.step) throw error("dropout: training needs the step in device memory (Context::step)");
  const uint64_t seed = ctx.seed;
  const int64_t* step = ctx.step;
  const uint32_t call = ctx.next_dropout_call();
  Tensor y = ctx.allocate(X.device(), X.shape());
  k.dropout_forward(X.numel(), p, seed, step, call, X.f32(), y.f32());
  Var out = output(ctx, y, {&x});
  if (out->requires_grad) {
    ctx.tape->record([k = &k, p, seed, step, call, x, out, tape = ctx.tape] {
      k->dropout_backward(out->value.numel(), p, seed, step, call, tape->grad(out).f32(), tape->grad(x).f32());
    });
  }
  return out;
}

Var reshape(Context& ctx, const Var& x, const Shape& shape) {
  const Tensor& X = checked("reshape", "input", x, -1);
  const Backend& k = backend(X.device());
  Var out = output(ctx, X.reshape(shape), {&x});
  if (out->requires_grad) {
    ctx.tape->record([k = &k, x, out, tape = ctx.tape] {
      k->axpy(out->value.numel(), 1.0f, tape->grad(out).f32(), tape->grad(x).f32());
    });
  }
  return out;
}

Var flatten(Context& ctx, const Var& x, int start_dim) {
  return reshape(ctx, x, checked("flatten", "input", x, -1).flatten(start_dim).shape());
}

Var add(Context& ctx, const Var& a, const Var& b) {
  const Tensor& A = checked("add", "first input", a, -1);
  const Backend& k = backend(A.device());
  const Tensor& B = checked("add", "second input", b, -1);
  if (!(A.shape() == B.shape()))
    throw error("add: shapes ", A.shape().str(), " and ", B.shape().str(), " differ");
  check_same_device("add", "first input", A, "second input", B);
  Tensor y = ctx.allocate(A.device(), A.shape());
  k.add_forward(A.numel(), A.f32(), B.f32(), y.f32());
  Var out = output(ctx, y, {&a, &b});
  if (out->requires_grad) {
    ctx.tape->record([k = &k, a, b, out, tape = ctx.tape] {
      const float* dy = tape->grad(out).f32();
      if (a->requires_grad) k->axpy(out->value.numel(), 1.0f, dy, tape->grad(a).f32());
      if (b->requires_grad) k->axpy(out->value.numel(), 1.0f, dy, tape->grad(b).f32());
    });
  }
  return out;
}

LossOutput softmax_cross_entropy(Context& ctx, const Var& logits, const Tensor& labels, const Tensor& weights) {
  const char* op = "softmax_cross_entropy";
  const Tensor& Z = checked(op, "logits", logits, 2);
  const Backend& k = backend(Z.device());
  const int64_t batch = Z.size(0), classes = Z.size(1);
  if (!labels.defined() || labels.dtype() != DType::i32 || labels.ndim() != 1)
    throw error(op, ": labels ", labels.str(), " must be a 1-d i32 tensor");
  if (labels.size(0) != batch)
    throw error(op, ": logits ", Z.shape().str(), " and labels ", labels.shape().str(), " disagree on the batch size");
  check_same_device(op, "logits", Z, "labels", labels);
  const int32_t* y = labels.i32();
  if (labels.device().is_cpu())  // on a GPU the labels come from a dataset that was checked when loaded
    for (int64_t i = 0; i < batch; ++i)
      if (y[i] < 0 || y[i] >= classes)
        throw error(op, ": label ", y[i], " of example ", i, " is outside [0, ", classes, ")");
  if (weights.defined()) {
    if (weights.dtype() != DType::f32 || !(weights.shape() == Shape{batch}))
      throw error(op, ": weights ", weights.str(), " must be f32 of shape [", batch, "] to match logits ",
                  Z.shape().str());
    check_same_device(op, "logits", Z, "weights", weights);
  }
  const LossShape s{as_int(op, batch), as_int(op, classes)};
  LossOutput result;
  result.example_loss = ctx.allocate(Z.device(), {batch});
  result.proxy_norm = ctx.allocate(Z.device(), {batch});
  Tensor mean = ctx.allocate(Z.device(), {});
  Tensor dlogits = ctx.allocate(Z.device(), Z.shape());
  k.softmax_cross_entropy_forward(s, Z.f32(), y, weights.defined() ? weights.f32() : nullptr,
                                     result.example_loss.f32(), mean.f32(), dlogits.f32(), result.proxy_norm.f32());
  Var out = output(ctx, mean, {&logits});
  if (out->requires_grad) {
    ctx.tape->record([k = &k, s, logits, out, dlogits, tape = ctx.tape] {
      k->softmax_cross_entropy_backward(s, tape->grad(out).f32(), dlogits.f32(), tape->grad(logits).f32());
    });
  }
  result.mean_loss = out;
  result.dlogits = dlogits;
  return result;
}

}  // namespace raisin
