// Helpers for the parity tests of the library-backed kernels (linear, conv2d): the shared backward
// checks (tests/support: from zero, accumulating, null gradients) driven through device copies, and a
// tolerance scaled to the values compared.
#pragma once
#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <vector>

#include "tests/cuda/parity.h"
#include "tests/support/check.h"
#if !RAISIN_CUDA_EMULATED
#include "kernels/cuda/vendor/handles.h"
#endif

namespace raisin::test {

// A device copy of a host gradient buffer of n floats (none for a null pointer), copied back by finish().
class DeviceGrad {
 public:
  DeviceGrad(float* host, size_t n) : host_(host) {
    if (host != nullptr) device_.emplace(std::vector<float>(host, host + n));
  }
  float* ptr() { return device_ ? device_->ptr : nullptr; }
  void finish() {
    if (!device_) return;
    const std::vector<float> result = device_->host();
    std::copy(result.begin(), result.end(), host_);
  }

 private:
  float* host_;
  std::optional<DeviceBuffer<float>> device_;
};

// expect_backward_xwb for a CUDA backward: `backward` gets device pointers (null where the check passes
// null), reading and accumulating into copies of the check's host buffers.
inline void expect_device_backward_xwb(const std::function<void(float* dx, float* dw, float* db)>& backward,
                                       const std::vector<double>& gx, const std::vector<double>& gw,
                                       const std::vector<double>& gb, double rtol, double atol_x, double atol_w) {
  expect_backward_xwb(
      [&](float* dx, float* dw, float* db) {
        DeviceGrad dev_dx(dx, gx.size()), dev_dw(dw, gw.size()), dev_db(db, gb.size());
        backward(dev_dx.ptr(), dev_dw.ptr(), dev_db.ptr());
        dev_dx.finish();
        dev_dw.finish();
        dev_db.finish();
      },
      gx, gw, gb, rtol, atol_x, atol_w);
}

// An absolute tolerance of `relative` times the largest magnitude among the expected values: a sum of
// many products is only as exact as the scale of its terms, so entries that cancel to near zero are
// judged against that scale (rounding, and a different summation order, err by about eps·scale).
inline double scaled_atol(double relative, const std::vector<double>& expected) {
  double largest = 0.0;
  for (double v : expected) largest = std::max(largest, std::abs(v));
  return relative * largest;
}

#if !RAISIN_CUDA_EMULATED
// TF32 math on for a scope (off again after it, also when a check throws).
struct AllowTf32 {
  AllowTf32() { cuda::set_allow_tf32(true); }
  ~AllowTf32() { cuda::set_allow_tf32(false); }
  AllowTf32(const AllowTf32&) = delete;
  AllowTf32& operator=(const AllowTf32&) = delete;
};
#endif

}  // namespace raisin::test
