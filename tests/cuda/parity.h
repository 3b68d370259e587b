// Helpers for the CUDA parity tests (tests/cuda/<op>_parity_test.cpp), which run twice: on the GPU
// (raisin_cuda_tests) and on the CUDA emulator (raisin_emu_tests, RAISIN_CUDA_EMULATED=1).
//   DeviceBuffer<T> — a device copy of a host vector (.ptr, .size, .host()), or `size` poisoned elements
//                     (NaN for floats, 0x7fc00000 bytes-wise for other types) so unwritten outputs show.
//   CudaParity      — the fixture: skips without a GPU, with the reason, unless RAISIN_REQUIRE_GPU=1,
//                     which turns the skip into a failure. The emulator always has its device.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/cuda/device.h"
#include "tests/support/check.h"

namespace raisin {

template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(const std::vector<T>& host) : size(host.size()) {
    allocate();
    if (size > 0) RAISIN_CUDA_CHECK(cudaMemcpy(ptr, host.data(), bytes(), cudaMemcpyHostToDevice));
  }

  explicit DeviceBuffer(size_t n) : DeviceBuffer(poisoned(n)) {}

  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { cudaFree(ptr); }

  std::vector<T> host() const {
    std::vector<T> out(size);
    if (size > 0) RAISIN_CUDA_CHECK(cudaMemcpy(out.data(), ptr, bytes(), cudaMemcpyDeviceToHost));
    return out;
  }

  T* ptr = nullptr;
  size_t size = 0;

 private:
  size_t bytes() const { return size * sizeof(T); }
  void allocate() {
    if (size > 0) RAISIN_CUDA_CHECK(cudaMalloc(&ptr, bytes()));
  }
  static std::vector<T> poisoned(size_t n) {
    std::vector<T> values(n);
    if constexpr (std::is_floating_point_v<T>) {
      for (T& v : values) v = std::numeric_limits<T>::quiet_NaN();
    } else {
      const uint32_t poison = 0x7fc00000u;  // a float NaN's bits, repeated
      auto* bytes = reinterpret_cast<unsigned char*>(values.data());
      for (size_t i = 0; i < n * sizeof(T); ++i) bytes[i] = reinterpret_cast<const unsigned char*>(&poison)[i % 4];
    }
    return values;
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

}  // namespace raisin
