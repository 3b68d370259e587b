// The emulated CUDA backend's linear and conv2d: on the GPU these go through cuBLAS and cuDNN
// (kernels/cuda/vendor/), which the emulator cannot run, so here they are the CPU twins. Emulated
// "device" pointers are host memory, so the twins take them as they are; the workspace size is the CPU
// kernels' own, and TF32 has no effect.
#include "kernels/cpu/kernels.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/math_mode.h"

namespace raisin::cuda {

namespace {
bool tf32_requested = false;  // recorded only: the CPU twins below always compute in fp32
}  // namespace

void set_allow_tf32(bool allow) { tf32_requested = allow; }
bool allow_tf32() { return tf32_requested; }

void linear_forward(const kernels::LinearShape& s, const float* x, const float* w, const float* b, float* y) {
  cpu::linear_forward(s, x, w, b, y);
}

void linear_backward(const kernels::LinearShape& s, const float* x, const float* w, const float* dy, float* dx,
                     float* dw, float* db) {
  cpu::linear_backward(s, x, w, dy, dx, dw, db);
}

int64_t conv2d_workspace_floats(const kernels::Conv2dShape& s) { return cpu::conv2d_workspace_floats(s); }

void conv2d_forward(const kernels::Conv2dShape& s, const float* x, const float* w, const float* b, float* y,
                    float* workspace) {
  cpu::conv2d_forward(s, x, w, b, y, workspace);
}

void conv2d_backward(const kernels::Conv2dShape& s, const float* x, const float* w, const float* dy, float* dx,
                     float* dw, float* db, float* workspace) {
  cpu::conv2d_backward(s, x, w, dy, dx, dw, db, workspace);
}

}  // namespace raisin::cuda
