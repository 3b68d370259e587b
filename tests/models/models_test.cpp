// Tests for models/: every built-in model builds on its natural input and returns [B, classes]; its
// state_dict names, dtypes and shapes and its parameter count equal those of its PyTorch twin
// (tools/torch_models.py, via tests/golden/model_state_names.txt); with the same weights it computes
// PyTorch's logits (tests/golden/model_forward.safetensors); initialisation is seeded Kaiming (PyTorch's choices); bad names
// and inputs give clear errors. Regenerate the fixtures with tests/golden/generate_model_names.py.
#include "models/models.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "engine/safetensors.h"
#include "tests/support/check.h"

namespace raisin {
namespace {

struct Config {
  std::string model;
  ModelInput input;
  std::string key() const {
    return model + "@" + std::to_string(input.channels) + "x" + std::to_string(input.height) + "x" +
           std::to_string(input.width);
  }
};

const std::vector<Config>& configs() {
  static const std::vector<Config> all = {{"mlp", {1, 28, 28, 10}},
                                          {"lenet5", {1, 28, 28, 10}},
                                          {"lenet5", {3, 32, 32, 10}},
                                          {"resnet20", {3, 32, 32, 10}},
                                          {"vgg-small", {3, 32, 32, 10}}};
  return all;
}

Tensor random_input(int batch, const ModelInput& in, uint64_t seed) {
  Tensor x = Tensor::empty({batch, in.channels, in.height, in.width});
  const auto values = test::random_floats(size_t(x.numel()), seed);
  std::memcpy(x.f32(), values.data(), values.size() * sizeof(float));
  return x;
}

Tensor forward(Module& model, const Tensor& x, bool training) {
  const int64_t step = 0;  // dropout's stream, in the cpu's device memory
  Context ctx{.training = training, .seed = 3, .step = &step};
  return model.forward(ctx, constant(x))->value;
}

std::vector<std::byte> state_bytes(const Module& model) {
  std::vector<std::byte> out;
  for (const auto& [name, t] : model.state_dict()) {
    const auto* p = reinterpret_cast<const std::byte*>(t.dtype() == DType::i64 ? static_cast<const void*>(t.i64())
                                                                               : static_cast<const void*>(t.f32()));
    out.insert(out.end(), p, p + t.numel() * int64_t(dtype_size(t.dtype())));
  }
  return out;
}

std::string shape_of(const Tensor& t) {
  std::vector<int64_t> dims;
  for (int d = 0; d < t.ndim(); ++d) dims.push_back(t.size(d));
  return safetensors::shape_string(dims);
}

TEST(Models, NamesAreTheFourBuiltIns) {
  EXPECT_EQ(model_names(), (std::vector<std::string>{"lenet5", "mlp", "resnet20", "vgg-small"}));
}

TEST(Models, ForwardGivesBatchByClassesInTrainingAndEvaluation) {
  for (const Config& c : configs()) {
    for (int classes : {10, 7}) {
      ModelInput in = c.input;
      in.classes = classes;
      auto model = make_model(c.model, in, 1);
      const Tensor x = random_input(3, in, 5);
      for (bool training : {true, false}) {
        const Tensor y = forward(*model, x, training);
        EXPECT_EQ(y.shape(), (Shape{3, classes})) << c.key() << (training ? " train" : " eval");
        for (int64_t i = 0; i < y.numel(); ++i) ASSERT_TRUE(std::isfinite(y.f32()[i])) << c.key();
      }
    }
  }
}

// PyTorch's counts, from tools/torch_models.py (sum of p.numel() over model.parameters()).
TEST(Models, ParameterCountsEqualPyTorch) {
  const std::map<std::string, int64_t> expected = {
      {"mlp@1x28x28", 535818},     // 784·512+512 + 512·256+256 + 256·10+10
      {"lenet5@1x28x28", 61706},   // the classic LeNet-5 count
      {"lenet5@3x32x32", 62006},   // conv1 sees 3 channels: +2·6·25
      {"resnet20@3x32x32", 272474},  // with 1x1-conv + batch-norm downsample shortcuts (option B);
                                     // the paper's parameter-free option A would be 269722
      {"vgg-small@3x32x32", 666538},
  };
  for (const Config& c : configs()) EXPECT_EQ(make_model(c.model, c.input, 1)->parameter_count(), expected.at(c.key())) << c.key();
}

TEST(Models, StateNamesDtypesAndShapesEqualPyTorch) {
  const std::string path = std::string(RAISIN_GOLDEN_DIR) + "/model_state_names.txt";
  std::ifstream in(path);
  ASSERT_TRUE(in) << "cannot open " << path;
  std::map<std::string, std::vector<std::string>> lines;
  std::map<std::string, int64_t> counts;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("# ")) {
      std::istringstream words(line.substr(2));
      std::string key, label;
      int64_t n = 0;
      words >> key >> label >> n;
      ASSERT_EQ(label, "parameters") << line;
      counts[key] = n;
    } else if (!line.empty()) {
      const auto tab = line.find('\t');
      lines[line.substr(0, tab)].push_back(line.substr(tab + 1));
    }
  }
  ASSERT_EQ(lines.size(), configs().size()) << path;
  for (const Config& c : configs()) {
    auto model = make_model(c.model, c.input, 1);
    std::vector<std::string> ours;
    for (const auto& [name, t] : model->state_dict())
      ours.push_back(name + "\t" + (t.dtype() == DType::f32 ? "F32" : t.dtype() == DType::i64 ? "I64" : "I32") + "\t" +
                     shape_of(t));
    EXPECT_EQ(ours, lines[c.key()]) << c.key();
    EXPECT_EQ(model->parameter_count(), counts.at(c.key())) << c.key();
  }
}

