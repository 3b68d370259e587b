// Stream capture and graphs in the CUDA emulator (the rules are at the top of runtime.h): the streams in
// capture mode with the operations recorded so far, the checks that refuse waiting and allocating calls
// during a capture, and the graph API over the recorded operations.
#include <atomic>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kernels/emu/capture.h"
#include "kernels/emu/emu.h"
#include "kernels/emu/errors.h"

struct CUgraph_st {
  std::vector<raisin::emu::Operation> operations;
};
struct CUgraphExec_st {
  std::vector<raisin::emu::Operation> operations;
};

namespace raisin::emu {

namespace {

struct Capture {
  cudaStreamCaptureMode mode;
  std::thread::id thread;  // that began it
  std::string invalidated_by;  // the refused call that invalidated it; empty while it is valid
  std::vector<Operation> operations;
};

std::mutex mutex;
std::unordered_map<cudaStream_t, Capture> captures;  // the streams in capture mode
std::atomic<int> streams_capturing{0};               // captures.size(), read without the lock

bool none_capturing() { return streams_capturing.load(std::memory_order_acquire) == 0; }

const char* mode_name(cudaStreamCaptureMode mode) {
  switch (mode) {
    case cudaStreamCaptureModeGlobal: return "Global";
    case cudaStreamCaptureModeThreadLocal: return "ThreadLocal";
    case cudaStreamCaptureModeRelaxed: return "Relaxed";
  }
  return "unknown";
}

void invalidate(Capture& capture, const std::string& call) {
  if (capture.invalidated_by.empty()) capture.invalidated_by = call;
  capture.operations.clear();
}

// Refuses `call`: invalidates every capture that `concerned` selects and records `error`.
template <typename Concerned>
cudaError_t refuse_locked(cudaError_t error, const std::string& call, const std::string& why, Concerned concerned) {
  for (auto& [stream, capture] : captures)
    if (concerned(capture)) invalidate(capture, call);
  return record_error(error, call + " " + why);
}

cudaError_t legacy_stream_locked(const std::string& call, const char* why) {
  if (captures.empty()) return cudaSuccess;
  return refuse_locked(cudaErrorStreamCaptureImplicit, call, why, [](const Capture&) { return true; });
}

cudaError_t unsafe_locked(const std::string& call) {
  const std::thread::id self = std::this_thread::get_id();
  const auto forbids = [&](const Capture& c) {
    return c.thread == self ? c.mode != cudaStreamCaptureModeRelaxed : c.mode == cudaStreamCaptureModeGlobal;
  };
  for (const auto& [stream, capture] : captures) {
    if (!forbids(capture)) continue;
    return refuse_locked(cudaErrorStreamCaptureUnsupported, call,
                         std::string("is not permitted while a stream captures a graph in ") +
                             mode_name(capture.mode) + " mode" + (capture.thread == self ? "" : " on another thread") +
                             " (Relaxed mode allows it on the capturing thread)",
                         forbids);
  }
  return cudaSuccess;
}

// Refuses `call` on the capturing `stream` and invalidates its capture.
cudaError_t refuse_on_capturing_locked(cudaStream_t stream, const std::string& call, const std::string& why) {
  Capture& capture = captures.at(stream);
  return refuse_locked(cudaErrorStreamCaptureUnsupported, call, why, [&](const Capture& c) { return &c == &capture; });
}

constexpr const char* kLegacyQueue =
    "queues work on the legacy stream while a stream captures a graph (emulated streams are blocking, so the "
    "legacy stream would wait for the capture); queue it on the capturing stream";

Route route_locked(cudaStream_t stream, const std::string& call) {
  if (stream == nullptr) return legacy_stream_locked(call, kLegacyQueue) == cudaSuccess ? Route::run : Route::refused;
  const auto it = captures.find(stream);
  if (it == captures.end()) return Route::run;
  if (!it->second.invalidated_by.empty()) {
    record_error(cudaErrorStreamCaptureInvalidated,
                 call + " on a stream whose capture was invalidated by " + it->second.invalidated_by);
    return Route::refused;
  }
  return Route::record;
}

}  // namespace

Route route(cudaStream_t stream, const char* call) {
  if (none_capturing()) return Route::run;
  std::lock_guard lock(mutex);
  return route_locked(stream, call);
}

Route route(cudaStream_t stream, const LaunchConfig& config) {
  if (none_capturing()) return Route::run;
  std::lock_guard lock(mutex);
  return route_locked(stream, "the launch of " + describe(config));
}

void record(cudaStream_t stream, Operation operation) {
  std::lock_guard lock(mutex);
  captures.at(stream).operations.push_back(std::move(operation));
}

cudaError_t check_legacy_stream(const char* call) {
  if (none_capturing()) return cudaSuccess;
  std::lock_guard lock(mutex);
  return legacy_stream_locked(call,
                              "runs on the legacy stream, which would wait for a stream that captures a graph; use "
                              "its Async form on the capturing stream");
}

cudaError_t check_unsafe(const char* call) {
  if (none_capturing()) return cudaSuccess;
  std::lock_guard lock(mutex);
  return unsafe_locked(call);
}

cudaError_t check_device_synchronize(const char* call) {
  if (none_capturing()) return cudaSuccess;
  std::lock_guard lock(mutex);
  if (captures.empty()) return cudaSuccess;
  return refuse_locked(cudaErrorStreamCaptureUnsupported, call,
                       "waits for every stream while a stream captures a graph, whose work does not run",
                       [](const Capture&) { return true; });
}

cudaError_t check_stream_synchronize(cudaStream_t stream, const char* call) {
  if (none_capturing()) return cudaSuccess;
  std::lock_guard lock(mutex);
  if (stream == nullptr)
    return legacy_stream_locked(call, "waits for the legacy stream, which would wait for a stream that captures a graph");
  if (captures.contains(stream))
    return refuse_on_capturing_locked(stream, call, "waits for a stream that captures a graph, whose work does not run");
  return unsafe_locked(call);
}

cudaError_t check_not_captured(cudaStream_t stream, const char* call, const char* why) {
  if (none_capturing()) return cudaSuccess;
  std::lock_guard lock(mutex);
  if (stream == nullptr) return legacy_stream_locked(call, kLegacyQueue);
  if (!captures.contains(stream)) return cudaSuccess;
  return refuse_on_capturing_locked(stream, call, std::string("on a stream that captures a graph: ") + why);
}

void forget_capture(cudaStream_t stream) {
  if (none_capturing()) return;
  std::lock_guard lock(mutex);
  if (captures.erase(stream)) streams_capturing.fetch_sub(1, std::memory_order_release);
}

}  // namespace raisin::emu

