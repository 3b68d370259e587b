// SGD with momentum, Nesterov and weight decay (torch.optim.SGD semantics), over named parameters;
// its momentum buffers are named after their parameters so that checkpoints can hold them.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "engine/autograd.h"
#include "kernels/shapes.h"

namespace raisin {

struct SgdOptions {
  float momentum = 0.9f;
  float weight_decay = 5e-4f;
  bool nesterov = false;
};

class Sgd {
 public:
  Sgd(std::vector<std::pair<std::string, Var>> parameters, SgdOptions options);
  // One update of every parameter from its gradient, with learning rate `lr` (a float in the parameters'
  // device memory: the trainer computes it there, so the update never waits for the host); none when
  // `skip` (an int32 in that memory, or null) is nonzero: the trainer's check found a non-finite value.
  void step(const float* lr, const int32_t* skip = nullptr);
  // The same with a learning rate known on the host (copied to the device first when there is one).
  void step(float lr);
  void zero_grad();
  // Every parameter's gradient, named after its parameter, in the order step() updates them.
  const std::vector<std::pair<std::string, Var>>& parameters() const { return parameters_; }
  // "momentum.<parameter name>" → buffer (empty when momentum is 0).
  std::vector<std::pair<std::string, Tensor>> state() const;
  const SgdOptions& options() const { return options_; }

 private:
  std::vector<std::pair<std::string, Var>> parameters_;
  std::vector<Tensor> momentum_;
  Tensor lr_;  // step(float)'s learning rate on the parameters' device
  std::vector<kernels::SgdTensor> tensors_;  // the update's list, rebuilt each step (parameters may move)
  SgdOptions options_;
};

}  // namespace raisin
