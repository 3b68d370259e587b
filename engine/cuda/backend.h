// The CUDA backend of the engine: registers the table of CUDA kernels and device-memory operations
// (engine/backend.h) so that tensors on Device::cuda work. Lives in its own library,
// raisin_engine_cuda (or raisin_engine_cuda_emu, the same source over the CUDA emulator, for tests), so
// that programs and tests that never touch a GPU never link CUDA.
#pragma once
#include <string>

namespace raisin {

// Registers the CUDA backend when a GPU is usable and returns ""; otherwise registers nothing and
// returns why (no GPU, no driver), for a message such as "--device cuda: <reason>".
std::string register_cuda_backend();

}  // namespace raisin
