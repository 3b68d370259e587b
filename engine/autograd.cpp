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
    v->grad = arena_ ? Tensor::empty(*arena_, v->value.shape()) : Tensor::empty(v->value.shape());
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

Tensor Context::allocate(const Shape& shape, DType dtype) const {
  return arena ? Tensor::empty(*arena, shape, dtype) : Tensor::empty(shape, dtype);
}

bool Context::records(std::initializer_list<const Var*> inputs) const {
  if (!tape) return false;
  for (const Var* v : inputs)
    if (*v && (*v)->requires_grad) return true;
  return false;
}

}  // namespace raisin
