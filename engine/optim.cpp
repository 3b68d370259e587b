// SGD over named parameters: one multi-tensor update (a launch or a few on a GPU) on the parameters' device.
#include "engine/optim.h"

#include "engine/backend.h"

namespace raisin {

Sgd::Sgd(std::vector<std::pair<std::string, Var>> parameters, SgdOptions options)
    : parameters_(std::move(parameters)), options_(options) {
  if (options.momentum < 0 || options.weight_decay < 0)
    throw error("sgd: momentum ", options.momentum, " and weight decay ", options.weight_decay,
                " must not be negative");
  if (options.nesterov && options.momentum == 0) throw error("sgd: Nesterov momentum needs momentum > 0");
  for (const auto& [name, p] : parameters_) {
    if (!p->requires_grad) throw error("sgd: parameter ", name, " does not collect gradients");
    momentum_.push_back(options.momentum > 0 ? Tensor::zeros(p->value.shape(), DType::f32, p->value.device()) : Tensor());
  }
}

void Sgd::step(float lr) {
  if (parameters_.empty()) return;
  const Device device = parameters_[0].second->value.device();
  if (device.is_cpu()) return step(&lr);
  if (!lr_.defined()) lr_ = Tensor::empty({1}, DType::f32, device);
  backend(device).copy_to_device(lr_.f32(), &lr, sizeof lr);
  step(lr_.f32());
}

void Sgd::step(const float* lr, const int32_t* skip) {
  if (parameters_.empty()) return;
  tensors_.clear();
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const Var& p = parameters_[i].second;
    tensors_.push_back({p->value.f32(), p->grad.f32(), momentum_[i].defined() ? momentum_[i].f32() : nullptr,
                        p->value.numel()});
  }
  backend(parameters_[0].second->value.device())
      .sgd_update_multi(tensors_.data(), int(tensors_.size()), lr, options_.momentum, options_.weight_decay,
                        options_.nesterov, skip);
}

void Sgd::zero_grad() {
  for (const auto& [name, p] : parameters_) p->grad.fill(0.0f);
}

std::vector<std::pair<std::string, Tensor>> Sgd::state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (size_t i = 0; i < parameters_.size(); ++i)
    if (momentum_[i].defined()) out.emplace_back("momentum." + parameters_[i].first, momentum_[i]);
  return out;
}

}  // namespace raisin
