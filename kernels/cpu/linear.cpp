// CPU linear (fully connected) layer: y = x · wᵀ + b, with PyTorch's weight layout w[out, in].
// Both passes are single OpenBLAS sgemm calls (row-major); the backward GEMMs use beta = 1 so that,
// as every backward kernel does, they accumulate into dx and dw instead of overwriting them.
#include <cblas.h>

#include <cstdint>

#include "kernels/cpu/kernels.h"

namespace raisin::cpu {

// x [B, I], w [O, I], b [O] (or null) → y [B, O]
void linear_forward(const kernels::LinearShape& s, const float* x, const float* w, const float* b, float* y) {
  const int B = s.batch, I = s.in_features, O = s.out_features;
  if (B == 0 || O == 0) return;
  float beta = 0.0f;
  if (b != nullptr) {
    // start every row of y at the bias, then let the GEMM add x · wᵀ on top
    for (int i = 0; i < B; i++) {
      float* y_row = y + int64_t(i) * O;
      for (int o = 0; o < O; o++) y_row[o] = b[o];
    }
    beta = 1.0f;
  }
  if (I == 0) {
    if (b == nullptr)
      for (int64_t i = 0; i < int64_t(B) * O; i++) y[i] = 0.0f;
    return;
  }
  // y[B, O] (+)= x[B, I] · w[O, I]ᵀ
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, O, I, 1.0f, x, I, w, I, beta, y, O);
}

// dx [B, I] += dy · w;   dw [O, I] += dyᵀ · x;   db [O] += Σ_batch dy.   Any of dx, dw, db may be null.
void linear_backward(const kernels::LinearShape& s, const float* x, const float* w, const float* dy,
                     float* dx, float* dw, float* db) {
  const int B = s.batch, I = s.in_features, O = s.out_features;
  if (B == 0 || O == 0) return;  // nothing flows back
  if (dx != nullptr && I > 0) {
    // dx[B, I] += dy[B, O] · w[O, I]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, I, O, 1.0f, dy, O, w, I, 1.0f, dx, I);
  }
  if (dw != nullptr && I > 0) {
    // dw[O, I] += dy[B, O]ᵀ · x[B, I]
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, O, I, B, 1.0f, dy, O, x, I, 1.0f, dw, I);
  }
  if (db != nullptr) {
    for (int i = 0; i < B; i++) {
      const float* dy_row = dy + int64_t(i) * O;
      for (int o = 0; o < O; o++) db[o] += dy_row[o];
    }
  }
}

}  // namespace raisin::cpu
