// The built-in nets, by name. Each is built from engine layers with PyTorch-style parameter names
// (tools/torch_models.py defines the same nets in PyTorch, so checkpoints load there unchanged) and
// initialised with seeded Kaiming initialisation.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/module.h"

namespace raisin {

struct ModelInput {
  int channels, height, width;
  int classes;
};

// "mlp", "lenet5", "resnet20", "vgg-small"; throws naming the known models otherwise, or when the
// input does not suit the model.
std::unique_ptr<Module> make_model(const std::string& name, const ModelInput& input, uint64_t seed);
std::vector<std::string> model_names();

}  // namespace raisin
