// CPU pooling kernels over NCHW activations: 2-D max and average pooling with stride and zero
// padding, and global average pooling ([batch, channels, h, w] → [batch, channels]).
// Every (n, c) plane is independent, so OpenMP splits the work by plane; inside a plane the loops are
// sequential, which also keeps the backward scatters (overlapping windows) free of races.
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/cpu/kernels.h"

namespace raisin::cpu {

namespace {
// Below this many output elements a single thread is faster than a parallel region.
constexpr int64_t kParallelMin = 1 << 14;

// v replaces the current winner when it is larger, or a NaN over a number; else the first stays.
inline void take_if_larger(float v, int32_t index, float& best, int32_t& best_index) {
  const bool take = (v > best) | ((v != v) & (best == best));  // (x != x: x is NaN)
  best = take ? v : best;
  best_index = take ? index : best_index;
}

void maxpool2x2_plane(const kernels::Pool2dShape& s, const float* xp, float* yp, int32_t* ap) {
  const int out_h = s.out_h(), out_w = s.out_w(), W = s.in_w;
  for (int oh = 0; oh < out_h; ++oh) {
    const float* row0 = xp + 2 * oh * W;
    const float* row1 = row0 + W;
    for (int ow = 0; ow < out_w; ++ow) {
      const int32_t i0 = 2 * oh * W + 2 * ow;  // the window's first element, flat in the plane
      float best = row0[2 * ow];
      int32_t best_index = i0;
      take_if_larger(row0[2 * ow + 1], i0 + 1, best, best_index);
      take_if_larger(row1[2 * ow], i0 + W, best, best_index);
      take_if_larger(row1[2 * ow + 1], i0 + W + 1, best, best_index);
      yp[oh * out_w + ow] = best;
      ap[oh * out_w + ow] = best_index;
    }
  }
}
}  // namespace

// Padding acts as −inf. argmax holds the flat index h·in_w + w of the winner inside its (n, c) plane;
// on ties the first element in row-major window order wins, and a NaN wins over any number (as in
// PyTorch). A window lying wholly inside the padding (only possible with pad > kernel / 2, which
// PyTorch rejects) gives −inf and argmax −1, which the backward pass skips.
//
// The common 2x2 window with stride 2 and no padding (LeNet-5, VGG) takes a branch-free path: the
// general loop's data-dependent branches mispredict on every other element.
void maxpool2d_forward(const kernels::Pool2dShape& s, const float* x, float* y, int32_t* argmax) {
  const int out_h = s.out_h(), out_w = s.out_w();
  const int64_t planes = int64_t(s.batch) * s.channels;
  const int64_t in_plane = int64_t(s.in_h) * s.in_w, out_plane = int64_t(out_h) * out_w;
  if (s.kernel_h == 2 && s.kernel_w == 2 && s.stride_h == 2 && s.stride_w == 2 && s.pad_h == 0 && s.pad_w == 0) {
#pragma omp parallel for if (planes * out_plane >= kParallelMin)
    for (int64_t p = 0; p < planes; ++p)
      maxpool2x2_plane(s, x + p * in_plane, y + p * out_plane, argmax + p * out_plane);
    return;
  }
#pragma omp parallel for if (planes * out_plane >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const float* xp = x + p * in_plane;
    float* yp = y + p * out_plane;
    int32_t* ap = argmax + p * out_plane;
    for (int oh = 0; oh < out_h; ++oh) {
      for (int ow = 0; ow < out_w; ++ow) {
        const int h0 = oh * s.stride_h - s.pad_h, w0 = ow * s.stride_w - s.pad_w;
        float best = -std::numeric_limits<float>::infinity();
        int32_t best_index = -1;
        for (int kh = 0; kh < s.kernel_h; ++kh) {
          const int h = h0 + kh;
          if (h < 0 || h >= s.in_h) continue;
          for (int kw = 0; kw < s.kernel_w; ++kw) {
            const int w = w0 + kw;
            if (w < 0 || w >= s.in_w) continue;
            const float v = xp[h * s.in_w + w];
            // Strict > keeps the first of equal values; the first valid element is taken even when it
            // is −inf, and the first NaN sticks.
            if (best_index < 0 || v > best || (std::isnan(v) && !std::isnan(best))) {
              best = v;
              best_index = h * s.in_w + w;
            }
          }
        }
        yp[oh * out_w + ow] = best;
        ap[oh * out_w + ow] = best_index;
      }
    }
  }
}

