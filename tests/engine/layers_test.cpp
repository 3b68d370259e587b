// Layers: PyTorch-style names and order of parameters and buffers, sizes, and basic behaviour.
#include <gtest/gtest.h>

#include "engine/layers.h"

namespace raisin {
namespace {

std::vector<std::string> names(const std::vector<std::pair<std::string, Tensor>>& entries) {
  std::vector<std::string> out;
  for (const auto& [name, t] : entries) out.push_back(name);
  return out;
}

TEST(Layers, SequentialNamesLikePyTorch) {
  Rng rng(1);
  Sequential net;
  net.add<Conv2d>(1, 6, 5, rng, Conv2dOptions{1, 2});
  net.add<ReLU>();
  net.add<MaxPool2d>(2);
  net.add<Flatten>();
  net.add<Linear>(6 * 14 * 14, 10, rng);
  EXPECT_EQ(names(net.state_dict()),
            (std::vector<std::string>{"0.weight", "0.bias", "4.weight", "4.bias"}));
  EXPECT_EQ(net.parameter_count(), 6 * 25 + 6 + 6 * 14 * 14 * 10 + 10);
  Context ctx{.training = false};
  Var y = net.forward(ctx, constant(Tensor::zeros({3, 1, 28, 28})));
  EXPECT_EQ(y->value.shape(), (Shape{3, 10}));
}

TEST(Layers, ResidualBlockNamesLikeTorchvision) {
  Rng rng(2);
  ResidualBlock identity(8, 8, 1, rng), projection(8, 16, 2, rng);
  EXPECT_EQ(identity.downsample, nullptr);
  const std::vector<std::string> expected = {
      "conv1.weight",       "bn1.weight",         "bn1.bias",
      "bn1.running_mean",   "bn1.running_var",    "bn1.num_batches_tracked",
      "conv2.weight",       "bn2.weight",         "bn2.bias",
      "bn2.running_mean",   "bn2.running_var",    "bn2.num_batches_tracked",
      "downsample.0.weight", "downsample.1.weight", "downsample.1.bias",
      "downsample.1.running_mean", "downsample.1.running_var", "downsample.1.num_batches_tracked"};
  EXPECT_EQ(names(projection.state_dict()), expected);
  EXPECT_EQ(names(identity.state_dict()), std::vector<std::string>(expected.begin(), expected.begin() + 12));
  Context ctx;
  Var y = projection.forward(ctx, constant(Tensor::zeros({2, 8, 9, 9})));
  EXPECT_EQ(y->value.shape(), (Shape{2, 16, 5, 5}));
}

TEST(Layers, InitialisationIsSeededAndBounded) {
  Rng a(5), b(5), c(6);
  Linear la(100, 20, a), lb(100, 20, b), lc(100, 20, c);
  EXPECT_TRUE(std::equal(la.weight->value.f32(), la.weight->value.f32() + 2000, lb.weight->value.f32()));
  EXPECT_FALSE(std::equal(la.weight->value.f32(), la.weight->value.f32() + 2000, lc.weight->value.f32()));
  for (int i = 0; i < 2000; ++i) ASSERT_LE(std::abs(la.weight->value.f32()[i]), 0.1f);
  BatchNorm2d bn(4);
  EXPECT_EQ(bn.weight->value.f32()[3], 1.0f);
  EXPECT_EQ(bn.running_var.f32()[3], 1.0f);
}

TEST(Layers, ZeroGradClearsEveryParameter) {
  Rng rng(3);
  Linear layer(3, 2, rng);
  layer.weight->grad.fill(1.0f);
  layer.bias->grad.fill(1.0f);
  layer.zero_grad();
  for (int i = 0; i < 6; ++i) EXPECT_EQ(layer.weight->grad.f32()[i], 0.0f);
  EXPECT_EQ(layer.bias->grad.f32()[1], 0.0f);
}

TEST(Layers, BadConstructorArgumentsAreErrors) {
  Rng rng(4);
  EXPECT_THROW(Linear(0, 3, rng), Error);
  EXPECT_THROW(Conv2d(3, 4, 0, rng), Error);
  EXPECT_THROW(BatchNorm2d(0), Error);
  EXPECT_THROW(Dropout(1.5f), Error);
}

}  // namespace
}  // namespace raisin
