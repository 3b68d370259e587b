// The CUDA backend's kernels: same names and signatures as the CPU reference (../signatures.inc).
// Pointers are device pointers; kernels are launched on the current stream (cuda::current_stream()).
// This backend is being filled in op by op; device.cu and elementwise.cu are its first members.
#pragma once
#include <cstdint>

#include "kernels/schedule.h"
#include "kernels/shapes.h"

namespace raisin::cuda {
#include "kernels/signatures.inc"
}  // namespace raisin::cuda