// The value sequence of tests/golden/generate_model_names.py: splitmix64 output k (k = 1, 2, ...) from
// `seed`, as a double in [0, 1).
double splitmix64_uniform(uint64_t seed, uint64_t k) {
  uint64_t z = seed + k * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return double(z >> 11) * 0x1p-53;
}

// generate_model_names.py's fill_values(): every float state tensor in order from one sequence.
void fill_like_python(Module& model) {
  uint64_t position = 0;
  for (auto& [name, t] : model.state_dict()) {
    if (t.dtype() != DType::f32) continue;
    double lo = -0.1, hi = 0.1;  // biases
    if (name.ends_with("running_var")) lo = 0.5, hi = 1.5;
    else if (name.ends_with("running_mean")) lo = -0.2, hi = 0.2;
    else if (t.ndim() >= 2) hi = std::sqrt(6.0 / double(t.numel() / t.size(0))), lo = -hi;
    else if (name.ends_with(".weight")) lo = 0.5, hi = 1.5;  // batch-norm scale
    float* p = t.f32();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = float(lo + (hi - lo) * splitmix64_uniform(2024, ++position));
  }
}

TEST(Models, LogitsEqualPyTorchWithTheSameWeights) {
  const auto file = safetensors::read(std::string(RAISIN_GOLDEN_DIR) + "/model_forward.safetensors");
  int checked = 0;
  for (const Config& c : configs()) {
    for (const char* mode : {"eval_logits", "train_logits"}) {
      const safetensors::Entry* expected = file.find(c.key() + "." + mode);
      if (!expected) continue;
      auto model = make_model(c.model, c.input, 1);
      fill_like_python(*model);
      Tensor x = Tensor::empty({4, c.input.channels, c.input.height, c.input.width});
      for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = float(-1.0 + 2.0 * splitmix64_uniform(7, uint64_t(i) + 1));
      const Tensor y = forward(*model, x, std::string(mode) == "train_logits");
      ASSERT_EQ(shape_of(y), safetensors::shape_string(expected->shape)) << c.key();
      const auto want = test::to_double(expected->values<float>());
      double largest = 0;
      for (double v : want) largest = std::max(largest, std::abs(v));
      EXPECT_TRUE(test::all_close(c.key() + " " + mode, y.f32(), want.data(), want.size(), 1e-4, 1e-5 * largest));
      ++checked;
    }
  }
  EXPECT_EQ(checked, 5);  // eval for all four models, train for resnet20
}

TEST(Models, SameSeedSameWeightsDifferentSeedDifferentWeights) {
  for (const Config& c : configs()) {
    auto a = make_model(c.model, c.input, 42), b = make_model(c.model, c.input, 42), d = make_model(c.model, c.input, 43);
    EXPECT_EQ(state_bytes(*a), state_bytes(*b)) << c.key();
    const auto pa = a->named_parameters(), pd = d->named_parameters();
    for (size_t i = 0; i < pa.size(); ++i) {
      const Tensor& ta = pa[i].second->value;
      if (ta.ndim() < 2) continue;  // biases 0, batch norm 1: the same for every seed
      EXPECT_NE(std::memcmp(ta.f32(), pd[i].second->value.f32(), size_t(ta.numel()) * sizeof(float)), 0)
          << c.key() << " " << pa[i].first;
    }
  }
}

