// The cuBLAS and cuDNN check macros name the library's status, the failed call and where it was made
// (no GPU needed: the error strings come from the host libraries). GPU build only: the emulated backend
// has no cuBLAS or cuDNN.
#if !RAISIN_CUDA_EMULATED
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "kernels/cuda/vendor/handles.h"

namespace raisin {
namespace {

std::string failure_of(void (*fail)()) {
  try {
    fail();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no exception";
  return "";
}

TEST(CudaVendorChecks, CublasFailureNamesStatusCallAndPlace) {
  const std::string message = failure_of([] { RAISIN_CUBLAS_CHECK(CUBLAS_STATUS_INVALID_VALUE); });
  EXPECT_NE(message.find("CUBLAS_STATUS_INVALID_VALUE"), std::string::npos) << message;
  EXPECT_NE(message.find("vendor_checks_test.cpp"), std::string::npos) << message;
}

TEST(CudaVendorChecks, CudnnFailureNamesStatusCallAndPlace) {
  const std::string message = failure_of([] { RAISIN_CUDNN_CHECK(CUDNN_STATUS_BAD_PARAM); });
  EXPECT_NE(message.find("CUDNN_STATUS_BAD_PARAM"), std::string::npos) << message;
  EXPECT_NE(message.find("vendor_checks_test.cpp"), std::string::npos) << message;
}

TEST(CudaVendorChecks, SuccessPassesQuietly) {
  EXPECT_NO_THROW(RAISIN_CUBLAS_CHECK(CUBLAS_STATUS_SUCCESS));
  EXPECT_NO_THROW(RAISIN_CUDNN_CHECK(CUDNN_STATUS_SUCCESS));
}

TEST(CudaVendorChecks, Tf32IsOffUntilAllowed) {
  EXPECT_FALSE(cuda::allow_tf32());
  cuda::set_allow_tf32(true);
  EXPECT_TRUE(cuda::allow_tf32());
  cuda::set_allow_tf32(false);
  EXPECT_FALSE(cuda::allow_tf32());
}

}  // namespace
}  // namespace raisin
#endif  // !RAISIN_CUDA_EMULATED
