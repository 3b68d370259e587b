// The tape: what is recorded, how gradients flow through shared inputs and views, and the ops'
// engine-level behaviour (loss outputs, dropout modes, batch-norm statistics).
#include <gtest/gtest.h>

#include <cmath>

#include "engine/ops.h"
#include "tests/support/check.h"

namespace raisin {
namespace {

Tensor filled(const Shape& shape, const std::vector<float>& values) {
  Tensor t = Tensor::empty(shape);
  EXPECT_EQ(size_t(t.numel()), values.size());
  std::copy(values.begin(), values.end(), t.f32());
  return t;
}

TEST(Autograd, ConstantsRecordNothing) {
  Tape tape;
  Context ctx{.tape = &tape};
  Var x = constant(filled({1, 3}, {1, -2, 3}));
  Var y = relu(ctx, x);
  EXPECT_EQ(tape.size(), 0u);
  EXPECT_FALSE(y->requires_grad);
}

TEST(Autograd, NoTapeNoRecording) {
  Context ctx;  // evaluation: no tape
  Var p = parameter(filled({1, 3}, {1, -2, 3}));
  Var y = relu(ctx, p);
  EXPECT_FALSE(y->requires_grad);
  EXPECT_EQ(y->value.f32()[1], 0.0f);
}

TEST(Autograd, SharedInputGathersBothGradients) {
  Tape tape;
  Context ctx{.tape = &tape};
  Var p = parameter(filled({1, 3}, {0.5f, -1.0f, 2.0f}));
  Var w = constant(filled({1, 3}, {3.0f, 4.0f, 5.0f}));
  Var out = linear(ctx, add(ctx, p, p), w, nullptr);  // out = 2·⟨p, w⟩
  tape.backward(out);
  EXPECT_EQ(out->value.f32()[0], 2 * (1.5f - 4.0f + 10.0f));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(p->grad.f32()[i], 2 * w->value.f32()[i]);
  EXPECT_EQ(tape.size(), 0u) << "backward clears the tape";
}

TEST(Autograd, ReshapeIsAViewWithGradient) {
  Tape tape;
  Context ctx{.tape = &tape};
  Var p = parameter(filled({2, 1, 1, 2}, {1, 2, 3, 4}));
  Var flat = flatten(ctx, p);
  EXPECT_EQ(flat->value.shape(), (Shape{2, 2}));
  EXPECT_EQ(flat->value.f32(), p->value.f32());
  Var w = constant(filled({1, 2}, {10, 20}));
  Var y = linear(ctx, flat, w, nullptr);  // [2, 1]
  Var out = linear(ctx, reshape(ctx, y, {1, 2}), constant(filled({1, 2}, {1, -1})), nullptr);
  tape.backward(out);
  // out = y0 − y1 with y_n = 10 p_n0 + 20 p_n1
  const std::vector<float> expected = {10, 20, -10, -20};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(p->grad.f32()[i], expected[i]);
}

TEST(Autograd, BackwardNeedsAScalarThatRequiresGrad) {
  Tape tape;
  Context ctx{.tape = &tape};
  Var p = parameter(filled({1, 2}, {1, 2}));
  Var y = relu(ctx, p);
  EXPECT_THROW(tape.backward(y), Error);
  Var c = constant(filled({1}, {1}));
  EXPECT_THROW(tape.backward(c), Error);
}

TEST(Autograd, LossReturnsProxyNormsAndWeightedGradient) {
  Tape tape;
  Context ctx{.tape = &tape};
  Var logits = parameter(filled({2, 3}, {1, 2, 3, 0, 0, 0}));
  Tensor labels = Tensor::empty({2}, DType::i32);
  labels.i32()[0] = 2, labels.i32()[1] = 0;
  Tensor weights = filled({2}, {2.0f, 0.5f});
  LossOutput loss = softmax_cross_entropy(ctx, logits, labels, weights);
  tape.backward(loss.mean_loss);
  const double e = std::exp(1.0), z = 1 + e + e * e;
  const double p0[3] = {1 / z, e / z, e * e / z};
  const double l0 = std::log(z) - 2, l1 = std::log(3.0);
  EXPECT_NEAR(loss.mean_loss->value.f32()[0], (2.0 * l0 + 0.5 * l1) / 2, 1e-6);
  EXPECT_NEAR(loss.example_loss.f32()[1], l1, 1e-6);
  const double v0 = std::sqrt(p0[0] * p0[0] + p0[1] * p0[1] + (p0[2] - 1) * (p0[2] - 1));
  EXPECT_NEAR(loss.proxy_norm.f32()[0], v0, 1e-6);
  EXPECT_NEAR(logits->grad.f32()[2], 2.0 * (p0[2] - 1) / 2, 1e-6);
  EXPECT_NEAR(logits->grad.f32()[3], 0.5 * (1.0 / 3 - 1) / 2, 1e-6);
}

TEST(Autograd, DropoutIsIdentityInEvaluationAndSeededInTraining) {
  Tensor data = Tensor::empty({1000});
  data.fill(1.0f);
  Var x = constant(data);
  Context eval{.training = false};
  EXPECT_EQ(dropout(eval, x, 0.5f), x);

  auto run = [&](uint64_t seed, int64_t step) {
    Context ctx{.seed = seed, .step = &step};  // the step in the cpu's device memory
    Var y = dropout(ctx, x, 0.5f);
    return std::vector<float>(y->value.f32(), y->value.f32() + 1000);
  };
  const auto a = run(7, 3), b = run(7, 3), c = run(7, 4), d = run(8, 3);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, d);
  int kept = 0;
  for (float v : a) {
    ASSERT_TRUE(v == 0.0f || v == 2.0f) << v;
    kept += v != 0.0f;
  }
  EXPECT_NEAR(kept, 500, 80);
}

TEST(Autograd, BatchNormUpdatesRunningStatisticsOnlyInTraining) {
  Var x = constant(filled({2, 1, 1, 2}, {1, 2, 3, 6}));  // mean 3, unbiased var 14/3
  Var gamma = parameter(filled({1}, {1})), beta = parameter(filled({1}, {0}));
  Tensor mean = Tensor::zeros({1}), var = filled({1}, {1});
  Context train;
  batchnorm2d(train, x, gamma, beta, mean, var, 1e-5f, 0.1f);
  EXPECT_NEAR(mean.f32()[0], 0.3, 1e-6);
  EXPECT_NEAR(var.f32()[0], 0.9 + 0.1 * 14.0 / 3, 1e-5);
  Context eval{.training = false};
  Var y = batchnorm2d(eval, x, gamma, beta, mean, var, 1e-5f, 0.1f);
  EXPECT_NEAR(mean.f32()[0], 0.3, 1e-6);
  EXPECT_NEAR(y->value.f32()[0], (1 - 0.3) / std::sqrt(var.f32()[0] + 1e-5), 1e-5);
}

TEST(Autograd, ActivationsComeFromTheArena) {
  Arena arena(1 << 20);
  Tape tape(&arena);
  Context ctx{.tape = &tape, .arena = &arena};
  Var p = parameter(filled({1, 2}, {1, -1}));
  Var y = relu(ctx, p);
  arena.reset();
  EXPECT_THROW(y->value.f32(), Error) << "an activation must not outlive its step";
  EXPECT_NO_THROW(p->value.f32()) << "parameters are not in the arena";
}

}  // namespace
}  // namespace raisin
