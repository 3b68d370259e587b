// The emulated CUDA runtime API: host memory as device memory, synchronous copies, one device, and CUDA's
// last-error rules (each failing call sets it; cudaGetLastError returns and clears it). Calls that queue,
// wait or allocate consult the stream captures first (capture.h, graph.cpp).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "kernels/emu/capture.h"
#include "kernels/emu/errors.h"
#include "kernels/emu/runtime.h"

struct CUstream_st {};
struct CUevent_st {};

namespace raisin::emu {

namespace {
thread_local cudaError_t last_error = cudaSuccess;
// The detail of the latest recorded error, and the text cudaGetErrorString returns for it.
thread_local cudaError_t detailed_error = cudaSuccess;
thread_local std::string detailed_text;

const char* plain_error_string(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureImplicit:
      return "operation would make the legacy stream depend on a capturing blocking stream";
    case cudaErrorStreamCaptureWrongThread:
      return "attempt to terminate a thread-local capture sequence from another thread";
  }
  return "unrecognized error code";
}
}  // namespace

cudaError_t record_error(cudaError_t error, std::string detail) {
  last_error = error;
  detailed_error = error;
  detailed_text = std::string(plain_error_string(error)) + " (CUDA emulator): " + detail;
  return error;
}

}  // namespace raisin::emu

using raisin::emu::record_error;
using raisin::emu::Route;

constexpr size_t kAllocationAlignment = 256;  // what cudaMalloc guarantees

namespace {

cudaError_t allocate(void** pointer, size_t bytes, const char* call) {
  if (pointer == nullptr) return record_error(cudaErrorInvalidValue, std::string(call) + " got a null pointer to store into");
  *pointer = nullptr;
  if (const cudaError_t refused = raisin::emu::check_unsafe(call)) return refused;
  if (bytes == 0) return cudaSuccess;
  const size_t rounded = (bytes + kAllocationAlignment - 1) / kAllocationAlignment * kAllocationAlignment;
  *pointer = std::aligned_alloc(kAllocationAlignment, rounded);
  if (*pointer == nullptr)
    return record_error(cudaErrorMemoryAllocation, std::string(call) + " of " + std::to_string(bytes) + " bytes failed");
  return cudaSuccess;
}

cudaError_t release(void* pointer, const char* call) {
  if (const cudaError_t refused = raisin::emu::check_unsafe(call)) return refused;
  std::free(pointer);
  return cudaSuccess;
}

// The checks of a copy; cudaSuccess when it may run.
cudaError_t check_copy(const void* destination, const void* source, size_t bytes, cudaMemcpyKind kind,
                       const char* call) {
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
    return record_error(cudaErrorInvalidMemcpyDirection, std::string(call) + " kind " + std::to_string(int(kind)));
  if (bytes != 0 && (destination == nullptr || source == nullptr))
    return record_error(cudaErrorInvalidValue,
                        std::string(call) + " of " + std::to_string(bytes) + " bytes with a null pointer");
  return cudaSuccess;
}

cudaError_t check_set(const void* destination, size_t bytes, const char* call) {
  if (bytes != 0 && destination == nullptr)
    return record_error(cudaErrorInvalidValue,
                        std::string(call) + " of " + std::to_string(bytes) + " bytes at a null pointer");
  return cudaSuccess;
}

// Runs `work` now, records it into the stream's capture, or returns why it was refused.
template <typename Work>
cudaError_t queue(cudaStream_t stream, const char* call, Work work) {
  switch (raisin::emu::route(stream, call)) {
    case Route::run: work(); return cudaSuccess;
    case Route::record:
      raisin::emu::record(stream, [work] {
        work();
        return cudaSuccess;
      });
      return cudaSuccess;
    case Route::refused: return cudaPeekAtLastError();
  }
  return cudaSuccess;
}

// A kernel that failed is reported by the next synchronisation, as on the GPU (its error is still the last).
cudaError_t pending_launch_failure() {
  return cudaPeekAtLastError() == cudaErrorLaunchFailure ? cudaErrorLaunchFailure : cudaSuccess;
}

}  // namespace

cudaError_t cudaMalloc(void** pointer, size_t bytes) { return allocate(pointer, bytes, "cudaMalloc"); }
cudaError_t cudaFree(void* pointer) { return release(pointer, "cudaFree"); }
cudaError_t cudaMallocHost(void** pointer, size_t bytes) { return allocate(pointer, bytes, "cudaMallocHost"); }
cudaError_t cudaFreeHost(void* pointer) { return release(pointer, "cudaFreeHost"); }

cudaError_t cudaMemcpy(void* destination, const void* source, size_t bytes, cudaMemcpyKind kind) {
  if (const cudaError_t invalid = check_copy(destination, source, bytes, kind, "cudaMemcpy")) return invalid;
  if (const cudaError_t refused = raisin::emu::check_legacy_stream("cudaMemcpy")) return refused;
  if (bytes != 0) std::memmove(destination, source, bytes);
  return cudaSuccess;
}

