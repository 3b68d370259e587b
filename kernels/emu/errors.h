// The emulated runtime's per-host-thread error state, shared by runtime.cpp and launch.cpp.
#pragma once
#include <string>

#include "kernels/emu/runtime.h"

namespace raisin::emu {

// Makes `error` this host thread's last error; cudaGetErrorString(error) then appends `detail`. Returns error.
cudaError_t record_error(cudaError_t error, std::string detail);

}  // namespace raisin::emu
