// CUDA RAIS kernels, the twins of kernels/cpu/rais.cpp: per-example features, the robust distribution,
// the draw's weights and records, the observation of a step's proxy norms and the gain-ratio update.
// Each performs the CPU twin's double operations in the same order, so the results agree bit for bit;
// products that feed a sum go through mul(), which nvcc may not fuse into an fma (the CPU rounds them).
//
// rais_distribution, on the current stream (tiles of 1024 examples, one 256-thread block each):
//  tiles (ĉ, d̂ and the tile's Σĉ, Σd̂: each thread adds its 4 values left to right, then a shared-memory
//  tree s[t] += s[t + h], h = 128 … 1) → totals (one thread: tile sums in tile order, k, the scale) →
//  weights (w = ĉ + k·d̂ into p, a flag per tile: every w equals w_0) → decide (one thread: uniform or
//  not) → finish (p = w·scale + floor, or 1/n).
#include <cstdint>

#include "kernels/cuda/compat.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/kernels.h"

namespace raisin::cuda {

namespace {

constexpr int kFeatures = 4;  // rais::kFeatureCount
constexpr int kThreads = 256, kPerThread = 4, kTile = kThreads * kPerThread;

// The scalars at the end of rais_distribution's workspace.
enum DistributionScalar : int { kScale, kFloor, kK, kUniform };

int64_t tile_count(int64_t n) { return (n + kTile - 1) / kTile; }

int blocks_for(int64_t items) {
  const int64_t blocks = (items + kThreads - 1) / kThreads;
  return int(blocks < 65535 ? (blocks > 0 ? blocks : 1) : 65535);
}

// a·b rounded on its own: nvcc may not contract it with the sum it feeds (the CPU twin does not).
__device__ __forceinline__ double mul(double a, double b) { return __dmul_rn(a, b); }

__global__ void features_kernel(int64_t n, const float* last_norm, const int64_t* last_seen, const int64_t* step_at,
                                int64_t steps_per_epoch, float* features) {
  const int64_t step = step_at[0];
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float x = last_norm[i];
    const float norm = (x > 0.0f) & (x <= FLT_MAX) ? x : 0.0f;  // NaN, ±inf, negative → 0
    const int64_t seen = last_seen[i];
    const float never = float(seen < 0);
    const float recent = float((seen >= 0) & (step - seen < steps_per_epoch));
    float* f = features + i * kFeatures;
    f[0] = 1.0f;
    f[1] = recent * norm;
    f[2] = (1.0f - never - recent) * norm;
    f[3] = never;
  }
}

// The block's sum of one value per thread by the tree s[t] += s[t + h], h = 128 … 1; `buffer` is kThreads
// doubles of shared memory, free again on return. Every thread of the block must call it.
__device__ double tree_sum(double value, double* buffer) {
  const int t = int(threadIdx.x);
  buffer[t] = value;
  __syncthreads();
  for (int h = kThreads / 2; h > 0; h /= 2) {
    if (t < h) buffer[t] += buffer[t + h];
    __syncthreads();
  }
  const double sum = buffer[0];
  __syncthreads();
  return sum;
}

__global__ void tiles_kernel(int64_t n, const float* features, const double* c, const double* d, double* c_hat,
                             double* d_hat, double* tile_c, double* tile_d) {
  __shared__ double buffer[kThreads];
  const double c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3], d0 = d[0], d1 = d[1], d2 = d[2], d3 = d[3];
  double sc = 0.0, sd = 0.0;
  for (int k = 0; k < kPerThread; ++k) {
    const int64_t i = int64_t(blockIdx.x) * kTile + int64_t(threadIdx.x) * kPerThread + k;
    double ci = 0.0, di = 0.0;
    if (i < n) {
      const float* s = features + i * kFeatures;
      const double s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3];
      ci = (mul(c0, s0) + mul(c1, s1)) + (mul(c2, s2) + mul(c3, s3));
      di = (mul(d0, s0) + mul(d1, s1)) + (mul(d2, s2) + mul(d3, s3));
      c_hat[i] = ci;
      d_hat[i] = di;
    }
    sc = k == 0 ? ci : sc + ci;
    sd = k == 0 ? di : sd + di;
  }
  sc = tree_sum(sc, buffer);
  sd = tree_sum(sd, buffer);
  if (threadIdx.x == 0) {
    tile_c[blockIdx.x] = sc;
    tile_d[blockIdx.x] = sd;
  }
}

// One thread: Σĉ, Σd̂ in tile order, k, and the scale and floor of p (scale 0 when the total is not
// positive and finite: p is then uniform).
__global__ void totals_kernel(int64_t n, int64_t tiles, const double* tile_c, const double* tile_d,
                              double uniform_share, double* scalars) {
  double sc = 0.0, sd = 0.0;
  for (int64_t t = 0; t < tiles; ++t) {
    sc += tile_c[t];
    sd += tile_d[t];
  }
  const double nd = double(n);
  double k = 0.0, total = sc;
  if (sd > 0.0) {
    k = sqrt(nd / sd);
    total = sc + mul(k, sd);
  }
  const bool valid = total > 0.0 && total <= DBL_MAX;
  scalars[kK] = k;
  scalars[kScale] = valid ? (1.0 - uniform_share) / total : 0.0;
  scalars[kFloor] = uniform_share / nd;
  scalars[kUniform] = valid ? 0.0 : 1.0;
}

