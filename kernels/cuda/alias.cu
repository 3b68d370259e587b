// CUDA alias table, the twin of kernels/cpu/alias.cpp: a parallel build by the split method of
// Hübschle-Schneider & Sanders ("Parallel Weighted Random Sampling", ESA 2019) and draws with
// rais::AliasTable's formula. kernels/cpu/alias.cpp explains the algorithm and the order of every sum;
// this file performs the same double operations in the same order, so the tables agree bit for bit.
//
// Build, all on the current stream (n up to 2^31 − 1; tiles of 1024 values, one 256-thread block each):
//  tile_totals(w) → offsets_scan (one block: Σ w) → scale (q = w · n/Σ w) → classify (per-tile sums of
//  the light deficits, heavy excesses and light counts) → offsets_scan ×3 → compact (prefix sums A, B at
//  each item, lights and heavies compacted in index order) → sweep (a thread per 8 slots: merge-path
//  binary search for its start, then the sequential sweeping pairing).
// q is written by its own kernel and read back by the others, so nvcc cannot fuse w · scale into an FMA
// with 1 − q or q − 1 (the CPU rounds the product first).
#include <cstdint>

#include "kernels/cuda/compat.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/kernels.h"
#include "kernels/philox.h"

namespace raisin::cuda {

namespace {

constexpr int kThreads = 256, kPerThread = 4, kTile = kThreads * kPerThread;
constexpr int kSlotsPerChunk = 8;

int64_t tile_count(int64_t n) { return (n + kTile - 1) / kTile; }

int blocks_for(int64_t items) {
  const int64_t blocks = (items + kThreads - 1) / kThreads;
  return int(blocks < 65535 ? (blocks > 0 ? blocks : 1) : 65535);
}

// One thread's view of a tile scan: the running sums of its 4 values, the sum of the values of the
// threads before it, and the tile total.
struct TileScan {
  double running[kPerThread];
  double before;
  double total;
  __device__ double inclusive(int k) const { return before + running[k]; }
  __device__ double exclusive(int k) const { return k == 0 ? before : before + running[k - 1]; }
};

// Scans value(e) for e in [0, count) (count ≤ kTile; the rest read as 0): each thread adds its 4 values
// left to right, then a Hillis–Steele scan over the thread totals in `buffer` (kThreads doubles of
// shared memory, free again on return). Every thread of the block must call it.
template <typename Value>
__device__ TileScan tile_scan(Value value, int64_t count, double* buffer) {
  const int t = int(threadIdx.x);
  TileScan scan;
  double running = 0.0;
  for (int k = 0; k < kPerThread; ++k) {
    const int64_t e = int64_t(t) * kPerThread + k;
    const double v = e < count ? value(e) : 0.0;
    running = k == 0 ? v : running + v;
    scan.running[k] = running;
  }
  buffer[t] = running;
  __syncthreads();
  for (int d = 1; d < kThreads; d *= 2) {
    const double left = t >= d ? buffer[t - d] : 0.0;
    const double own = buffer[t];
    __syncthreads();
    if (t >= d) buffer[t] = left + own;
    __syncthreads();
  }
  scan.before = t > 0 ? buffer[t - 1] : 0.0;
  scan.total = buffer[kThreads - 1];
  __syncthreads();
  return scan;
}

__device__ int64_t tile_size(int64_t n) {
  const int64_t rest = n - int64_t(blockIdx.x) * kTile;
  return rest < kTile ? rest : kTile;
}

__global__ void weight_totals_kernel(int64_t n, const double* weights, double* tile_w) {
  __shared__ double buffer[kThreads];
  const double* w = weights + int64_t(blockIdx.x) * kTile;
  const TileScan scan = tile_scan([&](int64_t e) { return w[e]; }, tile_size(n), buffer);
  if (threadIdx.x == 0) tile_w[blockIdx.x] = scan.total;
}

// One block: values[0, count) → exclusive offsets in place (chunks of kTile, a carry in front); *total
// gets the sum.
__global__ void offsets_scan_kernel(int64_t count, double* values, double* total) {
  __shared__ double buffer[kThreads];
  double carry = 0.0;
  for (int64_t begin = 0; begin < count; begin += kTile) {
    double* chunk = values + begin;
    const int64_t size = count - begin < kTile ? count - begin : kTile;
    const TileScan scan = tile_scan([&](int64_t e) { return chunk[e]; }, size, buffer);
    for (int k = 0; k < kPerThread; ++k) {
      const int64_t e = int64_t(threadIdx.x) * kPerThread + k;
      if (e < size) chunk[e] = carry + scan.exclusive(k);
    }
    carry = carry + scan.total;
  }
  if (threadIdx.x == 0) *total = carry;
}

__global__ void scale_kernel(int64_t n, const double* weights, const double* weight_sum, double* q) {
  const double scale = double(n) / *weight_sum;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x)
    q[e] = weights[e] * scale;
}

struct Classes {
  const double* q;
  __device__ double deficit(int64_t e) const { return q[e] <= 1.0 ? 1.0 - q[e] : 0.0; }
  __device__ double excess(int64_t e) const { return q[e] <= 1.0 ? 0.0 : q[e] - 1.0; }
  __device__ double light(int64_t e) const { return q[e] <= 1.0 ? 1.0 : 0.0; }
};

__global__ void classify_kernel(int64_t n, const double* q, double* tile_d, double* tile_x, double* tile_c) {
  __shared__ double buffer[kThreads];
  const Classes c{q + int64_t(blockIdx.x) * kTile};
  const int64_t size = tile_size(n);
  const TileScan d = tile_scan([&](int64_t e) { return c.deficit(e); }, size, buffer);
  const TileScan x = tile_scan([&](int64_t e) { return c.excess(e); }, size, buffer);
  const TileScan l = tile_scan([&](int64_t e) { return c.light(e); }, size, buffer);
  if (threadIdx.x == 0) {
    tile_d[blockIdx.x] = d.total;
    tile_x[blockIdx.x] = x.total;
    tile_c[blockIdx.x] = l.total;
  }
}

// A[i]: deficit of lights 0..i; B[m]: excess of heavies 0..m; items: lights, then heavies.
__global__ void compact_kernel(int64_t n, const double* q, const double* tile_d, const double* tile_x,
                               const double* tile_c, const double* light_count, double* A, double* B,
                               int32_t* items) {
  __shared__ double buffer[kThreads];
  const int64_t begin = int64_t(blockIdx.x) * kTile;
  const Classes c{q + begin};
  const int64_t size = tile_size(n);
  const TileScan d = tile_scan([&](int64_t e) { return c.deficit(e); }, size, buffer);
  const TileScan x = tile_scan([&](int64_t e) { return c.excess(e); }, size, buffer);
  const TileScan l = tile_scan([&](int64_t e) { return c.light(e); }, size, buffer);
  const int64_t L = int64_t(*light_count);
  for (int k = 0; k < kPerThread; ++k) {
    const int64_t local = int64_t(threadIdx.x) * kPerThread + k;
    if (local >= size) break;
    const int64_t e = begin + local;
    const int64_t lights_before = int64_t(tile_c[blockIdx.x] + l.exclusive(k));
    if (q[e] <= 1.0) {
      A[lights_before] = tile_d[blockIdx.x] + d.inclusive(k);
      items[lights_before] = int32_t(e);
    } else {
      const int64_t heavy = e - lights_before;
      B[heavy] = tile_x[blockIdx.x] + x.inclusive(k);
      items[L + heavy] = int32_t(e);
    }
  }
}

__global__ void sweep_kernel(int64_t n, const double* q, const double* A, const double* B, const int32_t* items,
                             const double* light_count, double* prob, int32_t* alias) {
  const int64_t L = int64_t(*light_count), H = n - L;
  const int32_t* heavies = items + L;
  const auto light_key = [&](int64_t i) { return i > 0 ? A[i - 1] : 0.0; };
  const int64_t chunks = (n + kSlotsPerChunk - 1) / kSlotsPerChunk;
  for (int64_t chunk = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; chunk < chunks;
       chunk += int64_t(gridDim.x) * blockDim.x) {
    const int64_t k0 = chunk * kSlotsPerChunk;
    int64_t lo = k0 - H > 0 ? k0 - H : 0, hi = k0 < L ? k0 : L;
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (light_key(mid) < B[k0 - 1 - mid]) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    int64_t i = lo, m = k0 - lo;
    const int64_t end = k0 + kSlotsPerChunk < n ? k0 + kSlotsPerChunk : n;
    for (int64_t k = k0; k < end; ++k) {
      if (m == H || (i < L && light_key(i) < B[m])) {
        const int32_t slot = items[i];
        if (m < H) {
          prob[slot] = q[slot];
          alias[slot] = heavies[m];
        } else if (q[slot] > 0.0 || H == 0) {  // no heavy at all: every q is 1 up to rounding
          prob[slot] = 1.0;
          alias[slot] = slot;
        } else {
          prob[slot] = 0.0;
          alias[slot] = heavies[H - 1];
        }
        ++i;
      } else {
        const int32_t slot = heavies[m];
        if (m + 1 < H) {
          const double kept = 1.0 - (light_key(i) - B[m]);
          prob[slot] = kept < 0.0 ? 0.0 : (kept > 1.0 ? 1.0 : kept);
          alias[slot] = heavies[m + 1];
        } else {
          prob[slot] = 1.0;
          alias[slot] = slot;
        }
        ++m;
      }
    }
  }
}

__global__ void draw_kernel(int64_t n, const double* prob, const int32_t* alias, uint64_t seed, const int64_t* step,
                            int batch, int32_t* out) {
  const uint64_t stream = uint64_t(step[0]);
  for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < batch; j += gridDim.x * blockDim.x) {
    const kernels::Philox4 w = kernels::philox_block(seed, stream, uint64_t(j));
    const uint64_t hi = (uint64_t(w.v[0]) << 32) | w.v[1];
    const uint64_t lo = (uint64_t(w.v[2]) << 32) | w.v[3];
    // The high 64 bits of hi · n (n < 2^32), exactly.
    const uint64_t slot = ((hi >> 32) * uint64_t(n) + (((hi & 0xffffffffull) * uint64_t(n)) >> 32)) >> 32;
    const double coin = double(lo >> 11) * 0x1.0p-53;
    out[j] = coin < prob[slot] ? int32_t(slot) : alias[slot];
  }
}

}  // namespace

