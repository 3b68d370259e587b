// CPU twins of the device RAIS kernels (kernels/cuda/rais.cu): per-example features, the robust
// distribution, the draw's weights and records, the observation of a step's proxy norms and the
// gain-ratio update. They compute what rais/ computes on the host (rais::compute_features,
// rais::robust_distribution, rais::RaisSampler::draw/observe, rais::GainRatio::update), with the sums of
// the distribution in the GPU's fixed order (signatures.inc), so the CUDA kernels match them bit for bit.
// Compiled without floating-point contraction: every product is rounded before it is added.
#include <array>
#include <cfloat>
#include <cmath>
#include <cstdint>

#include "kernels/cpu/kernels.h"

namespace raisin::cpu {

namespace {

constexpr int kFeatures = 4;  // rais::kFeatureCount
constexpr int kThreads = 256, kPerThread = 4, kTile = kThreads * kPerThread;

int64_t tile_count(int64_t n) { return (n + kTile - 1) / kTile; }

// The GPU's sum of one tile's values v[0, count) (count ≤ kTile, the rest read as 0): 256 partial sums
// of 4 consecutive values added left to right, then s[t] += s[t + h] for h = 128, 64, ..., 1.
double tile_sum(const double* v, int64_t count) {
  std::array<double, kThreads> s;
  for (int t = 0; t < kThreads; ++t) {
    double running = 0.0;
    for (int k = 0; k < kPerThread; ++k) {
      const int64_t e = int64_t(t) * kPerThread + k;
      const double value = e < count ? v[e] : 0.0;
      running = k == 0 ? value : running + value;
    }
    s[size_t(t)] = running;
  }
  for (int h = kThreads / 2; h > 0; h /= 2)
    for (int t = 0; t < h; ++t) s[size_t(t)] += s[size_t(t + h)];
  return s[0];
}

}  // namespace

void rais_features(int64_t n, const float* last_norm, const int64_t* last_seen, const int64_t* step_on_device,
                   int64_t steps_per_epoch, float* features) {
  const int64_t step = step_on_device[0];
#pragma omp parallel for schedule(static) if (n > 8192)  // elementwise: any split gives the same features
  for (int64_t i = 0; i < n; ++i) {
    float* f = features + i * kFeatures;
    const float x = last_norm[i];
    const float norm = (x > 0.0f) & (x <= FLT_MAX) ? x : 0.0f;  // NaN, ±inf, negative → 0
    const int64_t seen = last_seen[i];
    const float never = float(seen < 0);
    const float recent = float((seen >= 0) & (step - seen < steps_per_epoch));
    f[0] = 1.0f;
    f[1] = recent * norm;
    f[2] = (1.0f - never - recent) * norm;
    f[3] = never;
  }
}

// ĉ (n), d̂ (n), the tiles' Σĉ and Σd̂ (one per tile each), a flag per tile (the CUDA twin's "every w of
// the tile equals w_0") and four scalars: the layout of the CUDA twin, which needs all of them.
int64_t rais_distribution_workspace_doubles(int64_t n) { return 2 * n + 3 * tile_count(n) + 4; }

void rais_distribution(int64_t n, const float* features, const double* c, const double* d, double uniform_share,
                       double* p, double* workspace) {
  if (n <= 0) return;
  const int64_t tiles = tile_count(n);
  double* c_hat = workspace;
  double* d_hat = c_hat + n;
  double* tile_c = d_hat + n;
  double* tile_d = tile_c + tiles;

  // ĉ, d̂ and the tile sums.
  const double c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3], d0 = d[0], d1 = d[1], d2 = d[2], d3 = d[3];
#pragma omp parallel for schedule(static) if (tiles > 16)
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t begin = t * kTile, count = n - begin < kTile ? n - begin : kTile;
    for (int64_t i = begin; i < begin + count; ++i) {
      const float* s = features + i * kFeatures;
      const double s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3];
      c_hat[i] = (c0 * s0 + c1 * s1) + (c2 * s2 + c3 * s3);
      d_hat[i] = (d0 * s0 + d1 * s1) + (d2 * s2 + d3 * s3);
    }
    tile_c[t] = tile_sum(c_hat + begin, count);
    tile_d[t] = tile_sum(d_hat + begin, count);
  }
  double sc = 0.0, sd = 0.0;
  for (int64_t t = 0; t < tiles; ++t) {
    sc += tile_c[t];
    sd += tile_d[t];
  }
  const double nd = double(n);
  double k = 0.0, total = sc;
  if (sd > 0.0) {
    k = std::sqrt(nd / sd);
    total = sc + k * sd;
  }

  // Unnormalised weights w = ĉ + k·d̂ into p; exactly uniform when they are all equal (equal features)
  // or their total is not positive and finite.
  const double first = c_hat[0] + k * d_hat[0];
  bool all_equal = true;
