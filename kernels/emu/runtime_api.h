// The CUDA runtime API for host code (kernels/cuda/device.h, tests): the real <cuda_runtime.h>, or the
// emulator's (kernels/emu/runtime.h) when compiled with RAISIN_CUDA_EMULATED=1.
#pragma once
#if defined(RAISIN_CUDA_EMULATED) && RAISIN_CUDA_EMULATED
#include "kernels/emu/runtime.h"
#else
#include <cuda_runtime.h>
#endif
