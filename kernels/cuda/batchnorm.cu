// CUDA batchnorm2d over NCHW activations, statistics per channel: the twin of kernels/cpu/batchnorm.cpp
// (same conventions: biased variance for normalising, unbiased for the running variance, backward
// kernels accumulate into dx, dgamma, dbeta and skip null pointers).
//
// The reductions are split over several blocks per channel, so that a layer of few channels still
// fills the GPU: each channel's batch·spatial values are cut into `chunks` contiguous ranges, one block
// per (channel, chunk), by the plan of kernels/cuda/channel_chunks.cuh (fixed by the shape only). Each
// training kernel is two launches: the first writes each chunk's partial result to scratch memory from
// the caching allocator; in the second, every block combines its channel's partials in a fixed order
// (combine_chunks) and then writes the outputs of its own chunk. Blocks of one channel all compute the
// same combination, no atomics are involved, so results do not depend on timing and are the same from
// run to run.
// The forward statistics are moments of x − pilot (pilot = the channel's first value), merged pack
// by pack, thread by thread and chunk by chunk with Chan's formula: this stays accurate when the
// mean is large compared to the spread, where E[x²] − E[x]² in float fails (and where even Welford's
// update on x itself rounds its running mean to ulp(mean)). The inference forward is elementwise over
// the whole tensor; the inference backward adds dx in its reduction pass and needs a second launch
// only for dgamma and dbeta. Every kernel walks the tensor in packs of 4 floats when its planes allow
// (kernels/cuda/channel_walk.cuh).
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

constexpr int kElementwiseBlock = 256;
constexpr int kMaxElementwiseBlocks = 2048;  // enough to fill an H200 (132 SMs) twice over

// Count, mean and sum of squared deviations of a set of values.
struct Moments {
  float n, mean, m2;
};

// Chan et al.'s merge of two sets' moments.
struct MergeMoments {
  __device__ __forceinline__ Moments operator()(Moments a, Moments b) const {
    const float n = a.n + b.n;
    if (n == 0.0f) return a;
    const float delta = b.mean - a.mean, fraction_b = b.n / n;
    return {n, a.mean + delta * fraction_b, a.m2 + b.m2 + delta * delta * a.n * fraction_b};
  }
};

__device__ __forceinline__ Moments shfl_down(Moments v, int delta) {
  return {__shfl_down_sync(kFullWarp, v.n, delta), __shfl_down_sync(kFullWarp, v.mean, delta),
          __shfl_down_sync(kFullWarp, v.m2, delta)};
}
__device__ __forceinline__ Moments shfl(Moments v, int lane) {
  return {__shfl_sync(kFullWarp, v.n, lane), __shfl_sync(kFullWarp, v.mean, lane),
          __shfl_sync(kFullWarp, v.m2, lane)};
}

// The backward reductions of a set of values: Σ dy and Σ dy·x̂.
struct Sums {
  float dy, dy_xhat;
};

struct AddSums {
  __device__ __forceinline__ Sums operator()(Sums a, Sums b) const { return {a.dy + b.dy, a.dy_xhat + b.dy_xhat}; }
};

__device__ __forceinline__ Sums shfl_down(Sums v, int delta) {
  return {__shfl_down_sync(kFullWarp, v.dy, delta), __shfl_down_sync(kFullWarp, v.dy_xhat, delta)};
}
__device__ __forceinline__ Sums shfl(Sums v, int lane) {
  return {__shfl_sync(kFullWarp, v.dy, lane), __shfl_sync(kFullWarp, v.dy_xhat, lane)};
}

// The moments of a pack's values minus `shift`.
template <int kWidth>
__device__ __forceinline__ Moments pack_moments(const Pack<kWidth>& p, float shift) {
  float sum = 0.0f;
  for (int k = 0; k < kWidth; ++k) sum += p.v[k] - shift;
  const float mean = sum * (1.0f / kWidth);
  float m2 = 0.0f;
  for (int k = 0; k < kWidth; ++k) {
    const float d = (p.v[k] - shift) - mean;
    m2 += d * d;
  }
  return {float(kWidth), mean, m2};
}

