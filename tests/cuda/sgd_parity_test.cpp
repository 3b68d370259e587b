// CUDA parity for SGD (kernels/cuda/sgd.cu against kernels/cpu/sgd.cpp): sgd_update and the multi-tensor
// sgd_update_multi (launch limits in kernels/cuda/sgd_multi.h) over several steps, with and without momentum, Nesterov
// and weight decay. nvcc may fuse a multiply and an add into one fma where the CPU rounds twice, so
// parameters and momentum buffers are compared with a tolerance of a few float roundings.
#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/sgd_multi.h"
#include "tests/cuda/parity.h"
#include "tests/support/check.h"

namespace raisin {
namespace {

using test::all_close;
using test::random_floats;
using test::to_double;

struct Hyper {
  float lr, momentum, weight_decay;
  bool nesterov;
};

// Plain SGD (the momentum buffer is then null), momentum with and without Nesterov and weight decay.
const Hyper kHypers[] = {
    {0.1f, 0.0f, 0.0f, false}, {0.05f, 0.0f, 5e-4f, false}, {0.1f, 0.9f, 5e-4f, false},
    {0.1f, 0.9f, 1e-4f, true}, {0.2f, 0.5f, 0.0f, true},
};
constexpr int kSteps = 3;
constexpr double kRtol = 1e-6, kAtol = 1e-6;

::testing::Message describe(const Hyper& h) {
  return ::testing::Message() << "lr " << h.lr << " momentum " << h.momentum << " weight_decay " << h.weight_decay
                              << " nesterov " << h.nesterov;
}

TEST_F(CudaParity, SgdUpdateMatchesCpu) {
  for (int64_t n : {int64_t(1), int64_t(255), int64_t(257), int64_t(100003)})
    for (const Hyper& h : kHypers) {
      SCOPED_TRACE(describe(h) << " n=" << n);
      std::vector<float> param = random_floats(n, 1), buffer(n, 0.0f);
      DeviceBuffer<float> dev_param(param), dev_buffer(buffer), dev_lr(std::vector<float>{h.lr});
      float* cpu_buffer = h.momentum != 0.0f ? buffer.data() : nullptr;
      float* gpu_buffer = h.momentum != 0.0f ? dev_buffer.ptr : nullptr;
      for (int step = 0; step < kSteps; ++step) {
        const std::vector<float> grad = random_floats(n, 10 + step);
        DeviceBuffer<float> dev_grad(grad);
        cpu::sgd_update(n, &h.lr, h.momentum, h.weight_decay, h.nesterov, param.data(), grad.data(), cpu_buffer);
        cuda::sgd_update(n, dev_lr.ptr, h.momentum, h.weight_decay, h.nesterov, dev_param.ptr, dev_grad.ptr, gpu_buffer);
      }
      EXPECT_TRUE(all_close("param", dev_param.host(), to_double(param), kRtol, kAtol));
      EXPECT_TRUE(all_close("momentum buffer", dev_buffer.host(), to_double(buffer), kRtol, kAtol));
    }
}

// Tensor sizes for the multi-tensor update: empty, single elements, chunk boundaries, more tensors than
// one launch table holds, and one tensor too long for one launch, split across two tables with more
// tensors after it (which take over its table slot in the second table).
std::vector<int64_t> multi_sizes() {
  const int64_t chunk = cuda::kSgdMultiChunk;
  std::vector<int64_t> sizes = {0, 1, chunk - 1, chunk, chunk + 1};
  const std::vector<int32_t> small = test::random_ints(cuda::kSgdMultiMaxTensors + 5, 3, 700);
  sizes.insert(sizes.end(), small.begin(), small.begin() + 10);
  sizes.push_back(int64_t(cuda::kSgdMultiMaxBlocks) * chunk + 1000);
  sizes.insert(sizes.end(), small.begin() + 10, small.end());
  return sizes;
}

TEST_F(CudaParity, SgdUpdateMultiMatchesCpuPerTensor) {
  const std::vector<int64_t> sizes = multi_sizes();
  for (const Hyper& h : {kHypers[1], kHypers[3]}) {
    SCOPED_TRACE(describe(h));
    DeviceBuffer<float> dev_lr(std::vector<float>{h.lr});
    std::vector<std::vector<float>> params, buffers;
    std::deque<DeviceBuffer<float>> dev_params, dev_buffers;  // deque: elements never move
    for (size_t k = 0; k < sizes.size(); ++k) {
      params.push_back(random_floats(sizes[k], 100 + k));
      buffers.emplace_back(sizes[k], 0.0f);
      dev_params.emplace_back(params.back());
      dev_buffers.emplace_back(buffers.back());
    }
    for (int step = 0; step < kSteps; ++step) {
      std::deque<DeviceBuffer<float>> dev_grads;
      std::vector<kernels::SgdTensor> tensors;
      for (size_t k = 0; k < sizes.size(); ++k) {
        const std::vector<float> grad = random_floats(sizes[k], 1000 * step + k);
        cpu::sgd_update(sizes[k], &h.lr, h.momentum, h.weight_decay, h.nesterov, params[k].data(), grad.data(),
                        h.momentum != 0.0f ? buffers[k].data() : nullptr);
        dev_grads.emplace_back(grad);
        tensors.push_back({dev_params[k].ptr, dev_grads.back().ptr,
                           h.momentum != 0.0f ? dev_buffers[k].ptr : nullptr, sizes[k]});
      }
      cuda::sgd_update_multi(tensors.data(), int(tensors.size()), dev_lr.ptr, h.momentum, h.weight_decay, h.nesterov,
                             nullptr);
    }
    for (size_t k = 0; k < sizes.size(); ++k) {
      EXPECT_TRUE(all_close("param", dev_params[k].host(), to_double(params[k]), kRtol, kAtol))
          << "tensor " << k << " of " << sizes[k];
      EXPECT_TRUE(all_close("momentum buffer", dev_buffers[k].host(), to_double(buffers[k]), kRtol, kAtol))
          << "tensor " << k << " of " << sizes[k];
    }
  }
}

}  // namespace
}  // namespace raisin
