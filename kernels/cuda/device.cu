// Device discovery, the current stream (the process's own unless a thread sets one) and CUDA error checking.
#include "kernels/cuda/device.h"

namespace raisin::cuda {

namespace {
thread_local cudaStream_t stream_set = nullptr;  // by set_current_stream; null: the process's stream

cudaStream_t process_stream() {
  static const cudaStream_t stream = [] {
    cudaStream_t made = nullptr;
    RAISIN_CUDA_CHECK(cudaStreamCreate(&made));  // blocking, unlike cudaStreamNonBlocking; kept until exit
    return made;
  }();
  return stream;
}

cudaError_t query_device_count(int& count) {
  count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls start clean
    count = 0;
  }
  return status;
}
}  // namespace

int device_count() {
  int count = 0;
  query_device_count(count);
  return count;
}

std::string no_device_reason() {
  int count = 0;
  const cudaError_t status = query_device_count(count);
  if (status != cudaSuccess)
    return std::string("no usable GPU: cudaGetDeviceCount failed with ") + cudaGetErrorName(status) + " (" +
           cudaGetErrorString(status) + ")";
  return count == 0 ? "no GPU: cudaGetDeviceCount found 0 devices" : "";
}

cudaStream_t current_stream() { return stream_set != nullptr ? stream_set : process_stream(); }
void set_current_stream(cudaStream_t stream) { stream_set = stream; }

void check(cudaError_t status, const char* call, const char* file, int line) {
  if (status == cudaSuccess) return;
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + call + " failed: " +
                           cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")");
}

}  // namespace raisin::cuda