using namespace raisin::emu;

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  if (stream == nullptr)
    return record_error(cudaErrorStreamCaptureUnsupported,
                        "cudaStreamBeginCapture on the legacy stream: capture a stream made by cudaStreamCreate");
  if (mode != cudaStreamCaptureModeGlobal && mode != cudaStreamCaptureModeThreadLocal &&
      mode != cudaStreamCaptureModeRelaxed)
    return record_error(cudaErrorInvalidValue, "cudaStreamBeginCapture with mode " + std::to_string(int(mode)));
  std::lock_guard lock(mutex);
  if (captures.contains(stream))
    return record_error(cudaErrorIllegalState, "cudaStreamBeginCapture on a stream that captures already");
  captures.emplace(stream, Capture{mode, std::this_thread::get_id(), "", {}});
  streams_capturing.fetch_add(1, std::memory_order_release);
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  if (graph == nullptr) return record_error(cudaErrorInvalidValue, "cudaStreamEndCapture got a null pointer");
  *graph = nullptr;
  std::lock_guard lock(mutex);
  const auto it = captures.find(stream);
  if (it == captures.end())
    return record_error(cudaErrorIllegalState, "cudaStreamEndCapture on a stream that is not capturing");
  Capture& capture = it->second;
  if (capture.mode != cudaStreamCaptureModeRelaxed && capture.thread != std::this_thread::get_id())
    return record_error(cudaErrorStreamCaptureWrongThread,
                        std::string("cudaStreamEndCapture of a capture begun in ") + mode_name(capture.mode) +
                            " mode on another thread");
  Capture ended = std::move(capture);
  captures.erase(it);
  streams_capturing.fetch_sub(1, std::memory_order_release);
  if (!ended.invalidated_by.empty())
    return record_error(cudaErrorStreamCaptureInvalidated,
                        "cudaStreamEndCapture: the capture was invalidated by " + ended.invalidated_by);
  *graph = new CUgraph_st{std::move(ended.operations)};
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  if (status == nullptr) return record_error(cudaErrorInvalidValue, "cudaStreamIsCapturing got a null pointer");
  *status = cudaStreamCaptureStatusNone;
  if (none_capturing()) return cudaSuccess;
  std::lock_guard lock(mutex);
  if (stream == nullptr) {
    if (captures.empty()) return cudaSuccess;
    return record_error(cudaErrorStreamCaptureImplicit,
                        "cudaStreamIsCapturing of the legacy stream while a blocking stream captures a graph");
  }
  const auto it = captures.find(stream);
  if (it != captures.end())
    *status = it->second.invalidated_by.empty() ? cudaStreamCaptureStatusActive : cudaStreamCaptureStatusInvalidated;
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  if (exec == nullptr) return record_error(cudaErrorInvalidValue, "cudaGraphInstantiate got a null pointer");
  *exec = nullptr;
  if (graph == nullptr) return record_error(cudaErrorInvalidValue, "cudaGraphInstantiate of a null graph");
  *exec = new CUgraphExec_st{graph->operations};
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  if (exec == nullptr) return record_error(cudaErrorInvalidResourceHandle, "cudaGraphLaunch of a null graph");
  if (const cudaError_t refused =
          check_not_captured(stream, "cudaGraphLaunch", "the emulator does not nest graphs; launch it after the capture"))
    return refused;
  for (const Operation& operation : exec->operations) {
    cudaError_t status;
    try {
      status = operation();
    } catch (const std::exception& e) {
      status = record_error(cudaErrorLaunchFailure, std::string("an operation replayed by cudaGraphLaunch threw ") + e.what());
    }
    if (status != cudaSuccess) return status;
  }
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  if (exec == nullptr) return record_error(cudaErrorInvalidValue, "cudaGraphExecDestroy of a null graph");
  delete exec;
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  if (graph == nullptr) return record_error(cudaErrorInvalidValue, "cudaGraphDestroy of a null graph");
  delete graph;
  return cudaSuccess;
}
