// Device memory for the CUDA backend: a caching allocator for every device buffer (parameters, optimizer
// state, the resident dataset, and the blocks of the engine's per-step Arena, engine/memory.h).
//
// CachingAllocator: requests are rounded up to a size class and served from blocks that earlier frees
// left on a free list of the same class and stream, so a steady training loop stops calling cudaMalloc
// (which is slow and synchronises the device) after its first step. A block is only reused on the stream
// it was freed on, where stream order makes the reuse safe without events.
//
// Capture pools: a CUDA graph (kernels/cuda/graph.h) bakes in the address of every block its captured work
// used, the temporary ones too (kernels/cuda/channel_chunks.cuh's Scratch, allocated and freed inside one
// kernel call), and each replay uses them again. Those blocks must not go to anyone else while the graph
// lives. So the capture runs inside a pool: between begin_pool() and end_pool() every allocation is tagged
// with the pool and served first from the pool's own free list, then from the general cache or cudaMalloc;
// a tagged block that is freed goes back to the pool's free list, never to the general ones, also after
// end_pool. release_pool(id), once the graph is gone, moves the pool's free blocks to the general free
// lists, and tagged blocks still in use go there when they are freed.
//
// Asynchronous transfers (the engine Backend's *_async members): page-locked host buffers, copies queued
// on the current stream that nothing waits for, and fences. FencePool turns "the work queued so far" into a
// ticket (an event recorded on the stream) that any thread can wait for.
//
// Compiled by nvcc and, for the emulated backend, as C++ (the emulator's runtime: copies and events complete
// at once).
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kernels/cuda/device.h"

namespace raisin::cuda {

struct AllocatorStats {
  int64_t bytes_in_use = 0;       // handed out and not freed yet (counted at their size class)
  int64_t peak_bytes_in_use = 0;  // the most bytes_in_use has been
  int64_t bytes_cached = 0;       // freed, kept on the general free lists for reuse
  int64_t bytes_pooled = 0;       // freed, kept on capture pools' free lists for their graphs
  int64_t device_mallocs = 0;     // cudaMalloc calls made
  int64_t device_frees = 0;       // cudaFree calls made
};

class CachingAllocator {
 public:
  CachingAllocator() = default;
  // Frees every block, cached or still handed out.
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // A block of at least `bytes` (256-byte aligned) on the current device, for use on `stream`; null for
  // 0 bytes. When the device is full, the cache is released and the request tried once more before an
  // error says how much was asked for, in use and cached.
  void* allocate(size_t bytes, cudaStream_t stream);
  // Returns a block from allocate to the free list of its class and stream (its pool's, for a block
  // allocated in a capture pool that is not released); null is ignored.
  void free(void* ptr);
  // Gives every block of the general free lists back to CUDA (blocks in use and pools' blocks stay).
  void empty_cache();

  // Capture pools (top of this file). begin_pool starts a new pool and returns its id (1, 2, ...); allocations
  // join it, from any thread, until end_pool. One pool at a time: begin_pool while one is begun throws.
  uint64_t begin_pool();
  void end_pool();
  // The pool's graph is gone: its free blocks go to the general free lists, its blocks in use follow when
  // freed. The pool must be ended; an unknown or released id throws.
  void release_pool(uint64_t pool);
  AllocatorStats stats() const;

  // Requests are rounded up to: a multiple of 512 bytes up to 1 MiB; above, one of four classes per
  // power of two (2^k·{1.25, 1.5, 1.75, 2}), so a block is at most 25% larger than asked for and blocks
  // of similar sizes are shared.
  static size_t size_class(size_t bytes);

 private:
  struct Block {
    size_t bytes;
    cudaStream_t stream;
    uint64_t pool;  // the capture pool it was allocated in; 0: none
  };
  using FreeLists = std::map<std::pair<cudaStream_t, size_t>, std::vector<void*>>;  // by (stream, class)

  // A block of `size` bytes for `stream` from `lists`, or null.
  static void* take(FreeLists& lists, cudaStream_t stream, size_t size);
  void release_cache_locked();

  mutable std::mutex mutex_;
  std::unordered_map<void*, Block> in_use_;
  FreeLists free_lists_;
  std::unordered_map<uint64_t, FreeLists> pools_;  // the capture pools not released, by id
  uint64_t active_pool_ = 0;                       // begun and not ended; 0: none
  uint64_t next_pool_ = 1;
  AllocatorStats stats_;
};

// The allocator of the current device (one per device, created on first use, kept until the process
// exits: freeing from a static destructor would race CUDA's own teardown).
CachingAllocator& device_allocator();

// ---- asynchronous transfers ----

// Page-locked host memory (cudaMallocHost), which copies can read and write while the host runs on; null
// for 0 bytes. free_pinned takes null, too.
void* allocate_pinned(size_t bytes);
void free_pinned(void* ptr);
// Copies queued on current_stream() behind the work before them; they return at once. The pinned buffer
// must stay unchanged (to the device) or unread (to the host) until a fence taken afterwards has passed.
void copy_to_device_async(void* device_dst, const void* pinned_src, size_t bytes);
void copy_to_host_async(void* pinned_dst, const void* device_src, size_t bytes);

// Fences on queued work. record(stream) records an event on the stream and returns its ticket: 1, 2, 3, ...
// wait(ticket) returns once the work queued on that stream before the ticket was recorded has run; it may be
// called from any thread, and at once for ticket 0 or a ticket known to have passed. Events are reused: at
// most max_pending tickets keep their own event; recording one more first waits for the oldest (long done
// in a training loop), which then counts as passed with every ticket before it. An event someone is
// waiting on is only reused after that wait.
class FencePool {
 public:
  explicit FencePool(int max_pending = 64);
  ~FencePool();  // destroys the events; nobody may be waiting any more
  FencePool(const FencePool&) = delete;
  FencePool& operator=(const FencePool&) = delete;

  uint64_t record(cudaStream_t stream);
  void wait(uint64_t ticket);
  // Every ticket up to this one is known to have passed.
  uint64_t passed() const;

 private:
  struct Slot {
    cudaEvent_t event = nullptr;
    uint64_t ticket = 0;
    int waiters = 0;       // threads inside cudaEventSynchronize on this event
    bool retired = false;  // left the pending queue while waited on: the last waiter makes it idle
  };

  // Waits for the oldest pending ticket and moves its slot out of the queue.
  void retire_oldest_locked();

  const size_t max_pending_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Slot>> slots_;  // every slot made
  std::deque<Slot*> pending_;  // the tickets passed_ + 1, ..., next_ticket_ − 1, in order
  std::vector<Slot*> idle_;    // events ready to be recorded again
  uint64_t next_ticket_ = 1;
  uint64_t passed_ = 0;
};

// The process's fences (raisin trains on one GPU: the events belong to the device current at first use),
// created on first use and kept until the process exits, like device_allocator.
FencePool& fence_pool();
// fence_pool().record(current_stream()) and fence_pool().wait(ticket).
uint64_t fence();
void fence_wait(uint64_t ticket);

}  // namespace raisin::cuda
