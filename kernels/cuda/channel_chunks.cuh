// How the per-channel reductions (batch norm, bias backward) split each channel over several blocks, so
// that a layer of few channels still fills the GPU: each channel's batch·spatial values are cut into
// contiguous chunks by a plan that depends on the shape only (Chunking), one block of kChunkThreads
// per (channel, chunk). A first launch writes each chunk's partial result to Scratch memory from the
// caching allocator; a later launch combines a channel's partials in a fixed order (combine_chunks),
// so results do not depend on timing, with no atomics.
// Header only; include it after kernels/cuda/compat.h.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/channel_walk.cuh"
#include "kernels/cuda/memory.h"
#include "kernels/cuda/reduce.cuh"
#include "kernels/shapes.h"

namespace raisin::cuda {

constexpr int kChunkThreads = 256;  // threads of every per-chunk block

// Blocks per channel for the per-chunk launches, and the values each covers. The split depends on
// the shape only (not on the device), so results are the same on every GPU and in the emulator:
// about kChunkTargetBlocks blocks in all (four blocks of 256 threads per multiprocessor of an H200's
// 132), as long as each block gets at least kMinChunkValues values (8 per thread; smaller chunks would
// add partials to combine, not loads in flight). A chunk is a multiple of 4 values, so every chunk
// starts on a 16-byte pack boundary whatever the pack width; only the last one may be shorter.
// At batch 128: ResNet-20's stages 16×32×32, 32×16×16, 64×8×8 get 32, 16 and 4 blocks per channel
// (512, 512 and 256 blocks); LeNet-5's conv1 (6×28×28) 49 and conv2 (16×10×10) 6 (294 and 96 blocks).
struct Chunking {
  int chunks;
  int64_t chunk_values;
};

constexpr int64_t kChunkTargetBlocks = 512;
constexpr int64_t kMinChunkValues = 2048;

inline Chunking chunking(const kernels::ImageShape& s) {
  const int64_t count = int64_t(s.batch) * s.spatial();
  const int64_t wanted = (kChunkTargetBlocks + s.channels - 1) / s.channels;
  const int64_t chunks = std::max<int64_t>(1, std::min(wanted, count / kMinChunkValues));
  const int64_t chunk_values = ((count + chunks - 1) / chunks + 3) / 4 * 4;
  return {int((count + chunk_values - 1) / chunk_values), chunk_values};
}

// The block of a per-chunk launch (grid = channels · chunks) and the range of its channel's packs
// j = b·spatial_packs + i that it walks.
struct ChunkOfBlock {
  int channel, chunk;
  int64_t begin, end;
};

__device__ __forceinline__ ChunkOfBlock chunk_of_block(int batch, int64_t spatial_packs, int chunks,
                                                       int64_t chunk_packs) {
  const int channel = int(blockIdx.x) / chunks, chunk = int(blockIdx.x) % chunks;
  const int64_t begin = chunk * chunk_packs, end = begin + chunk_packs, packs = int64_t(batch) * spatial_packs;
  return {channel, chunk, begin, end < packs ? end : packs};
}

// The walk of this thread over its block's chunk.
__device__ __forceinline__ ChannelWalk chunk_walk(const ChunkOfBlock& b, int batch, int channels,
                                                  int64_t spatial_packs) {
  return ChannelWalk(b.begin + threadIdx.x, kChunkThreads, batch, channels, b.channel, spatial_packs, b.end);
}

// A channel's `chunks` partial results combined in a fixed order, in every thread of the block:
// thread t merges chunks t, t + kChunkThreads, … in turn, then a fixed tree across threads (reduce.cuh).
template <typename T, typename Op>
__device__ __forceinline__ T combine_chunks(const T* partials, int chunks, T zero, Op op, T* scratch) {
  T v = zero;
  for (int k = threadIdx.x; k < chunks; k += kChunkThreads) v = op(v, partials[k]);
  return block_allreduce<kChunkThreads>(v, op, scratch);
}

// Device memory for `n` partial results of one call, from the caching allocator (kernels/cuda/memory.h:
// after a training loop's first step no call reaches cudaMalloc). It goes back to the allocator once
// the launches that use it are queued: a freed block is only handed out again on the same stream, so
// the next user runs after them.
template <typename T>
class Scratch {
 public:
  explicit Scratch(int64_t n)
      : data_(static_cast<T*>(device_allocator().allocate(size_t(n) * sizeof(T), current_stream()))) {}
  ~Scratch() { device_allocator().free(data_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T* get() const { return data_; }

 private:
  T* data_;
};

}  // namespace raisin::cuda
