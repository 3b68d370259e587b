// Per-device, per-thread cuBLAS and cuDNN handles, their error checks and the TF32 switch (handles.h).
#include "kernels/cuda/vendor/handles.h"

#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/device.h"

namespace raisin::cuda {

namespace {

// cuBLAS's recommended workspace for Hopper (earlier GPUs need 4 MiB, so this covers them too).
constexpr size_t kCublasWorkspaceBytes = size_t(32) << 20;

std::atomic<bool> tf32_allowed{false};

// One device's handles for one host thread, and what they are currently bound to.
struct DeviceHandles {
  cublasHandle_t cublas = nullptr;
  void* cublas_workspace = nullptr;
  cudaStream_t cublas_stream = nullptr;
  cublasMath_t cublas_math = CUBLAS_DEFAULT_MATH;
  cudnnHandle_t cudnn = nullptr;
  cudaStream_t cudnn_stream = nullptr;
};

DeviceHandles& handles_of_current_device() {
  thread_local std::vector<DeviceHandles> per_device;
  int device = 0;
  RAISIN_CUDA_CHECK(cudaGetDevice(&device));
  if (int(per_device.size()) <= device) per_device.resize(device + 1);
  return per_device[device];
}

}  // namespace

cublasHandle_t cublas_handle() {
  DeviceHandles& h = handles_of_current_device();
  if (h.cublas == nullptr) {
    void* workspace = nullptr;
    cublasHandle_t handle = nullptr;
    RAISIN_CUDA_CHECK(cudaMalloc(&workspace, kCublasWorkspaceBytes));
    RAISIN_CUBLAS_CHECK(cublasCreate(&handle));  // bound to the default stream, default math
    RAISIN_CUBLAS_CHECK(cublasSetWorkspace(handle, workspace, kCublasWorkspaceBytes));
    h.cublas = handle;
    h.cublas_workspace = workspace;
  }
  const cudaStream_t stream = current_stream();
  if (stream != h.cublas_stream) {
    RAISIN_CUBLAS_CHECK(cublasSetStream(h.cublas, stream));
    // cublasSetStream drops a user workspace in favour of cuBLAS's own pool: give ours back.
    RAISIN_CUBLAS_CHECK(cublasSetWorkspace(h.cublas, h.cublas_workspace, kCublasWorkspaceBytes));
    h.cublas_stream = stream;
  }
  const cublasMath_t math = allow_tf32() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH;
  if (math != h.cublas_math) {
    RAISIN_CUBLAS_CHECK(cublasSetMathMode(h.cublas, math));
    h.cublas_math = math;
  }
  return h.cublas;
}

cudnnHandle_t cudnn_handle() {
  DeviceHandles& h = handles_of_current_device();
  if (h.cudnn == nullptr) RAISIN_CUDNN_CHECK(cudnnCreate(&h.cudnn));  // bound to the default stream
  const cudaStream_t stream = current_stream();
  if (stream != h.cudnn_stream) {
    RAISIN_CUDNN_CHECK(cudnnSetStream(h.cudnn, stream));
    h.cudnn_stream = stream;
  }
  return h.cudnn;
}

void set_allow_tf32(bool allow) { tf32_allowed.store(allow); }
bool allow_tf32() { return tf32_allowed.load(); }

void check_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + call + " failed: " +
                           cublasGetStatusName(status) + " (" + cublasGetStatusString(status) + ")");
}

void check_cudnn(cudnnStatus_t status, const char* call, const char* file, int line) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  char detail[1024] = "";  // cuDNN's account of the last failure, often naming the bad argument
  cudnnGetLastErrorString(detail, sizeof(detail));
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + call + " failed: " +
                           cudnnGetErrorString(status) + (detail[0] != '\0' ? std::string(" (") + detail + ")" : ""));
}

}  // namespace raisin::cuda
