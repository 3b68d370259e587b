// CPU alias table: the sequential twin of kernels/cuda/alias.cu, with the same parallel algorithm (the
// split method of Hübschle-Schneider & Sanders, "Parallel Weighted Random Sampling", ESA 2019) and the
// same floating-point operations in the same order, so both backends build bit-identical tables.
//
// Build, with q_i = w_i · (n / Σ w) (the scaled weight; a slot holds mass 1):
//  1. Σ w, then q. Item i is light when q_i ≤ 1 (deficit 1 − q_i), heavy otherwise (excess q_i − 1).
//  2. Prefix sums in index order of the light deficits and of the heavy excesses: A(i) = deficit of the
//     first i + 1 lights, B(m) = excess of the first m + 1 heavies; lights and heavies are compacted in
//     index order.
//  3. The sweeping pairing visits lights and heavies in one merged order: light i (key A(i − 1), 0 for
//     the first) comes before heavy m (key B(m)) iff A(i − 1) < B(m). Light i fills its slot with prob q_i
//     and takes the rest from the heavy current at that point; heavy m, once the lights before it have
//     taken its excess, keeps 1 − (A − B(m)) in its own slot (A: the deficit of those lights) and takes the
//     rest from heavy m + 1. The last heavy and any lights after it keep prob 1 (rounding leftovers),
//     except zero-weight items, which keep prob 0 and alias to the last heavy.
//  Every slot is a pure function of its position k in the merged order, so the slots split into chunks:
//  a chunk finds its start (i, k − i) by binary search on the keys (the merge path) and sweeps on.
//
// Every sum runs in the GPU's order, on tiles of 1024 values (256 threads × 4): each thread adds its 4
// values left to right, a Hillis–Steele scan over the 256 thread totals (t ← t − d plus t, d = 1, 2, …,
// 128), value prefix = thread's exclusive prefix + its own running sum; tile offsets by the same scan over
// chunks of 1024 tile totals, a running carry in front: offset = carry + in-chunk exclusive prefix.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/philox.h"

namespace raisin::cpu {

namespace {

constexpr int kThreads = 256, kPerThread = 4, kTile = kThreads * kPerThread;

int64_t tile_count(int64_t n) { return (n + kTile - 1) / kTile; }

// The GPU tile scan of v[0, count) (count ≤ kTile, the rest read as 0): inclusive[k] and exclusive[k]
// prefixes with the GPU's operations, and the tile total (the return value).
double tile_scan(const double* v, int64_t count, double* inclusive, double* exclusive) {
  std::array<double, kTile> s{};
  std::array<double, kThreads> totals{};
  for (int t = 0; t < kThreads; ++t) {
    double running = 0.0;
    for (int k = 0; k < kPerThread; ++k) {
      const int64_t e = int64_t(t) * kPerThread + k;
      const double value = e < count ? v[e] : 0.0;
      running = k == 0 ? value : running + value;
      s[size_t(e)] = running;
    }
    totals[size_t(t)] = running;
  }
  for (int d = 1; d < kThreads; d *= 2) {
    for (int t = kThreads - 1; t >= d; --t) totals[size_t(t)] = totals[size_t(t - d)] + totals[size_t(t)];
  }
  for (int t = 0; t < kThreads; ++t) {
    const double before = t > 0 ? totals[size_t(t - 1)] : 0.0;
    for (int k = 0; k < kPerThread; ++k) {
      const int64_t e = int64_t(t) * kPerThread + k;
      if (e >= count) continue;
      if (inclusive) inclusive[e] = before + s[size_t(e)];
      if (exclusive) exclusive[e] = k == 0 ? before : before + s[size_t(e - 1)];
    }
  }
  return totals[kThreads - 1];
}

// The GPU's top-level scan: tile totals → exclusive tile offsets, in place; returns the grand total.
double offsets_scan(std::vector<double>& values) {
  const int64_t count = int64_t(values.size());
  std::vector<double> chunk(kTile);
  double carry = 0.0;
  for (int64_t begin = 0; begin < count; begin += kTile) {
    const int64_t size = std::min<int64_t>(kTile, count - begin);
    const double total = tile_scan(values.data() + begin, size, nullptr, chunk.data());
    for (int64_t k = 0; k < size; ++k) values[size_t(begin + k)] = carry + chunk[size_t(k)];
    carry = carry + total;
  }
  return carry;
}

// The high 64 bits of a · n, as the GPU computes them (n < 2^32).
uint64_t mul_high(uint64_t a, uint64_t n) {
  return ((a >> 32) * n + (((a & 0xffffffffull) * n) >> 32)) >> 32;
}

}  // namespace

// The CUDA twin's layout: q, A, B (n each), the compacted items (n int32), four values per tile and four
// scalars. The CPU uses the first four parts and keeps the rest in its own vectors.
int64_t alias_workspace_doubles(int64_t n) {
  const int64_t tiles = tile_count(n);
  return 3 * n + (n + 1) / 2 + 4 * tiles + 4;
}

void alias_build(int64_t n, const double* weights, double* prob, int32_t* alias, double* workspace) {
  const int64_t tiles = tile_count(n);
  // The workspace as the CUDA twin lays it out: q, A, B, the compacted items (lights, then heavies).
  double* q = workspace;
  double* A = q + n;
  double* B = A + n;
  int32_t* items = reinterpret_cast<int32_t*>(B + n);

  // 1. Σ w and q.
  std::vector<double> tile_w(size_t(tiles), 0.0);
  for (int64_t t = 0; t < tiles; ++t)
    tile_w[size_t(t)] = tile_scan(weights + t * kTile, std::min<int64_t>(kTile, n - t * kTile), nullptr, nullptr);
  const double total = offsets_scan(tile_w);
  const double scale = double(n) / total;
  for (int64_t e = 0; e < n; ++e) q[e] = weights[e] * scale;

  // 2. Light deficits and heavy excesses (0 for the other class), their tile totals and offsets.
  std::vector<double> deficit(static_cast<size_t>(n)), excess(static_cast<size_t>(n));
  for (int64_t e = 0; e < n; ++e) {
    const bool light = q[e] <= 1.0;
    deficit[size_t(e)] = light ? 1.0 - q[e] : 0.0;
    excess[size_t(e)] = light ? 0.0 : q[e] - 1.0;
  }
  std::vector<double> tile_d(static_cast<size_t>(tiles)), tile_x(static_cast<size_t>(tiles));
  std::vector<int64_t> lights_before(size_t(tiles) + 1, 0);
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t begin = t * kTile, size = std::min<int64_t>(kTile, n - begin);
    tile_d[size_t(t)] = tile_scan(deficit.data() + begin, size, nullptr, nullptr);
    tile_x[size_t(t)] = tile_scan(excess.data() + begin, size, nullptr, nullptr);
    int64_t lights = 0;
    for (int64_t e = begin; e < begin + size; ++e) lights += q[e] <= 1.0;
    lights_before[size_t(t) + 1] = lights_before[size_t(t)] + lights;
  }
  offsets_scan(tile_d);
  offsets_scan(tile_x);
  const int64_t L = lights_before[size_t(tiles)], H = n - L;

