// Sgd over named parameters and the learning-rate schedules.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/optim.h"
#include "engine/schedule.h"

namespace raisin {
namespace {

TEST(Sgd, StepsEveryParameterAndNamesItsState) {
  Var w = parameter(Tensor::zeros({2})), b = parameter(Tensor::zeros({1}));
  w->grad.fill(1.0f);
  b->grad.fill(-2.0f);
  Sgd sgd({{"fc.weight", w}, {"fc.bias", b}}, {.momentum = 0.9f, .weight_decay = 0.0f});
  sgd.step(0.1f);
  EXPECT_FLOAT_EQ(w->value.f32()[1], -0.1f);
  EXPECT_FLOAT_EQ(b->value.f32()[0], 0.2f);
  sgd.step(0.1f);  // buf = 0.9·1 + 1 = 1.9
  EXPECT_FLOAT_EQ(w->value.f32()[0], -0.1f - 0.19f);
  const auto state = sgd.state();
  ASSERT_EQ(state.size(), 2u);
  EXPECT_EQ(state[0].first, "momentum.fc.weight");
  EXPECT_FLOAT_EQ(state[0].second.f32()[0], 1.9f);
  sgd.zero_grad();
  EXPECT_EQ(w->grad.f32()[0], 0.0f);
}

TEST(Sgd, RejectsBadOptions) {
  Var w = parameter(Tensor::zeros({2}));
  EXPECT_THROW(Sgd({{"w", w}}, {.momentum = -1.0f}), Error);
  EXPECT_THROW(Sgd({{"w", w}}, {.momentum = 0.0f, .nesterov = true}), Error);
  EXPECT_THROW(Sgd({{"c", constant(Tensor::zeros({2}))}}, {}), Error);
}

TEST(Schedule, CosineStepConstantAndWarmup) {
  Schedule cosine{.kind = Schedule::Kind::cosine, .base_lr = 0.1f, .total_epochs = 10};
  EXPECT_FLOAT_EQ(cosine.lr(0), 0.1f);
  EXPECT_NEAR(cosine.lr(5), 0.05f, 1e-7);
  EXPECT_NEAR(cosine.lr(2.5), 0.05 * (1 + std::cos(M_PI / 4)), 1e-7);
  EXPECT_FLOAT_EQ(cosine.lr(10), 0.0f);
  EXPECT_FLOAT_EQ(cosine.lr(12), 0.0f);
  Schedule step{.kind = Schedule::Kind::step, .base_lr = 1.0f, .step_epochs = 3, .gamma = 0.5f};
  EXPECT_FLOAT_EQ(step.lr(2.9), 1.0f);
  EXPECT_FLOAT_EQ(step.lr(3.0), 0.5f);
  EXPECT_FLOAT_EQ(step.lr(6.5), 0.25f);
  Schedule warm{.kind = Schedule::Kind::constant, .base_lr = 0.2f, .warmup_epochs = 2};
  EXPECT_FLOAT_EQ(warm.lr(0.5), 0.05f);
  EXPECT_FLOAT_EQ(warm.lr(2.0), 0.2f);
  EXPECT_THROW(Schedule::parse_kind("linear"), Error);
  EXPECT_EQ(Schedule::parse_kind("step"), Schedule::Kind::step);
}

}  // namespace
}  // namespace raisin
