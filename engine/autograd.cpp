// Tape-based reverse-mode differentiation.
#include "engine/autograd.h"

#include <cstring>

namespace raisin {

Var constant(Tensor value) {
  auto v = std::make_shared<Variable>();
  v->value = std::move(value);
  return v;
}

Var parameter(Tensor value) {
  auto v = std::make_shared<Variable>();
  v->grad = Tensor::zeros(value.shape(), value.dtype(), value.device());
  v->value = std::move(value);
  v->requires_grad = true;
  return v;
}

Tensor& Tape::grad(const Var& v) {
  if (!v->grad.defined()) {
    v->grad = arena_ && arena_->device() == v->value.device() ? Tensor::empty(*arena_, v->value.shape())
                                                              : Tensor::empty(v->value.shape(), DType::f32, v->value.device());
    v->grad.fill(0.0f);
  }
  return v->grad;
}

void Tape::backward(const Var& loss) {
  if (!loss || loss->value.numel() != 1)
    throw error("backward: the loss must be a single value, got ", loss ? loss->value.str() : "null");
  if (!loss->requires_grad) throw error("backward: the loss does not depend on anything that requires grad");
  grad(loss).fill(1.0f);
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) (*it)();
  entries_.clear();
}

void Context::update_host(std::function<void()> update) const {
  if (host_updates) host_updates->push_back(std::move(update));
  else update();
}

Tensor Context::allocate(Device device, const Shape& shape, DType dtype) const {
  if (!arena) return Tensor::empty(shape, dtype, device);
  if (!(arena->device() == device))
    throw error("forward pass: an input is on ", device.str(), " but the step's arena is on ", arena->device().str(),
                "; move the model and the batch to one device");
  return Tensor::empty(*arena, shape, dtype);
}

bool Context::records(std::initializer_list<const Var*> inputs) const {
  if (!tape) return false;
  for (const Var* v : inputs)
    if (*v && (*v)->requires_grad) return true;
  return false;
}

}  // namespace raisin
