// Device memory for the CUDA backend: a caching allocator for long-lived buffers (parameters, optimizer
// state, the resident dataset) and an arena for the activations of one training step.
//
// CachingAllocator: requests are rounded up to a size class and served from blocks that earlier frees
// left on a free list of the same class and stream, so a steady training loop stops calling cudaMalloc
// (which is slow and synchronises the device) after its first step. A block is only reused on the stream
// it was freed on, where stream order makes the reuse safe without events.
//
// Arena: bump allocation from big chunks, reset() at the start of each step. The same sequence of
// requests after a reset gets the same addresses, which is what lets a whole step be captured once as a
// CUDA graph and replayed. When a step needs more, the arena adds a chunk; existing chunks never move.
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

class Arena {
 public:
  // Chunks of chunk_bytes (or a single request's size, when larger) from `allocator`, used on `stream`.
  Arena(size_t chunk_bytes, CachingAllocator& allocator, cudaStream_t stream);
  // Returns the chunks to the allocator.
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // `bytes` of this step's memory, 256-byte aligned; null for 0 bytes. Valid until the next reset().
  void* allocate(size_t bytes);
  template <class T>
  T* allocate_array(int64_t count) {
    return static_cast<T*>(allocate(sizeof(T) * size_t(count)));
  }
  // Starts the next step: every earlier allocation is released and the next ones start again at the
  // beginning of the first chunk.
  void reset();

  size_t bytes_used() const { return used_; }            // this step, alignment included
  size_t peak_bytes_used() const { return peak_used_; }  // the most any step has used
  size_t bytes_reserved() const;                         // all chunks together
  size_t chunk_count() const { return chunks_.size(); }

  static constexpr size_t kAlignment = 256;  // what cudaMalloc guarantees, and vector loads need

 private:
  struct Chunk {
    char* base;
    size_t bytes;
  };
  size_t chunk_bytes_;
  CachingAllocator& allocator_;
  cudaStream_t stream_;
  std::vector<Chunk> chunks_;
  size_t current_ = 0;  // the chunk being filled
  size_t offset_ = 0;   // bytes taken from it
  size_t used_ = 0, peak_used_ = 0;
};

}  // namespace raisin::cuda