  // Prefix sums at each item, compacted by class in index order.
  std::vector<double> in_tile_d(kTile), in_tile_x(kTile);
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t begin = t * kTile, size = std::min<int64_t>(kTile, n - begin);
    tile_scan(deficit.data() + begin, size, in_tile_d.data(), nullptr);
    tile_scan(excess.data() + begin, size, in_tile_x.data(), nullptr);
    int64_t light = lights_before[size_t(t)];
    for (int64_t k = 0; k < size; ++k) {
      const int64_t e = begin + k;
      if (q[e] <= 1.0) {
        A[light] = tile_d[size_t(t)] + in_tile_d[size_t(k)];
        items[light++] = int32_t(e);
      } else {
        const int64_t heavy = e - light;
        B[heavy] = tile_x[size_t(t)] + in_tile_x[size_t(k)];
        items[L + heavy] = int32_t(e);
      }
    }
  }

  // 3. The sweep, from the merge-path split of each chunk of slots (one chunk per GPU thread).
  constexpr int64_t kSlotsPerChunk = 8;
  const int32_t* heavies = items + L;
  const auto light_key = [&](int64_t i) { return i > 0 ? A[i - 1] : 0.0; };
  for (int64_t k0 = 0; k0 < n; k0 += kSlotsPerChunk) {
    int64_t lo = std::max<int64_t>(0, k0 - H), hi = std::min<int64_t>(k0, L);
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (light_key(mid) < B[k0 - 1 - mid]) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    int64_t i = lo, m = k0 - lo;
    for (int64_t k = k0; k < std::min(n, k0 + kSlotsPerChunk); ++k) {
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
          prob[slot] = std::clamp(1.0 - (light_key(i) - B[m]), 0.0, 1.0);
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

void alias_draw(int64_t n, const double* prob, const int32_t* alias, uint64_t seed, const int64_t* step, int batch,
                int32_t* out) {
  for (int j = 0; j < batch; ++j) {
    const kernels::Philox4 w = kernels::philox_block(seed, uint64_t(step[0]), uint64_t(j));
    const uint64_t hi = (uint64_t(w.v[0]) << 32) | w.v[1];
    const uint64_t lo = (uint64_t(w.v[2]) << 32) | w.v[3];
    const uint64_t slot = mul_high(hi, uint64_t(n));
    const double coin = double(lo >> 11) * 0x1.0p-53;
    out[j] = coin < prob[slot] ? int32_t(slot) : alias[slot];
  }
}

}  // namespace raisin::cpu