#pragma omp parallel for schedule(static) reduction(&& : all_equal) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const double w = c_hat[i] + k * d_hat[i];
    p[i] = w;
    all_equal = all_equal && w == first;
  }
  if (!(total > 0.0 && total <= DBL_MAX) || all_equal) {
    for (int64_t i = 0; i < n; ++i) p[i] = 1.0 / nd;
    return;
  }
  const double scale = (1.0 - uniform_share) / total, floor = uniform_share / nd;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) p[i] = p[i] * scale + floor;
}

void rais_record_draws(int batch, const int32_t* indices, int64_t n, const double* p, const float* features,
                       const int64_t* first_record, int64_t capacity, float* weights, float* record_features,
                       float* record_weights) {
  const int64_t first = first_record[0];
  for (int j = 0; j < batch; ++j) {
    const int32_t i = indices[j];
    const float omega = p ? float(1.0 / (double(n) * p[i])) : 1.0f;
    if (p) weights[j] = omega;
    const int64_t slot = (first + j) % capacity;
    for (int f = 0; f < kFeatures; ++f) record_features[slot * kFeatures + f] = features[int64_t(i) * kFeatures + f];
    record_weights[slot] = omega;
  }
}

void rais_observe(int batch, const int32_t* indices, const float* proxy_norms, const int64_t* step,
                  const int64_t* first_record, int64_t capacity, float* record_norms, float* last_norm,
                  int64_t* last_seen, const int32_t* skip) {
  if (skip && skip[0] != 0) return;
  const int64_t first = first_record[0], seen = step[0];
  for (int j = 0; j < batch; ++j) record_norms[(first + j) % capacity] = proxy_norms[j];
  for (int j = 0; j < batch; ++j) {  // in order: a repeated example keeps its last draw's norm
    last_norm[indices[j]] = proxy_norms[j];
    last_seen[indices[j]] = seen;
  }
}

void gain_ratio_update(int batch, int classes, const float* proxy_norms, const float* weights,
                       const float* dlogits, const kernels::GainRatioHyper& hyper, double* state,
                       const int32_t* skip) {
  if (skip && skip[0] != 0) return;
  using namespace kernels;
  double u1 = 0, r1 = 0;
  for (int i = 0; i < batch; ++i) {
    const double v = proxy_norms[i], w = weights ? weights[i] : 1.0;
    u1 += v * v * w;
    r1 += (v * w) * (v * w);
  }
  u1 /= batch;
  r1 /= batch;
  double g = 0;  // ‖Σ_j dlogits_j‖², per class a column sum over the batch
  for (int k = 0; k < classes; ++k) {
    double column = 0;
    for (int i = 0; i < batch; ++i) column += dlogits[int64_t(i) * classes + k];
    g += column * column;
  }
  const double a = hyper.alpha;
  state[kGainM_U1] = a * u1 + (1 - a) * state[kGainM_U1];
  state[kGainM_R1] = a * r1 + (1 - a) * state[kGainM_R1];
  state[kGainM_R] = a * g + (1 - a) * state[kGainM_R];
  state[kGainDecay] *= 1 - a;
  state[kGainSteps] += 1;
  const double correction = 1 - state[kGainDecay];  // bias correction of all three EMAs
  const double m_u1 = state[kGainM_U1] / correction, m_r1 = state[kGainM_R1] / correction,
               m_r = state[kGainM_R] / correction;
  double r = m_r > 0 ? 1 + (m_u1 - m_r1) / (batch * m_r) : 1;
  if (!(r >= -DBL_MAX && r <= DBL_MAX)) r = 1;  // not finite
  if (r < hyper.min || r > hyper.max) state[kGainClamped] += 1;
  state[kGainValue] = r < hyper.min ? hyper.min : (hyper.max < r ? hyper.max : r);
}

}  // namespace raisin::cpu
