// CUDA graphs of raisin's device work: capture_graph records what a piece of code queues on
// current_stream() (kernels, copies, cuBLAS/cuDNN calls) into a graph, once; launch_graph replays it with
// one call per step, sparing the launch cost of each kernel. A replay reads and writes the same addresses
// as the captured work did, so the buffers the body used must stay allocated (and be refilled in place)
// while the graph lives; the temporary blocks kernels allocate inside a call are kept for the graph by a
// capture pool of the device allocator (kernels/cuda/memory.h).
#pragma once
#include <functional>
#include <string>

namespace raisin::cuda {

// Records the device work that body() queues on current_stream() into a CUDA graph (Relaxed capture mode,
// the device allocator's capture pool active) and instantiates it. Nothing of body's work runs. Returns
// null with `why` filled (naming the CUDA call that refused, or body's exception text) when capture or
// instantiation failed; then the stream is out of capture mode, errors are cleared and the pool released,
// so the caller can run body eagerly instead. Run body eagerly once before capturing it: first calls set
// things up (cuBLAS/cuDNN handles, plans, cudaMalloc) that a capture may refuse.
void* capture_graph(const std::function<void()>& body, std::string& why);
// Queues one replay on current_stream(), which must be the stream it was captured on (the pool's blocks
// are only safe to share in that stream's order).
void launch_graph(void* graph);
// Frees the graph and releases its pool. Stream-ordered: safe while a replay is queued (the pool's blocks
// go back to the free lists of the capture stream, whose later users run after the replay).
void destroy_graph(void* graph);

}  // namespace raisin::cuda
