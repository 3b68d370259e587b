// The SGD update (torch.optim.SGD with dampening 0): weight decay, momentum, Nesterov, in one pass; and
// the same over a list of tensors.
#include "kernels/cpu/kernels.h"

namespace raisin::cpu {

void sgd_update(int64_t n, const float* lr_scalar, float momentum, float weight_decay, bool nesterov, float* param,
                const float* grad, float* momentum_buffer) {
  const float lr = *lr_scalar;
#pragma omp parallel for simd if (n >= (1 << 15))
  for (int64_t i = 0; i < n; ++i) {
    const float g = grad[i] + weight_decay * param[i];
    float step = g;
    if (momentum != 0.0f) {
      const float buf = momentum * momentum_buffer[i] + g;
      momentum_buffer[i] = buf;
      step = nesterov ? g + momentum * buf : buf;
    }
    param[i] -= lr * step;
  }
}

void sgd_update_multi(const kernels::SgdTensor* tensors, int count, const float* lr, float momentum, float weight_decay,
                      bool nesterov, const int32_t* skip) {
  if (skip && skip[0] != 0) return;
  for (int k = 0; k < count; ++k)
    sgd_update(tensors[k].n, lr, momentum, weight_decay, nesterov, tensors[k].param, tensors[k].grad,
               tensors[k].momentum_buffer);
}

}  // namespace raisin::cpu