// Pass 1 of the training forward: the moments of x − pilot over one chunk, and the channel's pilot.
template <int kWidth>
__global__ void __launch_bounds__(kChunkThreads)
    forward_moments_kernel(int batch, int channels, int64_t spatial, int chunks, int64_t chunk_packs, const float* x,
                           Moments* partials, float* pilots) {
  constexpr int kPacks = kPacksPerStep<kWidth, 1>;
  __shared__ Moments scratch[kChunkThreads / 32];
  const int64_t spatial_packs = spatial / kWidth;
  const ChunkOfBlock block = chunk_of_block(batch, spatial_packs, chunks, chunk_packs);
  const float pilot = x[int64_t(block.channel) * spatial];
  Moments m = {0.0f, 0.0f, 0.0f};
  for (ChannelWalk w = chunk_walk(block, batch, channels, spatial_packs); !w.done();) {
    int64_t at[kPacks];
    w.take(at);
    Pack<kWidth> v[kPacks];
    for (int u = 0; u < kPacks; ++u) v[u] = load_pack<kWidth>(x, at[u]);
    for (int u = 0; u < kPacks; ++u)
      if (at[u] >= 0) m = MergeMoments{}(m, pack_moments(v[u], pilot));
  }
  m = block_allreduce<kChunkThreads>(m, MergeMoments{}, scratch);
  if (threadIdx.x != 0) return;
  partials[blockIdx.x] = m;
  if (block.chunk == 0) pilots[block.channel] = pilot;  // kept, as y may overwrite x (in place)
}

// Pass 2 of the training forward: the channel's statistics from its partials, then over one chunk
// y = ((x − pilot) − centre)·invstd·γ + β; the chunk-0 block writes the saved and running statistics.
template <int kWidth>
__global__ void __launch_bounds__(kChunkThreads)
    forward_normalise_kernel(int batch, int channels, int64_t spatial, int chunks, int64_t chunk_packs,
                             float eps, float momentum, const float* x, const float* gamma, const float* beta,
                             const Moments* partials, const float* pilots, float* y, float* save_mean,
                             float* save_invstd, float* running_mean, float* running_var) {
  constexpr int kPacks = kPacksPerStep<kWidth, 1>;
  __shared__ Moments scratch[kChunkThreads / 32];
  const int64_t spatial_packs = spatial / kWidth;
  const ChunkOfBlock block = chunk_of_block(batch, spatial_packs, chunks, chunk_packs);
  const int c = block.channel;
  const Moments m = combine_chunks(partials + int64_t(c) * chunks, chunks, Moments{0.0f, 0.0f, 0.0f},
                                   MergeMoments{}, scratch);
  const int64_t count = int64_t(batch) * spatial;  // values in the channel
  const float pilot = pilots[c];
  const float centre = m.mean;  // batch mean − pilot
  const float var = m.m2 / float(count);
  const float invstd = 1.0f / sqrtf(var + eps);

  const float scale = invstd * gamma[c], shift = beta[c];
  for (ChannelWalk w = chunk_walk(block, batch, channels, spatial_packs); !w.done();) {
    int64_t at[kPacks];
    w.take(at);
    Pack<kWidth> v[kPacks];
    for (int u = 0; u < kPacks; ++u) v[u] = load_pack<kWidth>(x, at[u]);
    for (int u = 0; u < kPacks; ++u) {
      if (at[u] < 0) continue;
      for (int k = 0; k < kWidth; ++k) v[u].v[k] = ((v[u].v[k] - pilot) - centre) * scale + shift;
      store_pack(y, at[u], v[u]);
    }
  }

  if (block.chunk != 0 || threadIdx.x != 0) return;
  const float mean = pilot + centre;
  if (save_mean) save_mean[c] = mean;
  if (save_invstd) save_invstd[c] = invstd;
  if (!isfinite(mean) || !isfinite(m.m2)) return;  // keep the running statistics (as on the CPU)
  if (running_mean) running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * mean;
  // One value per channel has no unbiased variance: the running variance stays (as on the CPU).
  if (running_var && count > 1)
    running_var[c] = (1.0f - momentum) * running_var[c] + momentum * (m.m2 / float(count - 1));
}

