// CUDA parity for the numeric-fault check (kernels/cuda/check.cu against kernels/cpu/check.cpp): the
// same first non-finite value (buffer, value) and skip flag for buffers spread over several launch tables
// (more than 48 buffers, and more than 256 chunks of 4096), faults placed early, late and in several
// buffers at once, and none; and a step with a fault leaves SGD and the RAIS state unchanged.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <deque>
#include <limits>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/kernels.h"
#include "tests/cuda/parity.h"
#include "tests/support/check.h"

namespace raisin {
namespace {

using test::random_floats;

struct Found {
  double buffer, value;
  int32_t skip;
};

TEST_F(CudaParity, FindNonfiniteMatchesCpu) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  std::vector<std::vector<float>> host;
  for (int k = 0; k < 70; ++k) host.push_back(random_floats(k % 7 == 3 ? 300000 : 37 * k + 1, uint64_t(k)));
  host.push_back({});  // an empty buffer is skipped
  // Each case: faults as (buffer, element, value); an empty list is the all-finite case.
  struct Fault {
    size_t buffer;
    size_t element;
    float value;
  };
  const std::vector<std::vector<Fault>> cases = {
      {},
      {{0, 0, nan}},
      {{69, 69 * 37, -inf}},
      {{3, 299999, inf}, {3, 250000, nan}, {10, 4, nan}},
      {{66, 5, nan}, {52, 100, inf}},
  };
  const int64_t row = 1;
  DeviceBuffer<int64_t> dev_row(std::vector<int64_t>{row});
  for (size_t c = 0; c < cases.size(); ++c) {
    SCOPED_TRACE("case " + std::to_string(c));
    std::vector<std::vector<float>> buffers = host;
    for (const Fault& f : cases[c]) buffers[f.buffer][f.element] = f.value;
    std::vector<kernels::CheckTensor> cpu_tensors, gpu_tensors;
    std::deque<DeviceBuffer<float>> on_device;
    for (const auto& b : buffers) {
      cpu_tensors.push_back({b.data(), int64_t(b.size())});
      on_device.emplace_back(b);
      gpu_tensors.push_back({on_device.back().ptr, int64_t(b.size())});
    }
    std::vector<double> rows(size_t(2 * kernels::kStepMetricCount), 0.0);
    int32_t skip = -1;
    cpu::find_nonfinite(cpu_tensors.data(), int(cpu_tensors.size()), &row, rows.data(), &skip);
    DeviceBuffer<double> dev_rows(std::vector<double>(size_t(2 * kernels::kStepMetricCount), 0.0));
    DeviceBuffer<int32_t> dev_skip(std::vector<int32_t>{-1});
    cuda::find_nonfinite(gpu_tensors.data(), int(gpu_tensors.size()), dev_row.ptr, dev_rows.ptr, dev_skip.ptr);
    const std::vector<double> gpu_rows = dev_rows.host();
    const double* expected = rows.data() + kernels::kStepMetricCount;
    const double* actual = gpu_rows.data() + kernels::kStepMetricCount;
    EXPECT_EQ(actual[kernels::kMetricFaultBuffer], expected[kernels::kMetricFaultBuffer]);
    if (std::isnan(expected[kernels::kMetricFaultValue])) {
      EXPECT_TRUE(std::isnan(actual[kernels::kMetricFaultValue]));
    } else {
      EXPECT_EQ(actual[kernels::kMetricFaultValue], expected[kernels::kMetricFaultValue]);
    }
    EXPECT_EQ(dev_skip.host()[0], skip);
    EXPECT_EQ(skip, cases[c].empty() ? 0 : 1);
  }
}

TEST_F(CudaParity, AFaultyStepLeavesSgdAndRaisStateUnchanged) {
  const std::vector<float> param = random_floats(5000, 1), grad = random_floats(5000, 2), buffer = random_floats(5000, 3);
  DeviceBuffer<float> dev_param(param), dev_grad(grad), dev_buffer(buffer), dev_lr(std::vector<float>{0.1f});
  DeviceBuffer<int32_t> fault(std::vector<int32_t>{1});
  const kernels::SgdTensor tensor{dev_param.ptr, dev_grad.ptr, dev_buffer.ptr, 5000};
  cuda::sgd_update_multi(&tensor, 1, dev_lr.ptr, 0.9f, 1e-4f, false, fault.ptr);
  EXPECT_EQ(dev_param.host(), param);
  EXPECT_EQ(dev_buffer.host(), buffer);

  const std::vector<int32_t> indices = {3, 5};
  const std::vector<float> norms = {std::numeric_limits<float>::quiet_NaN(), 0.5f};
  DeviceBuffer<int32_t> dev_indices(indices);
  DeviceBuffer<float> dev_norms(norms), record_norms(std::vector<float>(4, -1.0f)), last_norm(std::vector<float>(8, -1.0f));
  DeviceBuffer<int64_t> last_seen(std::vector<int64_t>(8, -7)), step(std::vector<int64_t>{9}), first(std::vector<int64_t>{0});
  cuda::rais_observe(2, dev_indices.ptr, dev_norms.ptr, step.ptr, first.ptr, 4, record_norms.ptr, last_norm.ptr,
                     last_seen.ptr, fault.ptr);
  EXPECT_EQ(record_norms.host(), std::vector<float>(4, -1.0f));
  EXPECT_EQ(last_norm.host(), std::vector<float>(8, -1.0f));
  EXPECT_EQ(last_seen.host(), std::vector<int64_t>(8, -7));
  const std::vector<double> state = {0.5, 0.25, 0.125, 0.9, 1.5, 2, 7};
  DeviceBuffer<double> dev_state(state);
  DeviceBuffer<float> dlogits(std::vector<float>(20, 0.01f));
  cuda::gain_ratio_update(2, 10, dev_norms.ptr, nullptr, dlogits.ptr, {0.1, 0.5, 4.0}, dev_state.ptr, fault.ptr);
  EXPECT_EQ(dev_state.host(), state);
}

}  // namespace
}  // namespace raisin
