// Multi-tensor SGD for the CUDA backend: one launch updates many parameter tensors, instead of one
// launch per tensor (a ResNet has ~60). CUDA-only, with no CPU twin of its own: it applies exactly
// sgd_update (kernels/signatures.inc) to every tensor, and its test compares it with cpu::sgd_update.
#pragma once
#include <cstdint>

namespace raisin::cuda {

// One tensor to update: n floats of param, grad and (unless momentum is 0) momentum_buffer, on the device.
struct SgdTensor {
  float* param;
  const float* grad;
  float* momentum_buffer;
  int64_t n;
};

// The kernel's launch table travels as a kernel argument (no device copy of the list, nothing to
// synchronise, capturable in a CUDA graph). One launch covers up to kSgdMultiMaxTensors tensors and
// kSgdMultiMaxBlocks blocks of kSgdMultiChunk elements each; longer lists take several launches.
constexpr int kSgdMultiMaxTensors = 48;
constexpr int kSgdMultiMaxBlocks = 256;
constexpr int64_t kSgdMultiChunk = 4096;

// sgd_update(t.n, lr, momentum, weight_decay, nesterov, t.param, t.grad, t.momentum_buffer) for each of
// the `count` tensors (a host array of device pointers); tensors with n = 0 are skipped.
void sgd_update_multi(const SgdTensor* tensors, int count, const float* lr, float momentum, float weight_decay,
                      bool nesterov);

}  // namespace raisin::cuda
