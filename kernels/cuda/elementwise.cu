// Elementwise CUDA kernels: fill, axpy, relu forward/backward, add. Grid-stride loops, one launch each.
#include "kernels/cuda/compat.h"
#include "kernels/cuda/kernels.h"

namespace raisin::cuda {

namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return int(blocks < 65535 ? (blocks > 0 ? blocks : 1) : 65535);
}

__global__ void fill_kernel(int64_t n, float value, float* y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = value;
}

__global__ void axpy_kernel(int64_t n, float alpha, const float* x, float* y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] += alpha * x[i];
}

__global__ void relu_forward_kernel(int64_t n, const float* x, float* y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

__global__ void relu_backward_kernel(int64_t n, const float* y, const float* dy, float* dx) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    if (y[i] > 0.0f) dx[i] += dy[i];
}

__global__ void add_forward_kernel(int64_t n, const float* a, const float* b, float* y) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = a[i] + b[i];
}

}  // namespace

void fill(int64_t n, float value, float* y) {
  if (n <= 0) return;
  RAISIN_LAUNCH(fill_kernel, blocks_for(n), kThreads, 0, current_stream())(n, value, y);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

void axpy(int64_t n, float alpha, const float* x, float* y) {
  if (n <= 0) return;
  RAISIN_LAUNCH(axpy_kernel, blocks_for(n), kThreads, 0, current_stream())(n, alpha, x, y);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

void relu_forward(int64_t n, const float* x, float* y) {
  if (n <= 0) return;
  RAISIN_LAUNCH(relu_forward_kernel, blocks_for(n), kThreads, 0, current_stream())(n, x, y);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

void relu_backward(int64_t n, const float* y, const float* dy, float* dx) {
  if (n <= 0) return;
  RAISIN_LAUNCH(relu_backward_kernel, blocks_for(n), kThreads, 0, current_stream())(n, y, dy, dx);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

void add_forward(int64_t n, const float* a, const float* b, float* y) {
  if (n <= 0) return;
  RAISIN_LAUNCH(add_forward_kernel, blocks_for(n), kThreads, 0, current_stream())(n, a, b, y);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

}  // namespace raisin::cuda
