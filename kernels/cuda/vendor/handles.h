// cuBLAS and cuDNN for the vendor glue (linear.cu, conv2d.cu): one handle of each per device and host
// thread, bound to cuda::current_stream() each time it is fetched; checked wrappers that turn a failed
// call into an exception naming the call, file, line and the library's own error string; and the one
// switch for TF32 tensor-core math (math_mode.h).
// GPU-only (nvcc): the emulated build routes linear_* and conv2d_* to the CPU twins instead.
#pragma once
#include <cublas_v2.h>
#include <cudnn.h>

#include "kernels/cuda/math_mode.h"

namespace raisin::cuda {

// The handles of the current device for this host thread, created on first use and bound to
// current_stream() on every call. The cuBLAS handle also gets its own fixed workspace (set again after
// each stream change, which would reset it), so a captured CUDA graph never sees cuBLAS allocate.
// Handles live until the process exits (destroying them from static destructors races CUDA's own
// teardown).
cublasHandle_t cublas_handle();
cudnnHandle_t cudnn_handle();

void check_cublas(cublasStatus_t status, const char* call, const char* file, int line);
void check_cudnn(cudnnStatus_t status, const char* call, const char* file, int line);

}  // namespace raisin::cuda

#define RAISIN_CUBLAS_CHECK(call) ::raisin::cuda::check_cublas((call), #call, __FILE__, __LINE__)
#define RAISIN_CUDNN_CHECK(call) ::raisin::cuda::check_cudnn((call), #call, __FILE__, __LINE__)
