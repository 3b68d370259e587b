// CPU batch normalisation over NCHW activations, statistics per channel (PyTorch's BatchNorm2d):
//   training:  y = (x − mean_B)·invstd·γ + β with the batch mean and biased variance,
//              invstd = 1/sqrt(var + eps); running stats move towards the batch mean and the
//              unbiased batch variance with `momentum`.
//   inference: the same with the running mean and variance.
// Backward kernels accumulate (+=) into dx, dgamma, dbeta; a null gradient pointer is skipped.
//
// Each channel is independent, so every kernel is one OpenMP loop over channels. The training kernels
// (the ones in every training step) work in float so that their loops vectorise, and keep the
// statistics accurate by how they sum: every plane is summed in blocks of kBlock floats (a vectorised
// float sum of a few hundred terms loses little), and the block sums are added in double. The mean is
// summed as Σ(x − pilot) with pilot = the channel's first value, and the variance as the centred
// Σ(x − mean)² in a second pass, with the mean split into two floats (hi + lo) so that x − mean is
// exact to float precision even when the mean is large compared to the spread. The inference kernels
// use double throughout.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/cpu/kernels.h"

namespace raisin::cpu {

namespace {

// Element (b, c, i) of an NCHW tensor with `spatial` = h·w lives at ((b·C + c)·spatial + i).
inline int64_t plane_offset(int b, int c, int channels, int64_t spatial) {
  return (int64_t(b) * channels + c) * spatial;
}

constexpr int64_t kBlock = 256;

// Σ_i (x[i] − shift) over n floats, in float blocks added in double.
double sum_shifted(const float* x, int64_t n, float shift) {
  double sum = 0.0;
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int64_t i1 = std::min(n, i0 + kBlock);
    float block = 0.0f;
#pragma omp simd reduction(+ : block)
    for (int64_t i = i0; i < i1; ++i) block += x[i] - shift;
    sum += block;
  }
  return sum;
}

// Σ_i ((x[i] − hi) − lo)² over n floats, likewise.
double sum_centred_squares(const float* x, int64_t n, float hi, float lo) {
  double sum = 0.0;
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int64_t i1 = std::min(n, i0 + kBlock);
    float block = 0.0f;
#pragma omp simd reduction(+ : block)
    for (int64_t i = i0; i < i1; ++i) {
      const float d = (x[i] - hi) - lo;
      block += d * d;
    }
    sum += block;
  }
  return sum;
}

}  // namespace

void batchnorm2d_forward_train(const kernels::ImageShape& s, float eps, float momentum, const float* x,
                               const float* gamma, const float* beta, float* y, float* save_mean,
                               float* save_invstd, float* running_mean, float* running_var) {
  const int B = s.batch, C = s.channels;
  const int64_t S = s.spatial();
  const int64_t N = int64_t(B) * S;  // values per channel
  if (C <= 0 || N <= 0) return;

#pragma omp parallel for schedule(static)
  for (int c = 0; c < C; ++c) {
    // pass 1: mean, as pilot + mean of (x − pilot)
    const float pilot = x[plane_offset(0, c, C, S)];
    double sum = 0.0;
    for (int b = 0; b < B; ++b) sum += sum_shifted(x + plane_offset(b, c, C, S), S, pilot);
    const double mean = double(pilot) + sum / double(N);
    const float mean_hi = float(mean), mean_lo = float(mean - double(mean_hi));

    // pass 2: centred sum of squares → biased variance
    double sq = 0.0;
    for (int b = 0; b < B; ++b) sq += sum_centred_squares(x + plane_offset(b, c, C, S), S, mean_hi, mean_lo);
    const double var = sq / double(N);
    const double invstd = 1.0 / std::sqrt(var + double(eps));

    // pass 3: normalise, scale, shift
    const float scale = float(invstd * double(gamma[c])), shift = beta[c];
    for (int b = 0; b < B; ++b) {
      const int64_t off = plane_offset(b, c, C, S);
      const float* xp = x + off;
      float* yp = y + off;
#pragma omp simd
      for (int64_t i = 0; i < S; ++i) yp[i] = ((xp[i] - mean_hi) - mean_lo) * scale + shift;
    }

    if (save_mean) save_mean[c] = float(mean);
    if (save_invstd) save_invstd[c] = float(invstd);
    if (!std::isfinite(mean) || !std::isfinite(sq)) continue;  // keep the running statistics
    const double m = double(momentum);
    if (running_mean) running_mean[c] = float((1.0 - m) * double(running_mean[c]) + m * mean);
    // The unbiased variance needs N > 1; with a single value per channel there is no variance
    // estimate (PyTorch refuses such a batch in training), so the running variance is left as it is.
    if (running_var && N > 1) {
      const double unbiased = sq / double(N - 1);
      running_var[c] = float((1.0 - m) * double(running_var[c]) + m * unbiased);
    }
  }
}

