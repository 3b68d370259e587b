// CPU 2-D convolution (cross-correlation, as PyTorch's Conv2d): NCHW activations, weight
// [Cout, Cin, kh, kw], stride, zero padding, optional bias; no dilation, no groups.
//
// Each sample is lowered with im2col to a matrix col[K, P], K = Cin·kh·kw, P = out_h·out_w, whose row
// (c, i, j) holds input pixel (c, oh·stride_h − pad_h + i, ow·stride_w − pad_w + j) for every output
// position (oh, ow), or 0 in the padding. The convolution is then one OpenBLAS sgemm per sample:
//   forward:   y_n[Cout, P]  = w[Cout, K] · col[K, P]            (+ b per output channel)
//   backward:  dw[Cout, K]  += dy_n[Cout, P] · col[K, P]ᵀ
//              dcol[K, P]    = w[Cout, K]ᵀ · dy_n[Cout, P], then col2im adds dcol into dx_n
//              db[Cout]     += Σ_{n, P} dy_n
// A 1x1 kernel with stride 1 and no padding needs no lowering: col is the sample itself.
//
// The caller's workspace holds one col matrix (conv2d_workspace_floats); backward reuses it for dcol
// once the dw GEMM has consumed col. The sample loop stays serial: OpenBLAS threads each GEMM itself.
#include <cblas.h>

#include <cstdint>

#include "kernels/cpu/kernels.h"

