// The one header a kernel source (kernels/cuda/*.cu) includes to be CUDA with nvcc and emulated C++ with
// g++ (RAISIN_CUDA_EMULATED=1, kernels/emu/). It provides the kernel launch macro
//     RAISIN_LAUNCH(kernel, grid, block, shared_bytes, stream)(args...);
// (write RAISIN_LAUNCH((kernel<256, true>), ...) for a template with commas) and dynamic shared memory,
//     T* buffer = raisin::cuda::dynamic_shared<T>();   // bytes given at launch
// plus everything else /work/notes/cuda-contract.md lists (builtins, intrinsics, atomics, math, runtime API).
#pragma once
#include <cfloat>
#include <cmath>
#include <cstdint>

#include "kernels/cuda/device.h"

#if defined(RAISIN_CUDA_EMULATED) && RAISIN_CUDA_EMULATED

#include "kernels/emu/emu.h"

namespace raisin::cuda {
template <typename T>
T* dynamic_shared() {
  return static_cast<T*>(::raisin::emu::dynamic_shared_memory());
}
}  // namespace raisin::cuda

#else

#include <cuda_runtime.h>

#define RAISIN_LAUNCH(kernel, grid, block, shared_bytes, stream) kernel<<<(grid), (block), (shared_bytes), (stream)>>>

namespace raisin::cuda {
// One extern __shared__ array for every type: CUDA requires a single declaration per kernel.
template <typename T>
__device__ T* dynamic_shared() {
  extern __shared__ __align__(16) unsigned char raisin_dynamic_shared_bytes[];
  return reinterpret_cast<T*>(raisin_dynamic_shared_bytes);
}
}  // namespace raisin::cuda

#endif
