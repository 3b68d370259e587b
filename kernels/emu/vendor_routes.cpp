// The emulated CUDA backend's linear and conv2d: on the GPU these go through cuBLAS and cuDNN
// (kernels/cuda/vendor/), which the emulator cannot run, so here they are the CPU twins. Emulated
// "device" pointers are host memory, so the twins take them as they are; the workspace size is the CPU
// kernels' own, and TF32 has no effect. Like the library calls, they are work on current_stream(): recorded
// when that stream captures a graph (the twin then runs at each replay), refused with an exception where
// the stream refuses work.
#include "kernels/cpu/kernels.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/math_mode.h"
#include "kernels/emu/capture.h"

namespace raisin::cuda {

namespace {
bool tf32_requested = false;  // recorded only: the CPU twins below always compute in fp32

// Runs `work` on current_stream(), records it into the stream's capture, or throws why the stream refused it.
template <typename Work>
void on_current_stream(const char* call, Work work) {
  const cudaStream_t stream = current_stream();
  switch (emu::route(stream, call)) {
    case emu::Route::run: work(); return;
    case emu::Route::record:
      emu::record(stream, [work] {
        work();
        return cudaSuccess;
      });
      return;
    case emu::Route::refused: check(cudaGetLastError(), call, __FILE__, __LINE__);
  }
}
}  // namespace

void set_allow_tf32(bool allow) { tf32_requested = allow; }
bool allow_tf32() { return tf32_requested; }

void linear_forward(const kernels::LinearShape& s, const float* x, const float* w, const float* b, float* y) {
  on_current_stream("linear_forward (cuBLAS, emulated)", [=] { cpu::linear_forward(s, x, w, b, y); });
}

void linear_backward(const kernels::LinearShape& s, const float* x, const float* w, const float* dy, float* dx,
                     float* dw, float* db) {
  on_current_stream("linear_backward (cuBLAS, emulated)", [=] { cpu::linear_backward(s, x, w, dy, dx, dw, db); });
}

int64_t conv2d_workspace_floats(const kernels::Conv2dShape& s) { return cpu::conv2d_workspace_floats(s); }

void conv2d_forward(const kernels::Conv2dShape& s, const float* x, const float* w, const float* b, float* y,
                    float* workspace) {
  on_current_stream("conv2d_forward (cuDNN, emulated)", [=] { cpu::conv2d_forward(s, x, w, b, y, workspace); });
}

void conv2d_backward(const kernels::Conv2dShape& s, const float* x, const float* w, const float* dy, float* dx,
                     float* dw, float* db, float* workspace) {
  on_current_stream("conv2d_backward (cuDNN, emulated)",
                    [=] { cpu::conv2d_backward(s, x, w, dy, dx, dw, db, workspace); });
}

}  // namespace raisin::cuda
