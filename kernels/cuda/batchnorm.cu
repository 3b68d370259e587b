// CUDA batchnorm2d over NCHW activations, statistics per channel: the twin of kernels/cpu/batchnorm.cpp
// (same conventions: biased variance for normalising, unbiased for the running variance, backward
// kernels accumulate into dx, dgamma, dbeta and skip null pointers).
//
// The training kernels and the inference backward run one block per channel: the block reduces the
// channel's statistics (kernels/cuda/reduce.cuh) and then, knowing them, writes the channel's outputs,
// so a step needs no second launch and no workspace. Statistics are summed in float per thread and
// then in a fixed tree, so results are reproducible. The forward statistics are moments of
// x − pilot (pilot = the channel's first value), merged pack by pack and thread by thread with Chan's
// formula: this stays accurate when the mean is large compared to the spread, where E[x²] − E[x]² in
// float fails (and where even Welford's update on x itself rounds its running mean to ulp(mean)).
// The inference forward is elementwise over the whole tensor. Every kernel walks the tensor in packs
// of 4 floats when its planes allow (kernels/cuda/channel_walk.cuh).
#include "kernels/cuda/compat.h"

#include <algorithm>
#include <cstdint>

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

template <int kThreads, int kWidth>
__global__ void __launch_bounds__(kThreads)
    forward_train_kernel(int batch, int channels, int64_t spatial, float eps, float momentum, const float* x,
                         const float* gamma, const float* beta, float* y, float* save_mean, float* save_invstd,
                         float* running_mean, float* running_var) {
  constexpr int kPacks = kPacksPerStep<kWidth, 1>;
  __shared__ Moments scratch[kThreads / 32];
  const int c = blockIdx.x;
  const int64_t count = int64_t(batch) * spatial;  // values in the channel
  const int64_t packs = spatial / kWidth;           // per plane

  // pass 1: moments of x − pilot
  const float pilot = x[int64_t(c) * spatial];
  Moments m = {0.0f, 0.0f, 0.0f};
  for (ChannelWalk w(threadIdx.x, kThreads, batch, channels, c, packs); !w.done();) {
    int64_t at[kPacks];
    w.take(at);
    Pack<kWidth> v[kPacks];
    for (int u = 0; u < kPacks; ++u) v[u] = load_pack<kWidth>(x, at[u]);
    for (int u = 0; u < kPacks; ++u)
      if (at[u] >= 0) m = MergeMoments{}(m, pack_moments(v[u], pilot));
  }
  m = block_allreduce<kThreads>(m, MergeMoments{}, scratch);
  const float centre = m.mean;  // batch mean − pilot
  const float var = m.m2 / float(count);
  const float invstd = 1.0f / sqrtf(var + eps);

  // pass 2: y = ((x − pilot) − centre)·invstd·γ + β
  const float scale = invstd * gamma[c], shift = beta[c];
  for (ChannelWalk w(threadIdx.x, kThreads, batch, channels, c, packs); !w.done();) {
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

  if (threadIdx.x != 0) return;
  const float mean = pilot + centre;
  if (save_mean) save_mean[c] = mean;
  if (save_invstd) save_invstd[c] = invstd;
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

template <int kThreads, int kWidth>
__global__ void __launch_bounds__(kThreads)
    backward_train_kernel(int batch, int channels, int64_t spatial, const float* x, const float* gamma,
                          const float* save_mean, const float* save_invstd, const float* dy, float* dx,
                          float* dgamma, float* dbeta) {
  constexpr int kPacks = kPacksPerStep<kWidth, 2>;
  __shared__ float scratch[kThreads / 32];
  const int c = blockIdx.x;
  const int64_t count = int64_t(batch) * spatial, packs = spatial / kWidth;
  const float mean = save_mean[c], invstd = save_invstd[c];

  // Σ dy and Σ dy·(x − mean) over the channel
  float sum_dy = 0.0f, sum_dy_d = 0.0f;
  for (ChannelWalk w(threadIdx.x, kThreads, batch, channels, c, packs); !w.done();) {
    int64_t at[kPacks];
    w.take(at);
    Pack<kWidth> xv[kPacks], g[kPacks];
    for (int u = 0; u < kPacks; ++u) xv[u] = load_pack<kWidth>(x, at[u]), g[u] = load_pack<kWidth>(dy, at[u]);
    for (int u = 0; u < kPacks; ++u)  // past the end dy = 0 adds nothing
      for (int k = 0; k < kWidth; ++k) {
        sum_dy += g[u].v[k];
        sum_dy_d += g[u].v[k] * (xv[u].v[k] - mean);
      }
  }
  sum_dy = block_allreduce<kThreads>(sum_dy, SumOp{}, scratch);
  sum_dy_d = block_allreduce<kThreads>(sum_dy_d, SumOp{}, scratch);
  const float sum_dy_xhat = invstd * sum_dy_d;  // Σ dy·x̂
  if (threadIdx.x == 0) {
    if (dgamma) dgamma[c] += sum_dy_xhat;
    if (dbeta) dbeta[c] += sum_dy;
  }
  if (!dx) return;

  // dx = γ·invstd · (dy − mean(dy) − x̂·mean(dy·x̂)) = k · ((dy − mean(dy)) − r·(x − mean))
  const float k = gamma[c] * invstd, mean_dy = sum_dy / float(count), r = invstd * sum_dy_xhat / float(count);
  for (ChannelWalk w(threadIdx.x, kThreads, batch, channels, c, packs); !w.done();) {
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

// With the running statistics x̂ is affine in x, so dx = γ·invstd·dy needs no reduction; dgamma and
// dbeta do, in the same pass.
template <int kThreads, int kWidth>
__global__ void __launch_bounds__(kThreads)
    backward_infer_kernel(int batch, int channels, int64_t spatial, float eps, const float* x, const float* gamma,
                          const float* running_mean, const float* running_var, const float* dy, float* dx,
                          float* dgamma, float* dbeta) {
  constexpr int kPacks = kPacksPerStep<kWidth, 2>;
  __shared__ float scratch[kThreads / 32];
  const int c = blockIdx.x;
  const int64_t packs = spatial / kWidth;
  const float mean = running_mean[c], invstd = 1.0f / sqrtf(running_var[c] + eps), k = gamma[c] * invstd;

  float sum_dy = 0.0f, sum_dy_d = 0.0f;
  for (ChannelWalk w(threadIdx.x, kThreads, batch, channels, c, packs); !w.done();) {
    int64_t at[kPacks];
    w.take(at);
    Pack<kWidth> xv[kPacks], g[kPacks], d[kPacks];
    for (int u = 0; u < kPacks; ++u) {
      xv[u] = load_pack<kWidth>(x, at[u]), g[u] = load_pack<kWidth>(dy, at[u]);
      d[u] = load_pack<kWidth>(dx, dx ? at[u] : -1);
    }
    for (int u = 0; u < kPacks; ++u) {  // past the end dy = 0 adds nothing
      for (int e = 0; e < kWidth; ++e) {
        sum_dy += g[u].v[e];
        sum_dy_d += g[u].v[e] * (xv[u].v[e] - mean);
        d[u].v[e] += k * g[u].v[e];
      }
      if (dx && at[u] >= 0) store_pack(dx, at[u], d[u]);
    }
  }
  if (!dgamma && !dbeta) return;  // uniform across the block: no thread is left at a barrier
  sum_dy = block_allreduce<kThreads>(sum_dy, SumOp{}, scratch);
  sum_dy_d = block_allreduce<kThreads>(sum_dy_d, SumOp{}, scratch);
  if (threadIdx.x == 0) {
    if (dgamma) dgamma[c] += invstd * sum_dy_d;
    if (dbeta) dbeta[c] += sum_dy;
  }
}

}  // namespace

void batchnorm2d_forward_train(const kernels::ImageShape& s, float eps, float momentum, const float* x,
                               const float* gamma, const float* beta, float* y, float* save_mean,
                               float* save_invstd, float* running_mean, float* running_var) {
  if (s.channels <= 0 || s.numel() <= 0) return;
  with_channel_block(int64_t(s.batch) * s.spatial(), pack_width(s.spatial(), {x, y}), [&](auto threads, auto width) {
    RAISIN_LAUNCH((forward_train_kernel<threads(), width()>), s.channels, threads(), 0, current_stream())(
        s.batch, s.channels, s.spatial(), eps, momentum, x, gamma, beta, y, save_mean, save_invstd, running_mean,
        running_var);
  });
  RAISIN_CUDA_CHECK(cudaGetLastError());
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
  with_channel_block(int64_t(s.batch) * s.spatial(), pack_width(s.spatial(), {x, dy, dx}),
                     [&](auto threads, auto width) {
                       RAISIN_LAUNCH((backward_train_kernel<threads(), width()>), s.channels, threads(), 0,
                                     current_stream())(s.batch, s.channels, s.spatial(), x, gamma, save_mean,
                                                       save_invstd, dy, dx, dgamma, dbeta);
                     });
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

void batchnorm2d_backward_infer(const kernels::ImageShape& s, float eps, const float* x, const float* gamma,
                                const float* running_mean, const float* running_var, const float* dy,
                                float* dx, float* dgamma, float* dbeta) {
  if (s.channels <= 0 || s.numel() <= 0 || (!dx && !dgamma && !dbeta)) return;
  with_channel_block(int64_t(s.batch) * s.spatial(), pack_width(s.spatial(), {x, dy, dx}),
                     [&](auto threads, auto width) {
                       RAISIN_LAUNCH((backward_infer_kernel<threads(), width()>), s.channels, threads(), 0,
                                     current_stream())(s.batch, s.channels, s.spatial(), eps, x, gamma,
                                                       running_mean, running_var, dy, dx, dgamma, dbeta);
                     });
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

}  // namespace raisin::cuda
