// CUDA parity for the elementwise kernels: the same random inputs through the CPU reference and the
// GPU kernel must agree. Skips without a GPU unless RAISIN_REQUIRE_GPU=1, which turns a skip into a failure.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/kernels.h"
#include "tests/support/check.h"

namespace raisin {
namespace {

// A device copy of a host vector, freed on scope exit.
struct DeviceBuffer {
  float* ptr = nullptr;
  size_t n = 0;
  explicit DeviceBuffer(const std::vector<float>& host) : n(host.size()) {
    RAISIN_CUDA_CHECK(cudaMalloc(&ptr, n * sizeof(float)));
    RAISIN_CUDA_CHECK(cudaMemcpy(ptr, host.data(), n * sizeof(float), cudaMemcpyHostToDevice));
  }
  ~DeviceBuffer() { cudaFree(ptr); }
  std::vector<float> host() const {
    std::vector<float> out(n);
    RAISIN_CUDA_CHECK(cudaMemcpy(out.data(), ptr, n * sizeof(float), cudaMemcpyDeviceToHost));
    return out;
  }
};

class CudaParity : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda::device_count() > 0) return;
    if (test::gpu_required()) FAIL() << "RAISIN_REQUIRE_GPU=1 but " << cuda::no_device_reason();
    GTEST_SKIP() << cuda::no_device_reason();
  }
};

// Sizes around block boundaries and a partial last block.
const int64_t kSizes[] = {1, 255, 256, 257, 100003};

TEST_F(CudaParity, FillAxpyAddMatchCpu) {
  for (int64_t n : kSizes) {
    auto a = test::random_floats(n, 1), b = test::random_floats(n, 2), y0 = test::random_floats(n, 3);
    DeviceBuffer da(a), db(b), dy(y0);
    auto expect = y0;
    cpu::axpy(n, 0.75f, a.data(), expect.data());
    cuda::axpy(n, 0.75f, da.ptr, dy.ptr);
    EXPECT_TRUE(test::all_close("axpy", dy.host(), test::to_double(expect), 1e-6, 1e-7)) << "n=" << n;

    cpu::add_forward(n, a.data(), b.data(), expect.data());
    cuda::add_forward(n, da.ptr, db.ptr, dy.ptr);
    EXPECT_TRUE(test::all_close("add", dy.host(), test::to_double(expect), 0, 0)) << "n=" << n;

    cpu::fill(n, -2.5f, expect.data());
    cuda::fill(n, -2.5f, dy.ptr);
    EXPECT_TRUE(test::all_close("fill", dy.host(), test::to_double(expect), 0, 0)) << "n=" << n;
  }
}

TEST_F(CudaParity, ReluForwardBackwardMatchCpu) {
  for (int64_t n : kSizes) {
    auto x = test::random_floats(n, 4), dy = test::random_floats(n, 5), dx0 = test::random_floats(n, 6);
    std::vector<float> y(n), dx = dx0;
    cpu::relu_forward(n, x.data(), y.data());
    cpu::relu_backward(n, y.data(), dy.data(), dx.data());
    DeviceBuffer dev_x(x), dev_y{std::vector<float>(n)}, dev_dy(dy), dev_dx(dx0);
    cuda::relu_forward(n, dev_x.ptr, dev_y.ptr);
    cuda::relu_backward(n, dev_y.ptr, dev_dy.ptr, dev_dx.ptr);
    EXPECT_TRUE(test::all_close("relu forward", dev_y.host(), test::to_double(y), 0, 0)) << "n=" << n;
    EXPECT_TRUE(test::all_close("relu backward", dev_dx.host(), test::to_double(dx), 0, 0)) << "n=" << n;
  }
}

}  // namespace
}  // namespace raisin