int64_t alias_workspace_doubles(int64_t n) {
  const int64_t tiles = tile_count(n);
  return 3 * n + (n + 1) / 2 + 4 * tiles + 4;
}

void alias_build(int64_t n, const double* weights, double* prob, int32_t* alias, double* workspace) {
  const int64_t tiles = tile_count(n);
  double* q = workspace;
  double* A = q + n;
  double* B = A + n;
  int32_t* items = reinterpret_cast<int32_t*>(B + n);
  double* tile_w = B + n + (n + 1) / 2;
  double* tile_d = tile_w + tiles;
  double* tile_x = tile_d + tiles;
  double* tile_c = tile_x + tiles;
  double* weight_sum = tile_c + tiles;  // then the deficit, excess and light totals
  const cudaStream_t stream = current_stream();
  const int grid = int(tiles);

  RAISIN_LAUNCH(weight_totals_kernel, grid, kThreads, 0, stream)(n, weights, tile_w);
  RAISIN_CUDA_CHECK(cudaGetLastError());
  RAISIN_LAUNCH(offsets_scan_kernel, 1, kThreads, 0, stream)(tiles, tile_w, weight_sum);
  RAISIN_CUDA_CHECK(cudaGetLastError());
  RAISIN_LAUNCH(scale_kernel, blocks_for(n), kThreads, 0, stream)(n, weights, weight_sum, q);
  RAISIN_CUDA_CHECK(cudaGetLastError());
  RAISIN_LAUNCH(classify_kernel, grid, kThreads, 0, stream)(n, q, tile_d, tile_x, tile_c);
  RAISIN_CUDA_CHECK(cudaGetLastError());
  double* const tile_sums[3] = {tile_d, tile_x, tile_c};
  for (int s = 0; s < 3; ++s) {
    RAISIN_LAUNCH(offsets_scan_kernel, 1, kThreads, 0, stream)(tiles, tile_sums[s], weight_sum + 1 + s);
    RAISIN_CUDA_CHECK(cudaGetLastError());
  }
  const double* light_count = weight_sum + 3;
  RAISIN_LAUNCH(compact_kernel, grid, kThreads, 0, stream)(n, q, tile_d, tile_x, tile_c, light_count, A, B, items);
  RAISIN_CUDA_CHECK(cudaGetLastError());
  RAISIN_LAUNCH(sweep_kernel, blocks_for((n + kSlotsPerChunk - 1) / kSlotsPerChunk), kThreads, 0, stream)(
      n, q, A, B, items, light_count, prob, alias);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

void alias_draw(int64_t n, const double* prob, const int32_t* alias, uint64_t seed, const int64_t* step, int batch,
                int32_t* out) {
  if (batch <= 0) return;
  RAISIN_LAUNCH(draw_kernel, blocks_for(batch), kThreads, 0, current_stream())(n, prob, alias, seed, step, batch,
                                                                              out);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

}  // namespace raisin::cuda