void batchnorm2d_forward_infer(const kernels::ImageShape& s, float eps, const float* x, const float* gamma,
                               const float* beta, const float* running_mean, const float* running_var,
                               float* y) {
  const int B = s.batch, C = s.channels;
  const int64_t S = s.spatial();

#pragma omp parallel for schedule(static)
  for (int c = 0; c < C; ++c) {
    const double mean = double(running_mean[c]);
    const double scale = double(gamma[c]) / std::sqrt(double(running_var[c]) + double(eps));
    const double shift = double(beta[c]);
    for (int b = 0; b < B; ++b) {
      const int64_t off = plane_offset(b, c, C, S);
      const float* xp = x + off;
      float* yp = y + off;
      for (int64_t i = 0; i < S; ++i) yp[i] = float((double(xp[i]) - mean) * scale + shift);
    }
  }
}

void batchnorm2d_backward_train(const kernels::ImageShape& s, const float* x, const float* gamma,
                                const float* save_mean, const float* save_invstd, const float* dy, float* dx,
                                float* dgamma, float* dbeta) {
  const int B = s.batch, C = s.channels;
  const int64_t S = s.spatial();
  const int64_t N = int64_t(B) * S;
  if (C <= 0 || N <= 0) return;

#pragma omp parallel for schedule(static)
  for (int c = 0; c < C; ++c) {
    const float mean = save_mean[c];
    const double invstd = double(save_invstd[c]);

    // Σ dy and Σ dy·(x − mean) over the channel (Σ dy·x̂ = invstd · the latter), blocks as in forward
    double sum_dy = 0.0, sum_dy_d = 0.0;
    for (int b = 0; b < B; ++b) {
      const int64_t off = plane_offset(b, c, C, S);
      const float* xp = x + off;
      const float* dyp = dy + off;
      for (int64_t i0 = 0; i0 < S; i0 += kBlock) {
        const int64_t i1 = std::min(S, i0 + kBlock);
        float block_dy = 0.0f, block_dy_d = 0.0f;
#pragma omp simd reduction(+ : block_dy, block_dy_d)
        for (int64_t i = i0; i < i1; ++i) {
          block_dy += dyp[i];
          block_dy_d += dyp[i] * (xp[i] - mean);
        }
        sum_dy += block_dy;
        sum_dy_d += block_dy_d;
      }
    }
    const double sum_dy_xhat = invstd * sum_dy_d;
    if (dgamma) dgamma[c] += float(sum_dy_xhat);
    if (dbeta) dbeta[c] += float(sum_dy);
    if (!dx) continue;

    // dx = γ·invstd · (dy − mean(dy) − x̂·mean(dy·x̂)) = k · ((dy − mean(dy)) − r·(x − mean))
    const float k = float(double(gamma[c]) * invstd), mean_dy = float(sum_dy / double(N)),
                r = float(invstd * sum_dy_xhat / double(N));
    for (int b = 0; b < B; ++b) {
      const int64_t off = plane_offset(b, c, C, S);
      const float* xp = x + off;
      const float* dyp = dy + off;
      float* dxp = dx + off;
#pragma omp simd
      for (int64_t i = 0; i < S; ++i) dxp[i] += k * ((dyp[i] - mean_dy) - r * (xp[i] - mean));
    }
  }
}

void batchnorm2d_backward_infer(const kernels::ImageShape& s, float eps, const float* x, const float* gamma,
                                const float* running_mean, const float* running_var, const float* dy,
                                float* dx, float* dgamma, float* dbeta) {
  const int B = s.batch, C = s.channels;
  const int64_t S = s.spatial();

#pragma omp parallel for schedule(static)
  for (int c = 0; c < C; ++c) {
    const double mean = double(running_mean[c]);
    const double invstd = 1.0 / std::sqrt(double(running_var[c]) + double(eps));
    const double k = double(gamma[c]) * invstd;  // ∂y/∂x, a constant per channel

    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    for (int b = 0; b < B; ++b) {
      const int64_t off = plane_offset(b, c, C, S);
      const float* xp = x + off;
      const float* dyp = dy + off;
      for (int64_t i = 0; i < S; ++i) {
        sum_dy += dyp[i];
        sum_dy_xhat += double(dyp[i]) * (double(xp[i]) - mean) * invstd;
      }
      if (dx) {
        float* dxp = dx + off;
        for (int64_t i = 0; i < S; ++i) dxp[i] += float(k * double(dyp[i]));
      }
    }
    if (dgamma) dgamma[c] += float(sum_dy_xhat);
    if (dbeta) dbeta[c] += float(sum_dy);
  }
}

}  // namespace raisin::cpu
