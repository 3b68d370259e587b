// Minimal CUDA device runtime for the kernels: device discovery, the stream kernels launch on, and a
// checked wrapper that turns a CUDA error into an exception naming the call, file and line. With
// RAISIN_CUDA_EMULATED=1 the runtime is the CPU emulator's (kernels/emu/): one device, always present.
//
// The current stream, on which every kernel, copy and library call of raisin::cuda is queued, is by default
// one stream for the whole process, made by cudaStreamCreate on first use (of the device current then). It
// is a blocking stream: work on the legacy stream (the synchronous cudaMemcpy of tests, for instance) still
// waits for it and it for that work. Unlike the legacy stream it can be captured into a CUDA graph
// (kernels/cuda/graph.h). set_current_stream overrides it for the calling thread.
#pragma once
#include "kernels/emu/runtime_api.h"

#include <stdexcept>
#include <string>

namespace raisin::cuda {

// Number of usable GPUs; 0 when the driver or device is absent (any CUDA error counts as "no GPU").
int device_count();
// Why device_count() is 0, for skip messages ("" when a GPU is present).
std::string no_device_reason();

// The calling thread's stream: the one set_current_stream gave it, else the process's stream (made here on
// the first call; throws when CUDA cannot make it). device_count() and no_device_reason() never make it.
cudaStream_t current_stream();
// Makes `stream` the calling thread's current stream; null goes back to the process's stream.
void set_current_stream(cudaStream_t stream);

void check(cudaError_t status, const char* call, const char* file, int line);

}  // namespace raisin::cuda

#define RAISIN_CUDA_CHECK(call) ::raisin::cuda::check((call), #call, __FILE__, __LINE__)
