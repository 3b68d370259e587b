// Device memory for the CUDA backend: a caching allocator for every device buffer (parameters, optimizer
// state, the resident dataset, and the blocks of the engine's per-step Arena, engine/memory.h).
//
// CachingAllocator: requests are rounded up to a size class and served from blocks that earlier frees
// left on a free list of the same class and stream, so a steady training loop stops calling cudaMalloc
// (which is slow and synchronises the device) after its first step. A block is only reused on the stream
// it was freed on, where stream order makes the reuse safe without events.
//
// Compiled by nvcc and, for the emulated backend, as C++ (cudaMalloc and cudaFree only).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kernels/cuda/device.h"

namespace raisin::cuda {

struct AllocatorStats {
  int64_t bytes_in_use = 0;       // handed out and not freed yet (counted at their size class)
  int64_t peak_bytes_in_use = 0;  // the most bytes_in_use has been
  int64_t bytes_cached = 0;       // freed, kept on the free lists for reuse
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
  // Returns a block from allocate to the free list of its class and stream; null is ignored.
  void free(void* ptr);
  // Gives every cached block back to CUDA (blocks in use stay).
  void empty_cache();
  AllocatorStats stats() const;

  // Requests are rounded up to: a multiple of 512 bytes up to 1 MiB; above, one of four classes per
  // power of two (2^k·{1.25, 1.5, 1.75, 2}), so a block is at most 25% larger than asked for and blocks
  // of similar sizes are shared.
  static size_t size_class(size_t bytes);

 private:
  struct Block {
    size_t bytes;
    cudaStream_t stream;
  };
  void release_cache_locked();

  mutable std::mutex mutex_;
  std::unordered_map<void*, Block> in_use_;
  std::map<std::pair<cudaStream_t, size_t>, std::vector<void*>> free_lists_;  // by (stream, class)
  AllocatorStats stats_;
};

// The allocator of the current device (one per device, created on first use, kept until the process
// exits: freeing from a static destructor would race CUDA's own teardown).
CachingAllocator& device_allocator();

}  // namespace raisin::cuda