// Plain nets: Kaiming uniform with a = √5 (PyTorch's default): weights and biases uniform in
// ±1/sqrt(fan_in), std 1/sqrt(3·fan_in). resnet20: convolutions Kaiming normal, std sqrt(2/fan_out);
// batch norm weight 1, bias 0.
TEST(Models, InitialisationIsSeededKaiming) {
  auto moments = [](const Tensor& t) {
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < t.numel(); ++i) sum += t.f32()[i], sq += double(t.f32()[i]) * t.f32()[i];
    const double mean = sum / double(t.numel());
    return std::pair{mean, std::sqrt(sq / double(t.numel()) - mean * mean)};
  };
  auto check_uniform = [&](const std::string& model, ModelInput in, const std::string& weight, int64_t fan_in) {
    auto net = make_model(model, in, 7);
    const double bound = 1.0 / std::sqrt(double(fan_in));
    bool found = false;
    for (const auto& [name, p] : net->named_parameters()) {
      if (name != weight && name != weight.substr(0, weight.size() - 6) + "bias") continue;
      found = true;
      for (int64_t i = 0; i < p->value.numel(); ++i) ASSERT_LE(std::abs(p->value.f32()[i]), bound) << model << " " << name;
      if (name == weight) {
        const auto [mean, std] = moments(p->value);
        EXPECT_NEAR(std, bound / std::sqrt(3.0), 0.02 * bound) << model << " " << name;
        EXPECT_NEAR(mean, 0.0, 0.02 * bound) << model << " " << name;
      }
    }
    EXPECT_TRUE(found) << model << " has no " << weight;
  };
  check_uniform("mlp", {1, 28, 28, 10}, "classifier.0.weight", 784);             // 401408 values
  check_uniform("vgg-small", {3, 32, 32, 10}, "features.10.weight", 64 * 3 * 3);  // 73728 values
  check_uniform("lenet5", {1, 28, 28, 10}, "classifier.0.weight", 400);

  auto resnet = make_model("resnet20", {3, 32, 32, 10}, 7);
  for (const auto& [name, p] : resnet->named_parameters()) {
    const Tensor& t = p->value;
    if (name == "layer3.2.conv2.weight") {
      const auto [mean, std] = moments(t);
      const double want = std::sqrt(2.0 / (64 * 3 * 3));
      EXPECT_NEAR(std, want, 0.02 * want) << name;
      EXPECT_NEAR(mean, 0.0, 0.02 * want) << name;
    } else if (t.ndim() == 1 && name.find("bn") != std::string::npos) {
      const float expected = name.ends_with(".weight") ? 1.0f : 0.0f;
      for (int64_t i = 0; i < t.numel(); ++i) ASSERT_EQ(t.f32()[i], expected) << name;
    }
  }
}

using test::error_message;

TEST(Models, UnknownNameListsTheKnownModels) {
  const std::string message = error_message([] { make_model("resnet18", {3, 32, 32, 10}, 1); });
  EXPECT_NE(message.find("unknown model 'resnet18'"), std::string::npos) << message;
  EXPECT_NE(message.find("lenet5, mlp, resnet20, vgg-small"), std::string::npos) << message;
}

TEST(Models, UnsuitableInputsAreRejected) {
  auto expect = [](const std::string& model, ModelInput in, const std::string& words) {
    const std::string message = error_message([&] { make_model(model, in, 1); });
    EXPECT_NE(message.find(words), std::string::npos) << model << ": " << message;
  };
  expect("lenet5", {1, 20, 20, 10}, "lenet5 needs 28x28 or 32x32 images, got 20x20");
  expect("lenet5", {1, 28, 32, 10}, "got 28x32");
  expect("vgg-small", {3, 30, 30, 10}, "divisible by 8, got 30x30");
  expect("resnet20", {3, 4, 4, 10}, "at least 8x8, got 4x4");
  expect("mlp", {1, 28, 28, 1}, "1 classes");
  expect("mlp", {0, 28, 28, 10}, "bad input 0x28x28");
}

}  // namespace
}  // namespace raisin