// A captured copy reads and writes the memory at each replay, as a memcpy node does.
cudaError_t cudaMemcpyAsync(void* destination, const void* source, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
  if (const cudaError_t invalid = check_copy(destination, source, bytes, kind, "cudaMemcpyAsync")) return invalid;
  if (bytes == 0) return cudaSuccess;
  return queue(stream, "cudaMemcpyAsync", [=] { std::memmove(destination, source, bytes); });
}

cudaError_t cudaMemset(void* destination, int value, size_t bytes) {
  if (const cudaError_t invalid = check_set(destination, bytes, "cudaMemset")) return invalid;
  if (const cudaError_t refused = raisin::emu::check_legacy_stream("cudaMemset")) return refused;
  if (bytes != 0) std::memset(destination, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* destination, int value, size_t bytes, cudaStream_t stream) {
  if (const cudaError_t invalid = check_set(destination, bytes, "cudaMemsetAsync")) return invalid;
  if (bytes == 0) return cudaSuccess;
  return queue(stream, "cudaMemsetAsync", [=] { std::memset(destination, value, bytes); });
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  if (stream == nullptr) return record_error(cudaErrorInvalidValue, "cudaStreamCreate got a null pointer");
  *stream = new CUstream_st;
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  raisin::emu::forget_capture(stream);
  delete stream;
  return cudaSuccess;
}

// Work completes inside each call, so synchronising only reports a kernel that failed.
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (const cudaError_t refused = raisin::emu::check_stream_synchronize(stream, "cudaStreamSynchronize")) return refused;
  return pending_launch_failure();
}

cudaError_t cudaDeviceSynchronize() {
  if (const cudaError_t refused = raisin::emu::check_device_synchronize("cudaDeviceSynchronize")) return refused;
  return pending_launch_failure();
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned) {
  if (event == nullptr) return record_error(cudaErrorInvalidValue, "cudaEventCreateWithFlags got a null pointer");
  *event = new CUevent_st;
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (event == nullptr) return record_error(cudaErrorInvalidResourceHandle, "cudaEventDestroy of a null event");
  delete event;
  return cudaSuccess;
}

// Refused on a capturing stream (runtime.h): a fence recorded there would pass before its work ever ran.
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (event == nullptr) return record_error(cudaErrorInvalidResourceHandle, "cudaEventRecord of a null event");
  return raisin::emu::check_not_captured(stream, "cudaEventRecord",
                                         "raisin waits for events as fences for the work queued before them, and "
                                         "captured work does not run until the graph is launched");
}

// The recorded work has completed already; only a failed kernel is reported, as by cudaStreamSynchronize.
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (event == nullptr) return record_error(cudaErrorInvalidResourceHandle, "cudaEventSynchronize of a null event");
  if (const cudaError_t refused = raisin::emu::check_unsafe("cudaEventSynchronize")) return refused;
  return pending_launch_failure();
}

cudaError_t cudaGetLastError() {
  const cudaError_t error = raisin::emu::last_error;
  raisin::emu::last_error = cudaSuccess;
  return error;
}

cudaError_t cudaPeekAtLastError() { return raisin::emu::last_error; }

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureImplicit: return "cudaErrorStreamCaptureImplicit";
    case cudaErrorStreamCaptureWrongThread: return "cudaErrorStreamCaptureWrongThread";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error) {
  if (error == raisin::emu::detailed_error && error != cudaSuccess) return raisin::emu::detailed_text.c_str();
  return raisin::emu::plain_error_string(error);
}

cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return record_error(cudaErrorInvalidValue, "cudaGetDeviceCount got a null pointer");
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr) return record_error(cudaErrorInvalidValue, "cudaGetDevice got a null pointer");
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (device != 0)
    return record_error(cudaErrorInvalidDevice, "device " + std::to_string(device) + " requested; the emulator has device 0 only");
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attribute, int device) {
  if (value == nullptr) return record_error(cudaErrorInvalidValue, "cudaDeviceGetAttribute got a null pointer");
  if (device != 0)
    return record_error(cudaErrorInvalidDevice, "device " + std::to_string(device) + " requested; the emulator has device 0 only");
  switch (attribute) {
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; return cudaSuccess;
    case cudaDevAttrMaxBlockDimX: *value = 1024; return cudaSuccess;
    case cudaDevAttrMaxGridDimX: *value = 2147483647; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = 48 * 1024; return cudaSuccess;
    case cudaDevAttrWarpSize: *value = 32; return cudaSuccess;
    case cudaDevAttrMultiProcessorCount: *value = int(std::max(1u, std::thread::hardware_concurrency())); return cudaSuccess;
  }
  return record_error(cudaErrorInvalidValue, "device attribute " + std::to_string(int(attribute)) + " is not emulated");
}
