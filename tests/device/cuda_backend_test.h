// The fixture of the device tests: registers the CUDA backend (the emulated one in
// raisin_device_emu_tests, the real one in raisin_device_tests) and skips with the reason when there is
// none — or fails, under RAISIN_REQUIRE_GPU=1.
#pragma once
#include <gtest/gtest.h>

#include <string>

#include "engine/cuda/backend.h"
#include "tests/support/check.h"

namespace raisin::test {

class CudaBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string reason = register_cuda_backend();
    if (reason.empty()) return;
    if (gpu_required()) FAIL() << "RAISIN_REQUIRE_GPU=1 but " << reason;
    GTEST_SKIP() << reason;
  }
};

}  // namespace raisin::test
