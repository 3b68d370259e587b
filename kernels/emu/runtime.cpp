// The emulated CUDA runtime API: host memory as device memory, synchronous copies, one device, and CUDA's
// last-error rules (each failing call sets it; cudaGetLastError returns and clears it).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

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
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
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

constexpr size_t kAllocationAlignment = 256;  // what cudaMalloc guarantees

cudaError_t cudaMalloc(void** pointer, size_t bytes) {
  if (pointer == nullptr) return record_error(cudaErrorInvalidValue, "cudaMalloc got a null pointer to store into");
  *pointer = nullptr;
  if (bytes == 0) return cudaSuccess;
  const size_t rounded = (bytes + kAllocationAlignment - 1) / kAllocationAlignment * kAllocationAlignment;
  *pointer = std::aligned_alloc(kAllocationAlignment, rounded);
  if (*pointer == nullptr)
    return record_error(cudaErrorMemoryAllocation, "cudaMalloc of " + std::to_string(bytes) + " bytes failed");
  return cudaSuccess;
}

cudaError_t cudaFree(void* pointer) {
  std::free(pointer);
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** pointer, size_t bytes) { return cudaMalloc(pointer, bytes); }
cudaError_t cudaFreeHost(void* pointer) { return cudaFree(pointer); }

cudaError_t cudaMemcpy(void* destination, const void* source, size_t bytes, cudaMemcpyKind kind) {
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
    return record_error(cudaErrorInvalidMemcpyDirection, "cudaMemcpy kind " + std::to_string(int(kind)));
  if (bytes == 0) return cudaSuccess;
  if (destination == nullptr || source == nullptr)
    return record_error(cudaErrorInvalidValue, "cudaMemcpy of " + std::to_string(bytes) + " bytes with a null pointer");
  std::memmove(destination, source, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* destination, const void* source, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(destination, source, bytes, kind);
}

cudaError_t cudaMemset(void* destination, int value, size_t bytes) {
  if (bytes == 0) return cudaSuccess;
  if (destination == nullptr)
    return record_error(cudaErrorInvalidValue, "cudaMemset of " + std::to_string(bytes) + " bytes at a null pointer");
  std::memset(destination, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* destination, int value, size_t bytes, cudaStream_t) {
  return cudaMemset(destination, value, bytes);
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  if (stream == nullptr) return record_error(cudaErrorInvalidValue, "cudaStreamCreate got a null pointer");
  *stream = new CUstream_st;
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  delete stream;
  return cudaSuccess;
}

// Work completes inside each call, so synchronising only reports a kernel that failed.
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaDeviceSynchronize(); }
cudaError_t cudaDeviceSynchronize() {
  return raisin::emu::last_error == cudaErrorLaunchFailure ? cudaErrorLaunchFailure : cudaSuccess;
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

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
  if (event == nullptr) return record_error(cudaErrorInvalidResourceHandle, "cudaEventRecord of a null event");
  return cudaSuccess;
}

// The recorded work has completed already; only a failed kernel is reported, as by cudaStreamSynchronize.
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (event == nullptr) return record_error(cudaErrorInvalidResourceHandle, "cudaEventSynchronize of a null event");
  return cudaDeviceSynchronize();
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
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
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
