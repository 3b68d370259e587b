// CUDA linear (fully connected) layer through cuBLAS: y = x · wᵀ + b with PyTorch's weight layout
// w[out, in], the twin of kernels/cpu/linear.cpp. The GEMMs run on the current stream; the bias is added
// by the per-channel bias kernels (kernels/cuda/bias.cu) with the batch as N and the features as C.
//
// Row-major buffers in a column-major library: a row-major matrix M [r, c] (leading dimension c) is the
// same memory as the column-major matrix Mᵀ [c, r] with leading dimension c. So every product below is
// written for the transposes, using (A·B)ᵀ = Bᵀ·Aᵀ, and each operand's cuBLAS op is N when the
// column-major view of its buffer is already the matrix the product needs, T when it is its transpose:
//   x  [B, I] row-major  is  xᵀ  [I, B] column-major, ld I
//   w  [O, I] row-major  is  wᵀ  [I, O] column-major, ld I
//   dy [B, O] row-major  is  dyᵀ [O, B] column-major, ld O
// forward   y = x·wᵀ       ⇔  yᵀ  [O, B] = w · xᵀ    = op_T(wᵀ view) · op_N(xᵀ view),   m=O, n=B, k=I
// backward  dx = dy·w      ⇔  dxᵀ [I, B] = wᵀ · dyᵀ  = op_N(wᵀ view) · op_N(dyᵀ view),  m=I, n=B, k=O
//           dw = dyᵀ·x     ⇔  dwᵀ [I, O] = xᵀ · dy   = op_N(xᵀ view) · op_T(dyᵀ view),  m=I, n=O, k=B
// and each result's column-major [m, n] with ld m is exactly the row-major y [B, O], dx [B, I], dw [O, I].
// The backward GEMMs use beta = 1, so they accumulate into dx and dw as every backward kernel does.
#include <cstdint>

#include "kernels/cuda/device.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/vendor/handles.h"

namespace raisin::cuda {

namespace {
// The features as channels of a 1x1 image: what the per-channel bias kernels expect.
kernels::ImageShape bias_shape(const kernels::LinearShape& s) { return {s.batch, s.out_features, 1, 1}; }
}  // namespace

// x [B, I], w [O, I], b [O] (or null) → y [B, O]
void linear_forward(const kernels::LinearShape& s, const float* x, const float* w, const float* b, float* y) {
  const int B = s.batch, I = s.in_features, O = s.out_features;
  if (B == 0 || O == 0) return;
  if (I == 0) {  // an empty sum: y = b, or 0 (cuBLAS rejects a zero leading dimension)
    RAISIN_CUDA_CHECK(cudaMemsetAsync(y, 0, sizeof(float) * size_t(B) * O, current_stream()));
  } else {
    const float one = 1.0f, zero = 0.0f;
    // yᵀ [O, B] = w [O, I] · xᵀ [I, B]
    RAISIN_CUBLAS_CHECK(
        cublasSgemm(cublas_handle(), CUBLAS_OP_T, CUBLAS_OP_N, O, B, I, &one, w, I, x, I, &zero, y, O));
  }
  if (b != nullptr) bias_add_forward(bias_shape(s), b, y);
}

// dx [B, I] += dy · w;   dw [O, I] += dyᵀ · x;   db [O] += Σ_batch dy.   Any of dx, dw, db may be null.
void linear_backward(const kernels::LinearShape& s, const float* x, const float* w, const float* dy,
                     float* dx, float* dw, float* db) {
  const int B = s.batch, I = s.in_features, O = s.out_features;
  if (B == 0 || O == 0) return;  // nothing flows back
  const float one = 1.0f;
  if (dx != nullptr && I > 0) {
    // dxᵀ [I, B] += wᵀ [I, O] · dyᵀ [O, B]
    RAISIN_CUBLAS_CHECK(
        cublasSgemm(cublas_handle(), CUBLAS_OP_N, CUBLAS_OP_N, I, B, O, &one, w, I, dy, O, &one, dx, I));
  }
  if (dw != nullptr && I > 0) {
    // dwᵀ [I, O] += xᵀ [I, B] · dy [B, O]
    RAISIN_CUBLAS_CHECK(
        cublasSgemm(cublas_handle(), CUBLAS_OP_N, CUBLAS_OP_T, I, O, B, &one, x, I, dy, O, &one, dw, I));
  }
  if (db != nullptr) bias_add_backward(bias_shape(s), dy, db);
}

}  // namespace raisin::cuda