__global__ void weights_kernel(int64_t n, const double* c_hat, const double* d_hat, const double* scalars, double* p,
                               double* tile_equal) {
  __shared__ int equal;
  const double k = scalars[kK];
  const double first = c_hat[0] + mul(k, d_hat[0]);
  if (threadIdx.x == 0) equal = 1;
  __syncthreads();
  bool mine = true;
  for (int j = 0; j < kPerThread; ++j) {
    const int64_t i = int64_t(blockIdx.x) * kTile + int64_t(threadIdx.x) * kPerThread + j;
    if (i >= n) break;
    const double w = c_hat[i] + mul(k, d_hat[i]);
    p[i] = w;
    mine = mine && w == first;
  }
  if (!mine) equal = 0;
  __syncthreads();
  if (threadIdx.x == 0) tile_equal[blockIdx.x] = equal;
}

// One thread: p is uniform when the total was not positive and finite or every tile's w equal w_0.
__global__ void decide_kernel(int64_t tiles, const double* tile_equal, double* scalars) {
  bool all_equal = true;
  for (int64_t t = 0; t < tiles; ++t) all_equal = all_equal && tile_equal[t] != 0.0;
  if (all_equal) scalars[kUniform] = 1.0;
}

__global__ void finish_kernel(int64_t n, const double* scalars, double* p) {
  const bool uniform = scalars[kUniform] != 0.0;
  const double scale = scalars[kScale], floor = scalars[kFloor], even = 1.0 / double(n);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    p[i] = uniform ? even : mul(p[i], scale) + floor;
}

__global__ void record_draws_kernel(int batch, const int32_t* indices, int64_t n, const double* p,
                                    const float* features, const int64_t* first_record, int64_t capacity,
                                    float* weights, float* record_features, float* record_weights) {
  const int64_t first = first_record[0];
  for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < batch; j += gridDim.x * blockDim.x) {
    const int32_t i = indices[j];
    const float omega = p ? float(1.0 / (double(n) * p[i])) : 1.0f;
    if (p) weights[j] = omega;
    const int64_t slot = (first + j) % capacity;
    for (int f = 0; f < kFeatures; ++f) record_features[slot * kFeatures + f] = features[int64_t(i) * kFeatures + f];
    record_weights[slot] = omega;
  }
}

// A thread per draw j; only the last draw of an example writes its state (no j' > j with the same index),
// so the result does not depend on the order in which threads run. O(batch²) comparisons in all.
__global__ void observe_kernel(int batch, const int32_t* indices, const float* proxy_norms, const int64_t* step_at,
                               const int64_t* first_record, int64_t capacity, float* record_norms, float* last_norm,
                               int64_t* last_seen, const int32_t* skip) {
  if (skip && *skip != 0) return;
  const int64_t step = step_at[0], first = first_record[0];
  for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < batch; j += gridDim.x * blockDim.x) {
    record_norms[(first + j) % capacity] = proxy_norms[j];
    const int32_t i = indices[j];
    bool last = true;
    for (int later = j + 1; later < batch && last; ++later) last = indices[later] != i;
    if (last) {
      last_norm[i] = proxy_norms[j];
      last_seen[i] = step;
    }
  }
}

