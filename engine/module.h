// Module: a layer or a composition of layers, with parameters and buffers named as PyTorch names
// them (`features.0.weight`, `layer1.0.bn1.running_var`), so checkpoints map one to one.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/autograd.h"

namespace raisin {

class Module {
 public:
  virtual ~Module() = default;
  virtual Var forward(Context& ctx, const Var& x) = 0;

  // Recursive, in PyTorch's order: own entries first (in registration order), then each child's.
  std::vector<std::pair<std::string, Var>> named_parameters() const;
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  // Parameters and buffers, per module, as PyTorch's state_dict() orders them.
  std::vector<std::pair<std::string, Tensor>> state_dict() const;
  void zero_grad();
  // Moves every parameter (value and gradient) and every f32 buffer to `device`; integer buffers
  // (num_batches_tracked) are host-side counters and stay on the cpu. Build the optimizer after this.
  void to(Device device);
  // Where the parameters are (the cpu for a module without any).
  Device device() const;
  int64_t parameter_count() const;

 protected:
  Var register_parameter(std::string name, Tensor value);
  Tensor register_buffer(std::string name, Tensor value);
  template <typename M>
  M& register_module(std::string name, std::unique_ptr<M> module) {
    M& ref = *module;
    children_.emplace_back(std::move(name), std::move(module));
    return ref;
  }

 private:
  void collect_state(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const;
  void collect_parameters(const std::string& prefix, std::vector<std::pair<std::string, Var>>& out) const;
  void collect_buffers(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const;

  std::vector<std::pair<std::string, Var>> parameters_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::unique_ptr<Module>>> children_;
};

// Runs its children in order; they are named "0", "1", ... as in torch.nn.Sequential.
class Sequential : public Module {
 public:
  template <typename M, typename... Args>
  M& add(Args&&... args) {
    auto& m = register_module(std::to_string(layers_.size()), std::make_unique<M>(std::forward<Args>(args)...));
    layers_.push_back(&m);
    return m;
  }
  Var forward(Context& ctx, const Var& x) override;
  size_t size() const { return layers_.size(); }

 private:
  std::vector<Module*> layers_;
};

}  // namespace raisin
