// The SGD kernel against torch.optim.SGD's update rule, written out in double over several steps.
#include <gtest/gtest.h>

#include "kernels/cpu/kernels.h"
#include "tests/support/check.h"

namespace raisin {
namespace {

struct Case {
  float lr, momentum, weight_decay;
  bool nesterov;
};

class SgdCpu : public ::testing::TestWithParam<Case> {};

TEST_P(SgdCpu, MatchesTorchUpdateRuleOverSteps) {
  const Case c = GetParam();
  const int64_t n = 1001;
  auto param = test::random_floats(n, 1);
  std::vector<float> buffer(n, 0.0f);
  std::vector<double> ref_param = test::to_double(param), ref_buffer(n, 0.0);
  for (int step = 0; step < 4; ++step) {
    const auto grad = test::random_floats(n, 100 + step);
    cpu::sgd_update(n, &c.lr, c.momentum, c.weight_decay, c.nesterov, param.data(), grad.data(),
                    c.momentum != 0 ? buffer.data() : nullptr);
    for (int64_t i = 0; i < n; ++i) {
      double d = grad[i] + double(c.weight_decay) * ref_param[i];
      if (c.momentum != 0) {
        ref_buffer[i] = step == 0 ? d : c.momentum * ref_buffer[i] + d;  // torch: buf = clone(d) first
        d = c.nesterov ? d + c.momentum * ref_buffer[i] : ref_buffer[i];
      }
      ref_param[i] -= c.lr * d;
    }
    ASSERT_TRUE(test::all_close("param after step " + std::to_string(step), param, ref_param, 1e-5, 1e-6));
    if (c.momentum != 0) {
      ASSERT_TRUE(test::all_close("momentum buffer", buffer, ref_buffer, 1e-5, 1e-6));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, SgdCpu,
                         ::testing::Values(Case{0.1f, 0.0f, 0.0f, false}, Case{0.05f, 0.9f, 0.0f, false},
                                           Case{0.05f, 0.9f, 5e-4f, false}, Case{0.05f, 0.9f, 5e-4f, true},
                                           Case{0.2f, 0.0f, 1e-2f, false}));

TEST(SgdCpuLarge, ParallelPathMatchesSerialFormula) {
  const int64_t n = 1 << 17;
  auto param = test::random_floats(n, 3), grad = test::random_floats(n, 4);
  std::vector<float> buffer(n, 0.5f);
  std::vector<double> expected(n);
  for (int64_t i = 0; i < n; ++i) {
    const double g = grad[i] + 1e-3 * param[i];
    expected[i] = param[i] - 0.01 * (0.9 * 0.5 + g);
  }
  const float lr = 0.01f;
  cpu::sgd_update(n, &lr, 0.9f, 1e-3f, false, param.data(), grad.data(), buffer.data());
  EXPECT_TRUE(test::all_close("param", param, expected, 1e-5, 1e-7));
}

// The multi-tensor form is sgd_update applied to each tensor (an empty one skipped), bit for bit.
TEST(SgdCpuMulti, EqualsOneUpdatePerTensor) {
  const std::vector<int64_t> sizes = {7, 0, 1000, 1};
  std::vector<std::vector<float>> params, buffers, grads, expected_params, expected_buffers;
  std::vector<kernels::SgdTensor> tensors;
  const float lr = 0.05f;
  for (size_t k = 0; k < sizes.size(); ++k) {
    params.push_back(test::random_floats(sizes[k], 10 + int(k)));
    grads.push_back(test::random_floats(sizes[k], 20 + int(k)));
    buffers.emplace_back(size_t(sizes[k]), 0.25f);
  }
  expected_params = params;
  expected_buffers = buffers;
  for (size_t k = 0; k < sizes.size(); ++k) {
    tensors.push_back({params[k].data(), grads[k].data(), buffers[k].data(), sizes[k]});
    cpu::sgd_update(sizes[k], &lr, 0.9f, 1e-3f, true, expected_params[k].data(), grads[k].data(),
                    expected_buffers[k].data());
  }
  const int32_t no_fault = 0, fault = 1;
  const auto before_params = params, before_buffers = buffers;
  cpu::sgd_update_multi(tensors.data(), int(tensors.size()), &lr, 0.9f, 1e-3f, true, &fault);
  EXPECT_EQ(params, before_params) << "a step with a fault changes nothing";
  EXPECT_EQ(buffers, before_buffers);
  cpu::sgd_update_multi(tensors.data(), int(tensors.size()), &lr, 0.9f, 1e-3f, true, &no_fault);
  EXPECT_EQ(params, expected_params);
  EXPECT_EQ(buffers, expected_buffers);
}

}  // namespace
}  // namespace raisin