// One block. Thread 0 sums u1 and thread 32 (another warp) r1, each in index order; then the columns of
// dlogits in chunks of kThreads classes (a thread per class sums its column in index order), their
// squares added by thread 0 in class order; then thread 0 updates the state.
__global__ void gain_ratio_kernel(int batch, int classes, const float* proxy_norms, const float* weights,
                                  const float* dlogits, kernels::GainRatioHyper hyper, double* state,
                                  const int32_t* skip) {
  if (skip && *skip != 0) return;
  using namespace kernels;
  __shared__ double buffer[kThreads];
  __shared__ double moments[2];
  const int t = int(threadIdx.x);
  if (t == 0 || t == 32) {
    double sum = 0;
    for (int i = 0; i < batch; ++i) {
      const double v = proxy_norms[i], w = weights ? weights[i] : 1.0;
      sum += t == 0 ? mul(mul(v, v), w) : mul(mul(v, w), mul(v, w));
    }
    moments[t == 0 ? 0 : 1] = sum / batch;
  }
  __syncthreads();
  double g = 0;  // ‖Σ_j dlogits_j‖², kept by thread 0
  for (int begin = 0; begin < classes; begin += kThreads) {
    const int k = begin + t;
    double column = 0;
    if (k < classes)
      for (int i = 0; i < batch; ++i) column += dlogits[int64_t(i) * classes + k];
    buffer[t] = column;
    __syncthreads();
    if (t == 0) {
      const int end = classes - begin < kThreads ? classes - begin : kThreads;
      for (int c = 0; c < end; ++c) g += mul(buffer[c], buffer[c]);
    }
    __syncthreads();
  }
  if (t != 0) return;
  const double u1 = moments[0], r1 = moments[1], a = hyper.alpha;
  state[kGainM_U1] = mul(a, u1) + mul(1 - a, state[kGainM_U1]);
  state[kGainM_R1] = mul(a, r1) + mul(1 - a, state[kGainM_R1]);
  state[kGainM_R] = mul(a, g) + mul(1 - a, state[kGainM_R]);
  state[kGainDecay] *= 1 - a;
  state[kGainSteps] += 1;
  const double correction = 1 - state[kGainDecay];
  const double m_u1 = state[kGainM_U1] / correction, m_r1 = state[kGainM_R1] / correction,
               m_r = state[kGainM_R] / correction;
  double r = m_r > 0 ? 1 + (m_u1 - m_r1) / (batch * m_r) : 1;
  if (!(r >= -DBL_MAX && r <= DBL_MAX)) r = 1;  // not finite
  if (r < hyper.min || r > hyper.max) state[kGainClamped] += 1;
  state[kGainValue] = r < hyper.min ? hyper.min : (hyper.max < r ? hyper.max : r);
}

}  // namespace

void rais_features(int64_t n, const float* last_norm, const int64_t* last_seen, const int64_t* step,
                   int64_t steps_per_epoch, float* features) {
  if (n <= 0) return;
  RAISIN_LAUNCH(features_kernel, blocks_for(n), kThreads, 0, current_stream())(n, last_norm, last_seen, step,
                                                                              steps_per_epoch, features);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

// ĉ (n), d̂ (n), the tiles' Σĉ, Σd̂ and "every w equals w_0" flags (one each per tile), four scalars.
int64_t rais_distribution_workspace_doubles(int64_t n) { return 2 * n + 3 * tile_count(n) + 4; }

void rais_distribution(int64_t n, const float* features, const double* c, const double* d, double uniform_share,
                       double* p, double* workspace) {
  if (n <= 0) return;
  const int64_t tiles = tile_count(n);
  double* c_hat = workspace;
  double* d_hat = c_hat + n;
  double* tile_c = d_hat + n;
  double* tile_d = tile_c + tiles;
  double* tile_equal = tile_d + tiles;
  double* scalars = tile_equal + tiles;
  const cudaStream_t stream = current_stream();
  RAISIN_LAUNCH(tiles_kernel, int(tiles), kThreads, 0, stream)(n, features, c, d, c_hat, d_hat, tile_c, tile_d);
  RAISIN_CUDA_CHECK(cudaGetLastError());
  RAISIN_LAUNCH(totals_kernel, 1, 1, 0, stream)(n, tiles, tile_c, tile_d, uniform_share, scalars);
  RAISIN_CUDA_CHECK(cudaGetLastError());
  RAISIN_LAUNCH(weights_kernel, int(tiles), kThreads, 0, stream)(n, c_hat, d_hat, scalars, p, tile_equal);
  RAISIN_CUDA_CHECK(cudaGetLastError());
  RAISIN_LAUNCH(decide_kernel, 1, 1, 0, stream)(tiles, tile_equal, scalars);
  RAISIN_CUDA_CHECK(cudaGetLastError());
  RAISIN_LAUNCH(finish_kernel, blocks_for(n), kThreads, 0, stream)(n, scalars, p);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

void rais_record_draws(int batch, const int32_t* indices, int64_t n, const double* p, const float* features,
                       const int64_t* first_record, int64_t capacity, float* weights, float* record_features,
                       float* record_weights) {
  if (batch <= 0) return;
  RAISIN_LAUNCH(record_draws_kernel, blocks_for(batch), kThreads, 0, current_stream())(
      batch, indices, n, p, features, first_record, capacity, weights, record_features, record_weights);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

void rais_observe(int batch, const int32_t* indices, const float* proxy_norms, const int64_t* step,
                  const int64_t* first_record, int64_t capacity, float* record_norms, float* last_norm,
                  int64_t* last_seen, const int32_t* skip) {
  if (batch <= 0) return;
  RAISIN_LAUNCH(observe_kernel, blocks_for(batch), kThreads, 0, current_stream())(
      batch, indices, proxy_norms, step, first_record, capacity, record_norms, last_norm, last_seen, skip);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

void gain_ratio_update(int batch, int classes, const float* proxy_norms, const float* weights,
                       const float* dlogits, const kernels::GainRatioHyper& hyper, double* state,
                       const int32_t* skip) {
  RAISIN_LAUNCH(gain_ratio_kernel, 1, kThreads, 0, current_stream())(batch, classes, proxy_norms, weights, dlogits,
                                                                    hyper, state, skip);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

}  // namespace raisin::cuda
