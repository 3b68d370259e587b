// CPU batch normalisation over NCHW activations, statistics per channel (PyTorch's BatchNorm2d):
//   training:  y = (x − mean_B)·invstd·γ + β with the batch mean and biased variance,
//              invstd = 1/sqrt(var + eps); running stats move towards the batch mean and the
//              unbiased batch variance with `momentum`.
//   inference: the same with the running mean and variance.
// Backward kernels accumulate (+=) into dx, dgamma, dbeta; a null gradient pointer is skipped.
//
// Each channel is independent, so every kernel is one OpenMP loop over channels. Statistics and
// reductions use double accumulators (two passes: mean, then centred sum of squares), so a channel
// whose mean is large compared to its spread keeps its variance.
#include <cmath>
#include <cstdint>

#include "kernels/cpu/kernels.h"

namespace raisin::cpu {

namespace {

// Element (b, c, i) of an NCHW tensor with `spatial` = h·w lives at ((b·C + c)·spatial + i).
inline int64_t plane_offset(int b, int c, int channels, int64_t spatial) {
  return (int64_t(b) * channels + c) * spatial;
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
    // pass 1: mean
    double sum = 0.0;
    for (int b = 0; b < B; ++b) {
      const float* xp = x + plane_offset(b, c, C, S);
      for (int64_t i = 0; i < S; ++i) sum += xp[i];
    }
    const double mean = sum / double(N);

    // pass 2: centred sum of squares → biased variance
    double sq = 0.0;
    for (int b = 0; b < B; ++b) {
      const float* xp = x + plane_offset(b, c, C, S);
      for (int64_t i = 0; i < S; ++i) {
        const double d = double(xp[i]) - mean;
        sq += d * d;
      }
    }
    const double var = sq / double(N);
    const double invstd = 1.0 / std::sqrt(var + double(eps));

    // pass 3: normalise, scale, shift
    const double scale = invstd * double(gamma[c]);
    const double shift = double(beta[c]);
    for (int b = 0; b < B; ++b) {
      const int64_t off = plane_offset(b, c, C, S);
      const float* xp = x + off;
      float* yp = y + off;
      for (int64_t i = 0; i < S; ++i) yp[i] = float((double(xp[i]) - mean) * scale + shift);
    }

    if (save_mean) save_mean[c] = float(mean);
    if (save_invstd) save_invstd[c] = float(invstd);
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
    const double mean = double(save_mean[c]);
    const double invstd = double(save_invstd[c]);

    // Σ dy and Σ dy·x̂ over the channel, x̂ = (x − mean)·invstd
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    for (int b = 0; b < B; ++b) {
      const int64_t off = plane_offset(b, c, C, S);
      const float* xp = x + off;
      const float* dyp = dy + off;
      for (int64_t i = 0; i < S; ++i) {
        const double xhat = (double(xp[i]) - mean) * invstd;
        sum_dy += dyp[i];
        sum_dy_xhat += double(dyp[i]) * xhat;
      }
    }
    if (dgamma) dgamma[c] += float(sum_dy_xhat);
    if (dbeta) dbeta[c] += float(sum_dy);
    if (!dx) continue;

    // dx = γ·invstd/N · (N·dy − Σdy − x̂·Σ(dy·x̂)) = γ·invstd · (dy − mean(dy) − x̂·mean(dy·x̂))
    const double k = double(gamma[c]) * invstd;
    const double mean_dy = sum_dy / double(N);
    const double mean_dy_xhat = sum_dy_xhat / double(N);
    for (int b = 0; b < B; ++b) {
      const int64_t off = plane_offset(b, c, C, S);
      const float* xp = x + off;
      const float* dyp = dy + off;
      float* dxp = dx + off;
      for (int64_t i = 0; i < S; ++i) {
        const double xhat = (double(xp[i]) - mean) * invstd;
        dxp[i] += float(k * (double(dyp[i]) - mean_dy - xhat * mean_dy_xhat));
      }
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
