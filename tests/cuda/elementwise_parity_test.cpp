// CUDA parity for the elementwise kernels: the same random inputs through the CPU reference and the
// CUDA kernel (on the GPU or the emulator, see parity.h) must agree.
#include <gtest/gtest.h>

#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cuda/kernels.h"
#include "tests/cuda/parity.h"
#include "tests/support/check.h"

namespace raisin {
namespace {

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
    DeviceBuffer dev_x(x), dev_dy(dy), dev_dx(dx0);
    DeviceBuffer<float> dev_y(n);
    cuda::relu_forward(n, dev_x.ptr, dev_y.ptr);
    cuda::relu_backward(n, dev_y.ptr, dev_dy.ptr, dev_dx.ptr);
    EXPECT_TRUE(test::all_close("relu forward", dev_y.host(), test::to_double(y), 0, 0)) << "n=" << n;
    EXPECT_TRUE(test::all_close("relu backward", dev_dx.host(), test::to_double(dx), 0, 0)) << "n=" << n;
  }
}

}  // namespace
}  // namespace raisin
