// The CUDA runtime API subset that raisin uses, emulated on the CPU (RAISIN_CUDA_EMULATED=1): "device"
// memory is host memory, copies are memcpy, streams are handles and everything completes before the call
// returns, unless the stream captures a graph (below). Names, values and semantics follow <cuda_runtime.h>;
// the one device reports itself as "raisin CUDA emulator". Kernel-side builtins (threadIdx, __syncthreads,
// ...) are in kernels/emu/emu.h.
//
// Stream capture (kernels/emu/graph.cpp): between cudaStreamBeginCapture and cudaStreamEndCapture the work
// queued on the stream (kernel launches, cudaMemcpyAsync, cudaMemsetAsync, the emulated cuBLAS/cuDNN
// calls) is recorded into a graph instead of run; cudaGraphLaunch replays it in order. Every emulated
// stream is a blocking one. As on a GPU, while a stream captures:
//  - work on the legacy stream (null), and the synchronous cudaMemcpy/cudaMemset, which run on it, fail
//    with cudaErrorStreamCaptureImplicit; cudaDeviceSynchronize and cudaStreamSynchronize of the capturing
//    stream fail with cudaErrorStreamCaptureUnsupported;
//  - "potentially unsafe" calls (cudaMalloc, cudaMallocHost, cudaFree, cudaFreeHost, cudaEventSynchronize,
//    cudaStreamSynchronize of another stream) fail with cudaErrorStreamCaptureUnsupported when the calling
//    thread captures in Global or ThreadLocal mode, or another thread in Global mode; Relaxed mode allows
//    them;
//  - unlike a GPU, which would record them as graph nodes, cudaEventRecord and cudaGraphLaunch on the
//    capturing stream fail with cudaErrorStreamCaptureUnsupported: raisin's fences mean "the work queued so
//    far has run", which a graph cannot promise, and the emulator does not nest graphs.
// Each refusal invalidates the capture(s) concerned: later work on the stream is dropped with
// cudaErrorStreamCaptureInvalidated, cudaStreamEndCapture returns that error and no graph, and the stream
// leaves capture mode. The error's cudaGetErrorString names the refused call.
#pragma once
#include <cstddef>

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorIllegalState = 401,
  cudaErrorNotReady = 600,
  cudaErrorLaunchFailure = 719,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureImplicit = 906,
  cudaErrorStreamCaptureWrongThread = 908,
};
using cudaError = cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxBlockDimX = 2,
  cudaDevAttrMaxGridDimX = 5,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
};

struct CUstream_st;
using cudaStream_t = CUstream_st*;
struct CUevent_st;
using cudaEvent_t = CUevent_st*;
constexpr unsigned cudaEventBlockingSync = 0x01;
constexpr unsigned cudaEventDisableTiming = 0x02;

enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2,
};

enum cudaStreamCaptureStatus {
  cudaStreamCaptureStatusNone = 0,
  cudaStreamCaptureStatusActive = 1,
  cudaStreamCaptureStatusInvalidated = 2,
};

struct CUgraph_st;
using cudaGraph_t = CUgraph_st*;
struct CUgraphExec_st;
using cudaGraphExec_t = CUgraphExec_st*;

struct uint3 {
  unsigned int x, y, z;
};

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};

cudaError_t cudaMalloc(void** pointer, size_t bytes);
cudaError_t cudaFree(void* pointer);
cudaError_t cudaMallocHost(void** pointer, size_t bytes);
cudaError_t cudaFreeHost(void* pointer);
template <typename T>
cudaError_t cudaMalloc(T** pointer, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(pointer), bytes);
}
template <typename T>
cudaError_t cudaMallocHost(T** pointer, size_t bytes) {
  return cudaMallocHost(reinterpret_cast<void**>(pointer), bytes);
}

cudaError_t cudaMemcpy(void* destination, const void* source, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* destination, const void* source, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* destination, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* destination, int value, size_t bytes, cudaStream_t stream = nullptr);

cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaDeviceSynchronize();

// Graphs (see the top of this file). EndCapture from another thread than BeginCapture is an error unless the
// mode was Relaxed. A graph holds copies of the recorded launches' arguments; an instantiated graph is
// independent of its graph. cudaGraphLaunch runs the operations in order and stops at the first that fails,
// which becomes the error it returns (a failed kernel as after its launch). Flags of cudaGraphInstantiate
// are accepted and have no effect.
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);

// Events: since all work completes inside each call, an event has passed as soon as it is recorded.
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);

// The last error of this host thread: cudaGetLastError returns and clears it, cudaPeekAtLastError keeps it.
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorName(cudaError_t error);
// For the error of the latest failed launch, the text also says what failed: the kernel, the block and
// thread indices and the source locations of the barriers involved.
const char* cudaGetErrorString(cudaError_t error);

cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attribute, int device);
