// The device runtime without a GPU: discovery must report "no GPU" with a reason instead of failing.
#include <gtest/gtest.h>

#include "kernels/cuda/device.h"
#include "tests/support/check.h"

namespace raisin {
namespace {

TEST(CudaDevice, CountAndReasonAgree) {
  const int count = cuda::device_count();
  EXPECT_GE(count, 0);
  EXPECT_EQ(count == 0, !cuda::no_device_reason().empty()) << cuda::no_device_reason();
  if (count == 0 && test::gpu_required()) FAIL() << "RAISIN_REQUIRE_GPU=1 but " << cuda::no_device_reason();
}

TEST(CudaDevice, CheckNamesTheFailedCall) {
  try {
    RAISIN_CUDA_CHECK(cudaErrorInvalidValue);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("cudaErrorInvalidValue"), std::string::npos) << message;
    EXPECT_NE(message.find("device_test.cpp"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace raisin
