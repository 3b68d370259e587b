// Stream capture inside the CUDA emulator (kernels/emu/graph.cpp): every call that queues work on a
// stream, or waits for or allocates outside any stream, first asks here whether a capture concerns it.
// While no stream captures each question costs one atomic load.
#pragma once
#include <functional>

#include "kernels/emu/runtime.h"

namespace raisin::emu {

// What becomes of work queued on a stream.
enum class Route {
  run,     // run it now, as every emulated call does
  record,  // append it to the stream's capture (record below); it runs at each replay of the graph
  refused  // drop it: the error (legacy stream while a stream captures, or a capture invalidated
           // earlier) is this thread's last error already
};
Route route(cudaStream_t stream, const char* call);

// One recorded operation, run at each replay: returns cudaSuccess or the error it recorded.
using Operation = std::function<cudaError_t()>;
// Appends `operation` to the capture of `stream`, for which route() said Route::record.
void record(cudaStream_t stream, Operation operation);

// The checks of the calls that wait or allocate (runtime.h lists the rules). Each returns cudaSuccess when
// `call` may go ahead; otherwise the error, recorded as the last error with the captures concerned
// invalidated.
cudaError_t check_legacy_stream(const char* call);               // cudaMemcpy, cudaMemset
cudaError_t check_unsafe(const char* call);                      // cudaMalloc, cudaFree, cudaEventSynchronize, ...
cudaError_t check_device_synchronize(const char* call);          // cudaDeviceSynchronize
cudaError_t check_stream_synchronize(cudaStream_t stream, const char* call);
// cudaEventRecord and cudaGraphLaunch: refused on a capturing stream (`why` says why) and on the legacy one.
cudaError_t check_not_captured(cudaStream_t stream, const char* call, const char* why);

// A stream that is destroyed leaves capture mode; its capture is dropped.
void forget_capture(cudaStream_t stream);

}  // namespace raisin::emu