// dx[argmax] += dy, plane by plane.
void maxpool2d_backward(const kernels::Pool2dShape& s, const int32_t* argmax, const float* dy, float* dx) {
  if (!dx) return;  // not needed
  const int64_t planes = int64_t(s.batch) * s.channels;
  const int64_t in_plane = int64_t(s.in_h) * s.in_w, out_plane = int64_t(s.out_h()) * s.out_w();
#pragma omp parallel for if (planes * out_plane >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const int32_t* ap = argmax + p * out_plane;
    const float* dyp = dy + p * out_plane;
    float* dxp = dx + p * in_plane;
    for (int64_t o = 0; o < out_plane; ++o) {
      if (ap[o] >= 0) dxp[ap[o]] += dyp[o];
    }
  }
}

// Average over the window, padding counted as zeros: the divisor is always kernel_h · kernel_w
// (PyTorch's count_include_pad=True; with floor-mode output sizes no window runs past the padding).
void avgpool2d_forward(const kernels::Pool2dShape& s, const float* x, float* y) {
  const int out_h = s.out_h(), out_w = s.out_w();
  const int64_t planes = int64_t(s.batch) * s.channels;
  const int64_t in_plane = int64_t(s.in_h) * s.in_w, out_plane = int64_t(out_h) * out_w;
  const float inv_count = 1.0f / float(s.kernel_h * s.kernel_w);
#pragma omp parallel for if (planes * out_plane >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const float* xp = x + p * in_plane;
    float* yp = y + p * out_plane;
    for (int oh = 0; oh < out_h; ++oh) {
      for (int ow = 0; ow < out_w; ++ow) {
        const int h0 = oh * s.stride_h - s.pad_h, w0 = ow * s.stride_w - s.pad_w;
        float sum = 0.0f;
        for (int kh = 0; kh < s.kernel_h; ++kh) {
          const int h = h0 + kh;
          if (h < 0 || h >= s.in_h) continue;
          for (int kw = 0; kw < s.kernel_w; ++kw) {
            const int w = w0 + kw;
            if (w < 0 || w >= s.in_w) continue;
            sum += xp[h * s.in_w + w];
          }
        }
        yp[oh * out_w + ow] = sum * inv_count;
      }
    }
  }
}

// Every input in the window of an output gets dy / (kernel_h · kernel_w); padding positions drop theirs.
void avgpool2d_backward(const kernels::Pool2dShape& s, const float* dy, float* dx) {
  if (!dx) return;  // not needed
  const int out_h = s.out_h(), out_w = s.out_w();
  const int64_t planes = int64_t(s.batch) * s.channels;
  const int64_t in_plane = int64_t(s.in_h) * s.in_w, out_plane = int64_t(out_h) * out_w;
  const float inv_count = 1.0f / float(s.kernel_h * s.kernel_w);
#pragma omp parallel for if (planes * out_plane >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const float* dyp = dy + p * out_plane;
    float* dxp = dx + p * in_plane;
    for (int oh = 0; oh < out_h; ++oh) {
      for (int ow = 0; ow < out_w; ++ow) {
        const int h0 = oh * s.stride_h - s.pad_h, w0 = ow * s.stride_w - s.pad_w;
        const float g = dyp[oh * out_w + ow] * inv_count;
        for (int kh = 0; kh < s.kernel_h; ++kh) {
          const int h = h0 + kh;
          if (h < 0 || h >= s.in_h) continue;
          for (int kw = 0; kw < s.kernel_w; ++kw) {
            const int w = w0 + kw;
            if (w < 0 || w >= s.in_w) continue;
            dxp[h * s.in_w + w] += g;
          }
        }
      }
    }
  }
}

// y[n, c] = mean of plane (n, c), summed in double so that large planes lose nothing.
void global_avgpool_forward(const kernels::ImageShape& s, const float* x, float* y) {
  const int64_t planes = int64_t(s.batch) * s.channels, spatial = s.spatial();
#pragma omp parallel for if (s.numel() >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const float* xp = x + p * spatial;
    double sum = 0.0;
    for (int64_t i = 0; i < spatial; ++i) sum += xp[i];
    y[p] = float(sum / double(spatial));
  }
}

// dx[n, c, :, :] += dy[n, c] / (h · w)
void global_avgpool_backward(const kernels::ImageShape& s, const float* dy, float* dx) {
  if (!dx) return;  // not needed
  const int64_t planes = int64_t(s.batch) * s.channels, spatial = s.spatial();
#pragma omp parallel for if (s.numel() >= kParallelMin)
  for (int64_t p = 0; p < planes; ++p) {
    const float g = dy[p] / float(spatial);
    float* dxp = dx + p * spatial;
    for (int64_t i = 0; i < spatial; ++i) dxp[i] += g;
  }
}

}  // namespace raisin::cpu