template <int kWidth>
__global__ void forward_infer_kernel(int64_t packs, int channels, int64_t spatial_packs, float eps, const float* x,
                                     const float* gamma, const float* beta, const float* running_mean,
                                     const float* running_var, float* y) {
  constexpr int kPacks = kPacksPerStep<kWidth, 1>;
  for (TensorWalk w(blockIdx.x * int64_t(blockDim.x) + threadIdx.x, int64_t(gridDim.x) * blockDim.x, channels,
                    spatial_packs, packs);
       !w.done();) {
    int64_t at[kPacks];
    int ch[kPacks];
    w.take(at, ch);
    Pack<kWidth> v[kPacks];
    for (int u = 0; u < kPacks; ++u) v[u] = load_pack<kWidth>(x, at[u]);
    for (int u = 0; u < kPacks; ++u) {
      if (at[u] < 0) continue;
      const int c = ch[u];
      const float mean = running_mean[c], scale = gamma[c] / sqrtf(running_var[c] + eps), shift = beta[c];
      for (int k = 0; k < kWidth; ++k) v[u].v[k] = (v[u].v[k] - mean) * scale + shift;
      store_pack(y, at[u], v[u]);
    }
  }
}

// Pass 1 of the backward kernels: Σ dy and Σ dy·x̂ over one chunk, x̂ = (x − mean)·invstd, with the
// saved batch statistics (training) or the running ones (kRunning, inference). With the running
// statistics x̂ is affine in x, so dx = γ·invstd·dy needs no reduction: it is added in this pass when
// dx is given.
template <int kWidth, bool kRunning>
__global__ void __launch_bounds__(kChunkThreads)
    backward_sums_kernel(int batch, int channels, int64_t spatial, int chunks, int64_t chunk_packs, float eps,
                         const float* x, const float* gamma, const float* mean, const float* invstd_or_var,
                         const float* dy, Sums* partials, float* dx) {
  constexpr int kPacks = kPacksPerStep<kWidth, 2>;
  __shared__ Sums scratch[kChunkThreads / 32];
  const int64_t spatial_packs = spatial / kWidth;
  const ChunkOfBlock block = chunk_of_block(batch, spatial_packs, chunks, chunk_packs);
  const int c = block.channel;
  const float mu = mean[c];
  const float invstd = kRunning ? 1.0f / sqrtf(invstd_or_var[c] + eps) : invstd_or_var[c];
  const float k = kRunning ? gamma[c] * invstd : 0.0f;

  float sum_dy = 0.0f, sum_dy_d = 0.0f;  // Σ dy and Σ dy·(x − mean)
  for (ChannelWalk w = chunk_walk(block, batch, channels, spatial_packs); !w.done();) {
    int64_t at[kPacks];
    w.take(at);
    Pack<kWidth> xv[kPacks], g[kPacks], d[kPacks];
    for (int u = 0; u < kPacks; ++u) {
      xv[u] = load_pack<kWidth>(x, at[u]), g[u] = load_pack<kWidth>(dy, at[u]);
      if constexpr (kRunning) d[u] = load_pack<kWidth>(dx, dx ? at[u] : -1);
    }
    for (int u = 0; u < kPacks; ++u) {  // past the end dy = 0 adds nothing
      for (int e = 0; e < kWidth; ++e) {
        sum_dy += g[u].v[e];
        sum_dy_d += g[u].v[e] * (xv[u].v[e] - mu);
        if constexpr (kRunning) d[u].v[e] += k * g[u].v[e];
      }
      if constexpr (kRunning)
        if (dx && at[u] >= 0) store_pack(dx, at[u], d[u]);
    }
  }
  if (!partials) return;  // uniform across the block: no thread is left at a barrier
  const Sums s = block_allreduce<kChunkThreads>(Sums{sum_dy, invstd * sum_dy_d}, AddSums{}, scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

__device__ __forceinline__ void add_parameter_grads(const Sums& total, int c, float* dgamma, float* dbeta) {
  if (dgamma) dgamma[c] += total.dy_xhat;
  if (dbeta) dbeta[c] += total.dy;
}

// Pass 2 of the training backward: the channel's sums from its partials, then over one chunk
// dx += γ·invstd · (dy − mean(dy) − x̂·mean(dy·x̂)) = k · ((dy − mean(dy)) − r·(x − mean)); the chunk-0
// block adds dgamma and dbeta.
template <int kWidth>
__global__ void __launch_bounds__(kChunkThreads)
    backward_dx_kernel(int batch, int channels, int64_t spatial, int chunks, int64_t chunk_packs, const float* x,
                       const float* gamma, const float* save_mean, const float* save_invstd, const float* dy,
                       const Sums* partials, float* dx, float* dgamma, float* dbeta) {
  constexpr int kPacks = kPacksPerStep<kWidth, 2>;
  __shared__ Sums scratch[kChunkThreads / 32];
  const int64_t spatial_packs = spatial / kWidth;
  const ChunkOfBlock block = chunk_of_block(batch, spatial_packs, chunks, chunk_packs);
  const int c = block.channel;
  const Sums total = combine_chunks(partials + int64_t(c) * chunks, chunks, Sums{0.0f, 0.0f}, AddSums{}, scratch);
  if (block.chunk == 0 && threadIdx.x == 0) add_parameter_grads(total, c, dgamma, dbeta);

  const int64_t count = int64_t(batch) * spatial;
  const float mean = save_mean[c], invstd = save_invstd[c];
  const float k = gamma[c] * invstd, mean_dy = total.dy / float(count), r = invstd * total.dy_xhat / float(count);
  for (ChannelWalk w = chunk_walk(block, batch, channels, spatial_packs); !w.done();) {
    int64_t at[kPacks];
    w.take(at);
    Pack<kWidth> xv[kPacks], g[kPacks], d[kPacks];
    for (int u = 0; u < kPacks; ++u)
      xv[u] = load_pack<kWidth>(x, at[u]), g[u] = load_pack<kWidth>(dy, at[u]), d[u] = load_pack<kWidth>(dx, at[u]);
    for (int u = 0; u < kPacks; ++u) {
      if (at[u] < 0) continue;
      for (int e = 0; e < kWidth; ++e) d[u].v[e] += k * ((g[u].v[e] - mean_dy) - r * (xv[u].v[e] - mean));
      store_pack(dx, at[u], d[u]);
    }
  }
}

// One block per channel: dgamma and dbeta from the channel's partial sums (the backward kernels
// without dx to compute after their reduction).
__global__ void __launch_bounds__(kChunkThreads)
    parameter_grads_kernel(int chunks, const Sums* partials, float* dgamma, float* dbeta) {
  __shared__ Sums scratch[kChunkThreads / 32];
  const int c = blockIdx.x;
  const Sums total = combine_chunks(partials + int64_t(c) * chunks, chunks, Sums{0.0f, 0.0f}, AddSums{}, scratch);
  if (threadIdx.x == 0) add_parameter_grads(total, c, dgamma, dbeta);
}

}  // namespace

void batchnorm2d_forward_train(const kernels::ImageShape& s, float eps, float momentum, const float* x,
                               const float* gamma, const float* beta, float* y, float* save_mean,
                               float* save_invstd, float* running_mean, float* running_var) {
  if (s.channels <= 0 || s.numel() <= 0) return;
  const Chunking split = chunking(s);
  const int blocks = s.channels * split.chunks;
  Scratch<Moments> partials(blocks);
  Scratch<float> pilots(s.channels);
  with_pack_width(pack_width(s.spatial(), {x, y}), [&](auto width) {
    const int64_t chunk_packs = split.chunk_values / width();
    RAISIN_LAUNCH((forward_moments_kernel<width()>), blocks, kChunkThreads, 0, current_stream())(
        s.batch, s.channels, s.spatial(), split.chunks, chunk_packs, x, partials.get(), pilots.get());
    RAISIN_CUDA_CHECK(cudaGetLastError());
    RAISIN_LAUNCH((forward_normalise_kernel<width()>), blocks, kChunkThreads, 0, current_stream())(
        s.batch, s.channels, s.spatial(), split.chunks, chunk_packs, eps, momentum, x, gamma, beta, partials.get(),
        pilots.get(), y, save_mean, save_invstd, running_mean, running_var);
    RAISIN_CUDA_CHECK(cudaGetLastError());
  });
}

void batchnorm2d_forward_infer(const kernels::ImageShape& s, float eps, const float* x, const float* gamma,
                               const float* beta, const float* running_mean, const float* running_var,
                               float* y) {
  if (s.numel() <= 0) return;
  with_pack_width(pack_width(s.spatial(), {x, y}), [&](auto width) {
    const int64_t packs = s.numel() / width(), per_block = int64_t(kElementwiseBlock) * kPacksPerStep<width(), 1>;
    const int blocks = int(std::min<int64_t>((packs + per_block - 1) / per_block, kMaxElementwiseBlocks));
    RAISIN_LAUNCH((forward_infer_kernel<width()>), blocks, kElementwiseBlock, 0, current_stream())(
        packs, s.channels, s.spatial() / width(), eps, x, gamma, beta, running_mean, running_var, y);
  });
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

void batchnorm2d_backward_train(const kernels::ImageShape& s, const float* x, const float* gamma,
                                const float* save_mean, const float* save_invstd, const float* dy, float* dx,
                                float* dgamma, float* dbeta) {
  if (s.channels <= 0 || s.numel() <= 0 || (!dx && !dgamma && !dbeta)) return;
  const Chunking split = chunking(s);
  const int blocks = s.channels * split.chunks;
  Scratch<Sums> partials(blocks);
  with_pack_width(pack_width(s.spatial(), {x, dy, dx}), [&](auto width) {
    const int64_t chunk_packs = split.chunk_values / width();
    RAISIN_LAUNCH((backward_sums_kernel<width(), false>), blocks, kChunkThreads, 0, current_stream())(
        s.batch, s.channels, s.spatial(), split.chunks, chunk_packs, 0.0f, x, gamma, save_mean, save_invstd, dy,
        partials.get(), nullptr);
    RAISIN_CUDA_CHECK(cudaGetLastError());
    if (dx) {
      RAISIN_LAUNCH((backward_dx_kernel<width()>), blocks, kChunkThreads, 0, current_stream())(
          s.batch, s.channels, s.spatial(), split.chunks, chunk_packs, x, gamma, save_mean, save_invstd, dy,
          partials.get(), dx, dgamma, dbeta);
    } else {
      RAISIN_LAUNCH(parameter_grads_kernel, s.channels, kChunkThreads, 0, current_stream())(
          split.chunks, partials.get(), dgamma, dbeta);
    }
    RAISIN_CUDA_CHECK(cudaGetLastError());
  });
}

void batchnorm2d_backward_infer(const kernels::ImageShape& s, float eps, const float* x, const float* gamma,
                                const float* running_mean, const float* running_var, const float* dy,
                                float* dx, float* dgamma, float* dbeta) {
  if (s.channels <= 0 || s.numel() <= 0 || (!dx && !dgamma && !dbeta)) return;
  const Chunking split = chunking(s);
  const int blocks = s.channels * split.chunks;
  const bool sums = dgamma || dbeta;
  Scratch<Sums> partials(sums ? blocks : 0);
  with_pack_width(pack_width(s.spatial(), {x, dy, dx}), [&](auto width) {
    RAISIN_LAUNCH((backward_sums_kernel<width(), true>), blocks, kChunkThreads, 0, current_stream())(
        s.batch, s.channels, s.spatial(), split.chunks, split.chunk_values / width(), eps, x, gamma, running_mean,
        running_var, dy, partials.get(), dx);
    RAISIN_CUDA_CHECK(cudaGetLastError());
  });
  if (!sums) return;
  RAISIN_LAUNCH(parameter_grads_kernel, s.channels, kChunkThreads, 0, current_stream())(split.chunks, partials.get(),
                                                                                        dgamma, dbeta);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

}  // namespace raisin::cuda
