// Module bookkeeping: names, parameters, buffers, Sequential.
#include "engine/module.h"

namespace raisin {

Var Module::register_parameter(std::string name, Tensor value) {
  Var p = parameter(std::move(value));
  parameters_.emplace_back(std::move(name), p);
  return p;
}

Tensor Module::register_buffer(std::string name, Tensor value) {
  buffers_.emplace_back(std::move(name), value);
  return value;  // shares storage with the registered buffer
}

void Module::collect_parameters(const std::string& prefix, std::vector<std::pair<std::string, Var>>& out) const {
  for (const auto& [name, p] : parameters_) out.emplace_back(prefix + name, p);
  for (const auto& [name, child] : children_) child->collect_parameters(prefix + name + ".", out);
}

void Module::collect_buffers(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [name, b] : buffers_) out.emplace_back(prefix + name, b);
  for (const auto& [name, child] : children_) child->collect_buffers(prefix + name + ".", out);
}

void Module::collect_state(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [name, p] : parameters_) out.emplace_back(prefix + name, p->value);
  for (const auto& [name, b] : buffers_) out.emplace_back(prefix + name, b);
  for (const auto& [name, child] : children_) child->collect_state(prefix + name + ".", out);
}

std::vector<std::pair<std::string, Var>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Var>> out;
  collect_parameters("", out);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect_buffers("", out);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::state_dict() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect_state("", out);
  return out;
}

void Module::zero_grad() {
  for (auto& [name, p] : named_parameters()) p->grad.fill(0.0f);
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (auto& [name, p] : named_parameters()) n += p->value.numel();
  return n;
}

Var Sequential::forward(Context& ctx, const Var& x) {
  Var h = x;
  for (Module* layer : layers_) h = layer->forward(ctx, h);
  return h;
}

void Module::to(Device device) {
  for (auto& [name, p] : named_parameters()) {
    p->value.relocate(device);
    p->grad.relocate(device);
  }
  for (auto& [name, b] : named_buffers())
    if (b.dtype() == DType::f32) b.relocate(device);
}

Device Module::device() const {
  const auto parameters = named_parameters();
  return parameters.empty() ? Device::cpu() : parameters.front().second->value.device();
}

}  // namespace raisin
