// CUDA per-channel bias kernels (forward add, fused add + ReLU, backward sum) and the sum reduction:
// the twins of kernels/cpu/bias.cpp. The CUDA linear and conv glue adds its bias with these after
// cuBLAS/cuDNN. The forward kernels are elementwise: they walk the tensor in memory order (coalesced
// for any spatial size, spatial 1 being a linear layer's [batch, features]), in packs of 4 floats when
// the planes allow (kernels/cuda/channel_walk.cuh). The backward sum splits each channel's batch·spatial
// values into chunks (kernels/cuda/channel_chunks.cuh, as batch norm does), so a layer of few channels
// still fills the GPU; the chunks' partial sums are combined in a fixed order, and every reduction runs
// in a fixed tree (kernels/cuda/reduce.cuh), so results are reproducible without float atomics.
#include "kernels/cuda/compat.h"

#include <algorithm>
#include <cstdint>

#include "kernels/cuda/channel_chunks.cuh"
#include "kernels/cuda/channel_walk.cuh"
#include "kernels/cuda/device.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/reduce.cuh"

namespace raisin::cuda {

namespace {

constexpr int kForwardThreads = 256;
constexpr int kMaxBlocks = 2048;      // enough to fill an H200 (132 SMs) twice over
constexpr int kReduceThreads = 1024;  // reduce_sum's single block

template <bool kRelu, int kWidth>
__global__ void bias_forward_kernel(int64_t packs, int channels, int64_t spatial_packs, const float* b, float* y) {
  constexpr int kPacks = kPacksPerStep<kWidth, 1>;
  for (TensorWalk w(blockIdx.x * int64_t(blockDim.x) + threadIdx.x, int64_t(gridDim.x) * blockDim.x, channels,
                    spatial_packs, packs);
       !w.done();) {
    int64_t at[kPacks];
    int ch[kPacks];
    w.take(at, ch);
    Pack<kWidth> v[kPacks];
    for (int u = 0; u < kPacks; ++u) v[u] = load_pack<kWidth>(y, at[u]);
    for (int u = 0; u < kPacks; ++u) {
      if (at[u] < 0) continue;
      const float bias = b[ch[u]];
      for (int k = 0; k < kWidth; ++k) {
        const float sum = v[u].v[k] + bias;
        v[u].v[k] = kRelu && sum < 0.0f ? 0.0f : sum;  // a NaN stays NaN, as on the CPU
      }
      store_pack(y, at[u], v[u]);
    }
  }
}

// Pass 1 of the backward sum: Σ dy over one chunk of channel c's values (grid = channels · chunks,
// kernels/cuda/channel_chunks.cuh), written to partials[block]; or, with a single chunk per channel
// (partials null), added to db[c] at once. For spatial 1 (a linear layer) a chunk spans many rows.
template <int kWidth>
__global__ void __launch_bounds__(kChunkThreads)
    bias_backward_chunk_kernel(int batch, int channels, int64_t spatial_packs, int chunks, int64_t chunk_packs,
                               const float* dy, float* partials, float* db) {
  constexpr int kPacks = kPacksPerStep<kWidth, 1>;
  __shared__ float scratch[kChunkThreads / 32];
  const ChunkOfBlock block = chunk_of_block(batch, spatial_packs, chunks, chunk_packs);
  float sum = 0.0f;
  for (ChannelWalk w = chunk_walk(block, batch, channels, spatial_packs); !w.done();) {
    int64_t at[kPacks];
    w.take(at);
    Pack<kWidth> g[kPacks];
    for (int u = 0; u < kPacks; ++u) g[u] = load_pack<kWidth>(dy, at[u]);
    for (int u = 0; u < kPacks; ++u)  // past the end: zeros
      for (int k = 0; k < kWidth; ++k) sum += g[u].v[k];
  }
  sum = block_allreduce<kChunkThreads>(sum, SumOp{}, scratch);
  if (threadIdx.x != 0) return;
  if (partials)
    partials[blockIdx.x] = sum;
  else
    db[block.channel] += sum;
}

// Pass 2: db[c] += the sum of channel c's partials, combined in a fixed order (one block per channel).
__global__ void __launch_bounds__(kChunkThreads) bias_backward_combine_kernel(int chunks, const float* partials,
                                                                              float* db) {
  __shared__ float scratch[kChunkThreads / 32];
  const int c = blockIdx.x;
  const float total = combine_chunks(partials + int64_t(c) * chunks, chunks, 0.0f, SumOp{}, scratch);
  if (threadIdx.x == 0) db[c] += total;
}

// A single block: every thread sums a strided slice (in packs, the last n % kWidth values apart), then
// the block sums the threads' partial sums. A multi-block tree would need a workspace for the blocks'
// partial sums, which the signature lacks.
template <int kWidth>
__global__ void __launch_bounds__(kReduceThreads) reduce_sum_kernel(int64_t n, const float* x, float* out) {
  constexpr int kPacks = kPacksPerStep<kWidth, 1>;
  __shared__ float scratch[kReduceThreads / 32];
  const int64_t packs = n / kWidth;
  float sum = 0.0f;
  for (int64_t first = threadIdx.x; first < packs; first += int64_t(kReduceThreads) * kPacks) {
    Pack<kWidth> v[kPacks];
    for (int u = 0; u < kPacks; ++u) {
      const int64_t i = first + int64_t(u) * kReduceThreads;
      v[u] = load_pack<kWidth>(x, i < packs ? i : -1);
    }
    for (int u = 0; u < kPacks; ++u)  // past the end: zeros
      for (int k = 0; k < kWidth; ++k) sum += v[u].v[k];
  }
  if (threadIdx.x < n - packs * kWidth) sum += x[packs * kWidth + threadIdx.x];
  sum = block_allreduce<kReduceThreads>(sum, SumOp{}, scratch);
  if (threadIdx.x == 0) out[0] = sum;
}

template <bool kRelu>
void bias_forward(const kernels::ImageShape& s, const float* b, float* y) {
  if (s.numel() <= 0) return;
  with_pack_width(pack_width(s.spatial(), {y}), [&](auto width) {
    const int64_t packs = s.numel() / width(), per_block = int64_t(kForwardThreads) * kPacksPerStep<width(), 1>;
    const int blocks = int(std::min<int64_t>((packs + per_block - 1) / per_block, kMaxBlocks));
    RAISIN_LAUNCH((bias_forward_kernel<kRelu, width()>), blocks, kForwardThreads, 0, current_stream())(
        packs, s.channels, s.spatial() / width(), b, y);
  });
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void bias_add_forward(const kernels::ImageShape& s, const float* b, float* y) { bias_forward<false>(s, b, y); }

void bias_relu_forward(const kernels::ImageShape& s, const float* b, float* y) { bias_forward<true>(s, b, y); }

void bias_add_backward(const kernels::ImageShape& s, const float* dy, float* db) {
  if (!db || s.channels <= 0 || s.numel() <= 0) return;
  const Chunking split = chunking(s);
  const int blocks = s.channels * split.chunks;
  Scratch<float> partials(split.chunks > 1 ? blocks : 0);  // null for a single chunk per channel
  with_pack_width(pack_width(s.spatial(), {dy}), [&](auto width) {
    RAISIN_LAUNCH((bias_backward_chunk_kernel<width()>), blocks, kChunkThreads, 0, current_stream())(
        s.batch, s.channels, s.spatial() / width(), split.chunks, split.chunk_values / width(), dy, partials.get(), db);
  });
  RAISIN_CUDA_CHECK(cudaGetLastError());
  if (split.chunks == 1) return;
  RAISIN_LAUNCH(bias_backward_combine_kernel, s.channels, kChunkThreads, 0, current_stream())(split.chunks,
                                                                                              partials.get(), db);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

void reduce_sum(int64_t n, const float* x, float* out) {
  with_pack_width(aligned16(x) ? 4 : 1, [&](auto width) {
    RAISIN_LAUNCH((reduce_sum_kernel<width()>), 1, kReduceThreads, 0, current_stream())(n < 0 ? 0 : n, x, out);
  });
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

}  // namespace raisin::cuda
