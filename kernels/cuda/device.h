// Minimal CUDA device runtime for the kernels: device discovery, the stream kernels launch on, and a
// checked wrapper that turns a CUDA error into an exception naming the call, file and line. With
// RAISIN_CUDA_EMULATED=1 the runtime is the CPU emulator's (kernels/emu/): one device, always present.
#pragma once
#include "kernels/emu/runtime_api.h"

#include <stdexcept>
#include <string>

namespace raisin::cuda {

// Number of usable GPUs; 0 when the driver or device is absent (any CUDA error counts as "no GPU").
int device_count();
// Why device_count() is 0, for skip messages ("" when a GPU is present).
std::string no_device_reason();

cudaStream_t current_stream();
void set_current_stream(cudaStream_t stream);

void check(cudaError_t status, const char* call, const char* file, int line);

}  // namespace raisin::cuda

#define RAISIN_CUDA_CHECK(call) ::raisin::cuda::check((call), #call, __FILE__, __LINE__)
