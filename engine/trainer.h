// One model, one dataset, one sampler, on the model's device (move the model first, Module::to): the training step (draw, gather and augment, forward, fused
// loss, backward, SGD at r̂ · lr_schedule(progress)) and evaluation. Progress is counted in epochs
// (epochs-equivalent for importance samplers: each step adds r̂ · B / n). Activations live in an arena
// reset every step, so after the first step a step allocates nothing.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/dataset.h"
#include "engine/device_data.h"
#include "engine/module.h"
#include "engine/optim.h"
#include "engine/sampler.h"
#include "engine/schedule.h"

namespace raisin {

struct TrainOptions {
  int batch = 128;
  Schedule schedule;
  SgdOptions sgd;
  uint64_t seed = 1;  // dropout and augmentation draws
  int crop_padding = 0;  // random crop after zero padding by this many pixels (0: off)
  bool flip = false;     // random horizontal flips
};

struct StepResult {
  int64_t step = 0;          // index of the step just taken
  double loss = 0;           // weighted mean loss of the batch
  double accuracy = 0;       // fraction of the batch classified correctly (importance-weighted, like the loss)
  float lr = 0;              // learning rate applied
  double lr_multiplier = 1;  // r̂
};

struct Evaluation {
  double loss = 0;      // mean cross-entropy
  double accuracy = 0;  // fraction correct
  int64_t count = 0;
};

// Mean loss and accuracy of `model` in evaluation mode over all of `data`, in batches of `batch`.
Evaluation evaluate(Module& model, const Dataset& data, const Normalization& normalization, int batch = 500);

// Fresh proxy norms ṽ_i of every example of `data` (evaluation mode, no augmentation) into `norms`;
// returns ‖(1/n) Σ_i (softmax(z_i) − onehot(y_i))‖², the squared norm of the full-data gradient of the
// last layer's bias. The oracle sampler's view of the training set.
double proxy_norms(Module& model, const Dataset& data, const Normalization& normalization, std::vector<float>& norms,
                   int batch = 500);

class Trainer {
 public:
  Trainer(Module& model, const Dataset& train, const Normalization& normalization, Sampler& sampler,
          TrainOptions options);

  StepResult step();
  Evaluation evaluate(const Dataset& data, int batch = 500) { return raisin::evaluate(model_, data, normalization_, batch); }

  int64_t steps() const { return step_; }
  double progress() const { return progress_; }  // epochs (-equivalent)
  // Where to continue from (used by resume, with the model and optimizer state restored).
  void restore(int64_t steps, double progress);
  Sgd& optimizer() { return optimizer_; }
  const Arena& arena() const { return arena_; }

 private:
  Module& model_;
  const Dataset& train_;
  Sampler& sampler_;
  TrainOptions options_;
  Sgd optimizer_;
  Normalization normalization_;
  DeviceData data_;  // the training set on the model's device
  Arena arena_;      // on the model's device
  std::vector<int32_t> indices_, labels_;
  std::vector<float> weights_;
  int64_t step_ = 0;
  double progress_ = 0;
};

}  // namespace raisin
