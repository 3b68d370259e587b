// CUDA graph capture and replay (graph.h). Compiled by nvcc and, for the emulated backend, as C++ over
// the emulator's graph API (kernels/emu/graph.cpp).
#include "kernels/cuda/graph.h"

#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>

#include "kernels/cuda/device.h"
#include "kernels/cuda/memory.h"

namespace raisin::cuda {

namespace {

struct Graph {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  cudaStream_t stream;  // captured on
  uint64_t pool;        // of the device allocator
};

// "call failed: cudaErrorX (text)"; the error is cleared.
std::string failure(const char* call, cudaError_t status) {
  const std::string text =
      std::string(call) + " failed: " + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")";
  cudaGetLastError();
  return text;
}

}  // namespace

void* capture_graph(const std::function<void()>& body, std::string& why) {
  why.clear();
  const cudaStream_t stream = current_stream();
  CachingAllocator& allocator = device_allocator();
  const uint64_t pool = allocator.begin_pool();
  if (const cudaError_t status = cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed)) {
    why = failure("cudaStreamBeginCapture", status);
    allocator.end_pool();
    allocator.release_pool(pool);
    return nullptr;
  }
  try {
    body();
  } catch (const std::exception& e) {
    why = e.what();
  } catch (...) {
    why = "the captured code threw an exception that is not a std::exception";
  }
  allocator.end_pool();

  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(stream, &graph);
  if (ended != cudaSuccess && why.empty()) why = failure("cudaStreamEndCapture", ended);
  cudaGraphExec_t exec = nullptr;
  if (why.empty()) {
    if (const cudaError_t status = cudaGraphInstantiate(&exec, graph, 0)) why = failure("cudaGraphInstantiate", status);
  }
  if (!why.empty()) {
    if (graph != nullptr) cudaGraphDestroy(graph);
    cudaGetLastError();  // whatever the refused calls left
    allocator.release_pool(pool);
    return nullptr;
  }
  return new Graph{graph, exec, stream, pool};
}

void launch_graph(void* handle) {
  const Graph& graph = *static_cast<const Graph*>(handle);
  if (current_stream() != graph.stream)
    throw std::invalid_argument("launch_graph: the current stream is not the one the graph was captured on; "
                                "replay it on that stream");
  RAISIN_CUDA_CHECK(cudaGraphLaunch(graph.exec, graph.stream));
}

void destroy_graph(void* handle) {
  const Graph* graph = static_cast<const Graph*>(handle);
  RAISIN_CUDA_CHECK(cudaGraphExecDestroy(graph->exec));
  RAISIN_CUDA_CHECK(cudaGraphDestroy(graph->graph));
  device_allocator().release_pool(graph->pool);
  delete graph;
}

}  // namespace raisin::cuda