namespace raisin::cpu {

namespace {

bool is_pointwise(const kernels::Conv2dShape& s) {
  return s.kernel_h == 1 && s.kernel_w == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 &&
         s.pad_w == 0;
}

// x: one sample [Cin, H, W] → col [Cin·kh·kw, OH·OW]
void im2col(const kernels::Conv2dShape& s, const float* x, float* col) {
  const int H = s.in_h, W = s.in_w, OH = s.out_h(), OW = s.out_w();
  const int64_t P = int64_t(OH) * OW;
  for (int c = 0; c < s.in_channels; c++) {
    const float* x_c = x + int64_t(c) * H * W;
    for (int i = 0; i < s.kernel_h; i++) {
      for (int j = 0; j < s.kernel_w; j++) {
        float* row = col + ((int64_t(c) * s.kernel_h + i) * s.kernel_w + j) * P;
        for (int oh = 0; oh < OH; oh++) {
          float* dst = row + int64_t(oh) * OW;
          const int ih = oh * s.stride_h - s.pad_h + i;
          if (ih < 0 || ih >= H) {
            for (int ow = 0; ow < OW; ow++) dst[ow] = 0.0f;
            continue;
          }
          const float* src = x_c + int64_t(ih) * W;
          for (int ow = 0; ow < OW; ow++) {
            const int iw = ow * s.stride_w - s.pad_w + j;
            dst[ow] = (iw >= 0 && iw < W) ? src[iw] : 0.0f;
          }
        }
      }
    }
  }
}

// The adjoint of im2col: every entry of col [Cin·kh·kw, OH·OW] is added to the input pixel it was
// copied from in dx [Cin, H, W]; entries that came from the padding are dropped.
void col2im_add(const kernels::Conv2dShape& s, const float* col, float* dx) {
  const int H = s.in_h, W = s.in_w, OH = s.out_h(), OW = s.out_w();
  const int64_t P = int64_t(OH) * OW;
  for (int c = 0; c < s.in_channels; c++) {
    float* dx_c = dx + int64_t(c) * H * W;
    for (int i = 0; i < s.kernel_h; i++) {
      for (int j = 0; j < s.kernel_w; j++) {
        const float* row = col + ((int64_t(c) * s.kernel_h + i) * s.kernel_w + j) * P;
        for (int oh = 0; oh < OH; oh++) {
          const int ih = oh * s.stride_h - s.pad_h + i;
          if (ih < 0 || ih >= H) continue;
          const float* src = row + int64_t(oh) * OW;
          float* dst = dx_c + int64_t(ih) * W;
          for (int ow = 0; ow < OW; ow++) {
            const int iw = ow * s.stride_w - s.pad_w + j;
            if (iw >= 0 && iw < W) dst[iw] += src[ow];
          }
        }
      }
    }
  }
}

}  // namespace

int64_t conv2d_workspace_floats(const kernels::Conv2dShape& s) {
  if (is_pointwise(s)) return 0;
  const int64_t K = int64_t(s.in_channels) * s.kernel_h * s.kernel_w;
  return K * s.out_h() * s.out_w();
}

void conv2d_forward(const kernels::Conv2dShape& s, const float* x, const float* w, const float* b, float* y,
                    float* workspace) {
  const int Cout = s.out_channels;
  const int K = s.in_channels * s.kernel_h * s.kernel_w;
  const int P = s.out_h() * s.out_w();
  const int64_t x_stride = int64_t(s.in_channels) * s.in_h * s.in_w;
  const int64_t y_stride = int64_t(Cout) * P;
  const bool pointwise = is_pointwise(s);
  if (Cout == 0 || P == 0) return;  // empty output
  for (int n = 0; n < s.batch; n++) {
    const float* x_n = x + n * x_stride;
    float* y_n = y + n * y_stride;
    float beta = 0.0f;
    if (b != nullptr) {
      // start each output plane at its bias, then let the GEMM add on top
      for (int co = 0; co < Cout; co++) {
        float* y_c = y_n + int64_t(co) * P;
        for (int p = 0; p < P; p++) y_c[p] = b[co];
      }
      beta = 1.0f;
    }
    if (K == 0) {
      if (b == nullptr)
        for (int64_t i = 0; i < y_stride; i++) y_n[i] = 0.0f;
      continue;
    }
    const float* col = x_n;
    if (!pointwise) {
      im2col(s, x_n, workspace);
      col = workspace;
    }
    // y_n[Cout, P] (+)= w[Cout, K] · col[K, P]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, P, K, 1.0f, w, K, col, P, beta, y_n, P);
  }
}

void conv2d_backward(const kernels::Conv2dShape& s, const float* x, const float* w, const float* dy,
                     float* dx, float* dw, float* db, float* workspace) {
  const int Cout = s.out_channels;
  const int K = s.in_channels * s.kernel_h * s.kernel_w;
  const int P = s.out_h() * s.out_w();
  const int64_t x_stride = int64_t(s.in_channels) * s.in_h * s.in_w;
  const int64_t y_stride = int64_t(Cout) * P;
  const bool pointwise = is_pointwise(s);
  for (int n = 0; n < s.batch; n++) {
    const float* x_n = x + n * x_stride;
    const float* dy_n = dy + n * y_stride;
    float* dx_n = dx != nullptr ? dx + n * x_stride : nullptr;

    if (db != nullptr) {
      for (int co = 0; co < Cout; co++) {
        const float* dy_c = dy_n + int64_t(co) * P;
        float sum = 0.0f;
        for (int p = 0; p < P; p++) sum += dy_c[p];
        db[co] += sum;
      }
    }
    if (K == 0 || P == 0 || Cout == 0) continue;

    if (dw != nullptr) {
      const float* col = x_n;
      if (!pointwise) {
        im2col(s, x_n, workspace);
        col = workspace;
      }
      // dw[Cout, K] += dy_n[Cout, P] · col[K, P]ᵀ
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Cout, K, P, 1.0f, dy_n, P, col, P, 1.0f, dw, K);
    }
    if (dx_n != nullptr) {
      if (pointwise) {
        // dx_n[Cin, P] += w[Cout, Cin]ᵀ · dy_n[Cout, P]
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, P, Cout, 1.0f, w, K, dy_n, P, 1.0f, dx_n, P);
      } else {
        // dcol[K, P] = w[Cout, K]ᵀ · dy_n[Cout, P], reusing the col buffer, then scatter-add into dx_n
        float* dcol = workspace;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, P, Cout, 1.0f, w, K, dy_n, P, 0.0f, dcol, P);
        col2im_add(s, dcol, dx_n);
      }
    }
  }
}

}  // namespace raisin::cpu
