// CUDA SGD, the twin of kernels/cpu/sgd.cpp (torch.optim.SGD with dampening 0: weight decay, momentum,
// Nesterov), plus the multi-tensor form (launch limits in kernels/cuda/sgd_multi.h). Both apply the same per-element
// step; they differ from the CPU only where nvcc fuses a multiply and an add into one rounding (fma).
//
// Launch shapes: sgd_update is one grid-stride loop. sgd_update_multi gives each block one chunk of
// kSgdMultiChunk consecutive elements of one tensor (the launch table maps block → (tensor, chunk)),
// strided by the block's threads so that every access is coalesced.
#include <cstdint>

#include "kernels/cuda/compat.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/sgd_multi.h"

namespace raisin::cuda {

namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return int(blocks < 65535 ? (blocks > 0 ? blocks : 1) : 65535);
}

struct SgdHyper {
  const float* lr;  // a scalar in device memory
  float momentum, weight_decay;
  bool nesterov;
  const int32_t* skip = nullptr;  // in device memory: nonzero leaves everything as it is
};

// g = grad + weight_decay · param; buf = momentum · buf + g; step = nesterov ? g + momentum · buf : buf;
// param −= lr · step. With momentum 0 the buffer is not touched and step = g.
__device__ __forceinline__ void sgd_step(const SgdHyper& h, int64_t i, float* param, const float* grad,
                                         float* momentum_buffer) {
  const float g = grad[i] + h.weight_decay * param[i];
  float step = g;
  if (h.momentum != 0.0f) {
    const float buf = h.momentum * momentum_buffer[i] + g;
    momentum_buffer[i] = buf;
    step = h.nesterov ? g + h.momentum * buf : buf;
  }
  param[i] -= *h.lr * step;
}

__global__ void sgd_update_kernel(int64_t n, SgdHyper h, float* param, const float* grad, float* momentum_buffer) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    sgd_step(h, i, param, grad, momentum_buffer);
}

// The tensors of one multi-tensor launch and, per block, which tensor and which chunk of it.
struct SgdLaunchTable {
  float* param[kSgdMultiMaxTensors];
  const float* grad[kSgdMultiMaxTensors];
  float* momentum_buffer[kSgdMultiMaxTensors];
  int64_t n[kSgdMultiMaxTensors];
  uint8_t block_tensor[kSgdMultiMaxBlocks];
  int32_t block_chunk[kSgdMultiMaxBlocks];
};
static_assert(kSgdMultiMaxTensors <= 256, "block_tensor holds a tensor slot in one byte");
static_assert(sizeof(SgdLaunchTable) + sizeof(SgdHyper) <= 4096, "kernel arguments are limited to 4 KiB");

__global__ void sgd_update_multi_kernel(SgdLaunchTable table, SgdHyper h) {
  if (h.skip && *h.skip != 0) return;
  const int t = table.block_tensor[blockIdx.x];
  const int64_t begin = int64_t(table.block_chunk[blockIdx.x]) * kSgdMultiChunk;
  const int64_t end = begin + kSgdMultiChunk < table.n[t] ? begin + kSgdMultiChunk : table.n[t];
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x)
    sgd_step(h, i, table.param[t], table.grad[t], table.momentum_buffer[t]);
}

// Fills launch tables tensor by tensor, chunk by chunk, launching whenever one is full.
class SgdMultiLauncher {
 public:
  explicit SgdMultiLauncher(SgdHyper h) : hyper_(h) {}

  void add(const kernels::SgdTensor& t) {
    if (t.n <= 0) return;
    if (tensors_ == kSgdMultiMaxTensors) launch();
    int slot = put(t);
    const int64_t chunks = (t.n + kSgdMultiChunk - 1) / kSgdMultiChunk;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      if (blocks_ == kSgdMultiMaxBlocks) {
        launch();
        slot = put(t);  // the rest of this tensor goes into the next table
      }
      table_.block_tensor[blocks_] = uint8_t(slot);
      table_.block_chunk[blocks_] = int32_t(chunk);
      ++blocks_;
    }
  }

  void launch() {
    if (blocks_ > 0) {
      RAISIN_LAUNCH(sgd_update_multi_kernel, blocks_, kThreads, 0, current_stream())(table_, hyper_);
      RAISIN_CUDA_CHECK(cudaGetLastError());
    }
    tensors_ = 0;
    blocks_ = 0;
  }

 private:
  int put(const kernels::SgdTensor& t) {
    table_.param[tensors_] = t.param;
    table_.grad[tensors_] = t.grad;
    table_.momentum_buffer[tensors_] = t.momentum_buffer;
    table_.n[tensors_] = t.n;
    return tensors_++;
  }

  SgdHyper hyper_;
  SgdLaunchTable table_{};
  int tensors_ = 0, blocks_ = 0;
};

}  // namespace

void sgd_update(int64_t n, const float* lr, float momentum, float weight_decay, bool nesterov, float* param,
                const float* grad, float* momentum_buffer) {
  if (n <= 0) return;
  RAISIN_LAUNCH(sgd_update_kernel, blocks_for(n), kThreads, 0, current_stream())(
      n, SgdHyper{lr, momentum, weight_decay, nesterov}, param, grad, momentum_buffer);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

void sgd_update_multi(const kernels::SgdTensor* tensors, int count, const float* lr, float momentum, float weight_decay,
                      bool nesterov, const int32_t* skip) {
  SgdMultiLauncher launcher(SgdHyper{lr, momentum, weight_decay, nesterov, skip});
  for (int k = 0; k < count; ++k) launcher.add(tensors[k]);
  launcher.launch();
}

}  // namespace raisin::cuda
