// Golden tests against PyTorch: a LeNet-5 and a small residual net with batch norm, built from raisin
// layers, loaded with the weights in tests/golden/*.safetensors (written by tests/golden/generate.py),
// must reproduce PyTorch's logits, weighted loss, every parameter gradient, the running statistics
// after a training-mode pass, and the evaluation-mode logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "engine/layers.h"
#include "engine/safetensors.h"
#include "tests/support/check.h"

namespace raisin {
namespace {

class GoldenLeNet5 : public Module {
 public:
  explicit GoldenLeNet5(Rng& rng)
      : features(register_module("features", std::make_unique<Sequential>())),
        classifier(register_module("classifier", std::make_unique<Sequential>())) {
    features.add<Conv2d>(1, 6, 5, rng, Conv2dOptions{1, 2});
    features.add<ReLU>();
    features.add<MaxPool2d>(2);
    features.add<Conv2d>(6, 16, 5, rng);
    features.add<ReLU>();
    features.add<MaxPool2d>(2);
    classifier.add<Linear>(400, 120, rng);
    classifier.add<ReLU>();
    classifier.add<Linear>(120, 84, rng);
    classifier.add<ReLU>();
    classifier.add<Linear>(84, 10, rng);
  }
  Var forward(Context& ctx, const Var& x) override {
    return classifier.forward(ctx, flatten(ctx, features.forward(ctx, x)));
  }
  Sequential& features;
  Sequential& classifier;
};

class GoldenResNet : public Module {
 public:
  explicit GoldenResNet(Rng& rng)
      : conv1(register_module("conv1", std::make_unique<Conv2d>(3, 8, 3, rng, Conv2dOptions{1, 1}, false))),
        bn1(register_module("bn1", std::make_unique<BatchNorm2d>(8))),
        layer1(register_module("layer1", std::make_unique<Sequential>())),
        layer2(register_module("layer2", std::make_unique<Sequential>())),
        fc(register_module("fc", std::make_unique<Linear>(16, 10, rng))) {
    layer1.add<ResidualBlock>(8, 8, 1, rng);
    layer2.add<ResidualBlock>(8, 16, 2, rng);
  }
  Var forward(Context& ctx, const Var& x) override {
    Var h = relu(ctx, bn1.forward(ctx, conv1.forward(ctx, x)));
    h = layer2.forward(ctx, layer1.forward(ctx, h));
    return fc.forward(ctx, global_avgpool(ctx, h));
  }
  Conv2d& conv1;
  BatchNorm2d& bn1;
  Sequential& layer1;
  Sequential& layer2;
  Linear& fc;
};

std::string fixture(const char* name) { return std::string(RAISIN_GOLDEN_DIR) + "/" + name; }

Tensor tensor_of(const safetensors::Entry& e) {
  Shape shape;
  for (int64_t d : e.shape) shape.push_back(d);
  if (e.dtype == "I64") {
    Tensor t = Tensor::empty(shape, DType::i64);
    const auto v = e.values<int64_t>();
    std::copy(v.begin(), v.end(), t.i64());
    return t;
  }
  if (e.dtype == "I32") {
    Tensor t = Tensor::empty(shape, DType::i32);
    const auto v = e.values<int32_t>();
    std::copy(v.begin(), v.end(), t.i32());
    return t;
  }
  Tensor t = Tensor::empty(shape);
  const auto v = e.values<float>();
  std::copy(v.begin(), v.end(), t.f32());
  return t;
}

// Loads "param.<name>" into every state entry, after checking that both sides name the same tensors.
void load_parameters(const Module& model, const safetensors::File& file) {
  std::set<std::string> ours, theirs;
  for (const auto& [name, t] : model.state_dict()) ours.insert(name);
  for (const auto& e : file.entries)
    if (e.name.starts_with("param.")) theirs.insert(e.name.substr(6));
  ASSERT_EQ(ours, theirs) << "raisin and PyTorch name the state differently";
  for (auto& [name, t] : model.state_dict()) {
    Tensor source = tensor_of(file.at("param." + name));
    ASSERT_EQ(source.shape(), t.shape()) << name;
    Tensor destination = t;
    destination.copy_from(source);
  }
}

// rtol 1e-4 and an atol of 1e-5 of the expected tensor's largest magnitude (tests/golden/README.md).
::testing::AssertionResult matches(const std::string& what, const Tensor& actual, const safetensors::Entry& expected) {
  const auto values = expected.values<float>();
  if (size_t(actual.numel()) != values.size())
    return ::testing::AssertionFailure() << what << ": " << actual.numel() << " values, expected " << values.size();
  double scale = 0;
  for (float v : values) scale = std::max(scale, double(std::abs(v)));
  return test::all_close(what, actual.f32(), test::to_double(values).data(), values.size(), 1e-4, 1e-5 * scale);
}

void check_against_pytorch(Module& model, const char* file_name) {
  const safetensors::File file = safetensors::read(fixture(file_name));
  load_parameters(model, file);
  if (::testing::Test::HasFatalFailure()) return;
  const Tensor input = tensor_of(file.at("input")), labels = tensor_of(file.at("labels")),
               weights = tensor_of(file.at("weights"));

  Tape tape;
  Context train{.tape = &tape, .training = true};
  Var logits = model.forward(train, constant(input));
  LossOutput loss = softmax_cross_entropy(train, logits, labels, weights);
  tape.backward(loss.mean_loss);
  EXPECT_TRUE(matches("logits", logits->value, file.at("logits")));
  EXPECT_TRUE(matches("loss", loss.mean_loss->value, file.at("loss")));
  for (const auto& [name, p] : model.named_parameters())
    EXPECT_TRUE(matches("grad." + name, p->grad, file.at("grad." + name)));
  for (const auto& [name, b] : model.named_buffers()) {
    if (b.dtype() == DType::i64)
      EXPECT_EQ(b.i64()[0], file.at("state_after." + name).values<int64_t>()[0]) << name;
    else
      EXPECT_TRUE(matches("state_after." + name, b, file.at("state_after." + name)));
  }

  Context eval{.training = false};
  EXPECT_TRUE(matches("eval_logits", model.forward(eval, constant(input))->value, file.at("eval_logits")));
}

TEST(GoldenPyTorch, LeNet5MatchesLogitsLossAndGradients) {
  Rng rng(0);
  GoldenLeNet5 model(rng);
  check_against_pytorch(model, "lenet5.safetensors");
}

TEST(GoldenPyTorch, ResidualNetWithBatchNormMatches) {
  Rng rng(0);
  GoldenResNet model(rng);
  check_against_pytorch(model, "resnet_small.safetensors");
}

}  // namespace
}  // namespace raisin
