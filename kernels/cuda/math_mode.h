// The CUDA backend's one numerics switch: TF32 tensor-core math for GEMMs and convolutions. Off by
// default (plain fp32: CUBLAS_DEFAULT_MATH and CUDNN_FMA_MATH; cuDNN's own default would allow TF32 on
// Ampere and later). Turning it on trades about three decimal digits of the inputs' mantissas for speed.
// Set it before sizing convolution workspaces: conv2d_workspace_floats answers for the algorithms of the
// mode in force when it is called. Defined by vendor/handles.cu; in the emulator (which computes GEMMs
// and convolutions with the CPU kernels, in fp32) by kernels/emu/vendor_routes.cpp, where it only
// records the setting.
#pragma once

namespace raisin::cuda {

void set_allow_tf32(bool allow);
bool allow_tf32();

}  // namespace raisin::cuda
