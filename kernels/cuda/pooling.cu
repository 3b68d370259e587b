// CUDA pooling kernels over NCHW activations: 2-D max and average pooling with stride and padding, and
// global average pooling; the twins of kernels/cpu/pooling.cpp, computing the same function.
//
// Launch shapes:
//  - 2-D forward: one thread per output element (grid-stride over batch·channels·out_h·out_w), so
//    consecutive threads write consecutive outputs.
//  - 2-D backward: one thread per INPUT element, which gathers the outputs whose windows contain it in
//    the order the CPU scatters them (row-major over the outputs). No atomics, deterministic, and every
//    dx element is read and written once, coalesced. Max pooling's dx is then bit-identical to the CPU's.
//  - global average pooling forward: one warp per (n, c) plane (8 planes per 256-thread block), lanes
//    striding through the plane in double as the CPU sums, then a tree over the warp in shared memory.
//  - global average pooling backward: one thread per input element.
#include <cstdint>

#include "kernels/cuda/compat.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/kernels.h"

namespace raisin::cuda {

namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return int(blocks < 65535 ? (blocks > 0 ? blocks : 1) : 65535);
}

// The outputs along one axis whose windows [o·stride − pad, o·stride − pad + kernel) contain input
// coordinate i: o in [first, last] (empty when first > last).
struct OutputRange {
  int first, last;
};

__device__ __forceinline__ OutputRange windows_containing(int i, int kernel, int stride, int pad, int out) {
  const int reach = i + pad - kernel + 1;  // o·stride must be ≥ reach
  const int first = reach > 0 ? (reach + stride - 1) / stride : 0;
  const int last = min((i + pad) / stride, out - 1);
  return {first, last};
}

// A flat NCHW index split into its (n, c) plane and the row and column inside it (one 64-bit division;
// the rest is 32-bit arithmetic).
struct PlanePosition {
  int64_t plane;
  int row, col;
};

__device__ __forceinline__ PlanePosition locate(int64_t index, int height, int width) {
  const int64_t plane_size = int64_t(height) * width;
  const int64_t plane = index / plane_size;
  const int at = int(index - plane * plane_size);
  const int row = at / width;
  return {plane, row, at - row * width};
}

// Padding acts as −inf; ties keep the first element in row-major window order, the first NaN wins over
// any number and then sticks, and a window wholly inside the padding gives −inf and argmax −1, all as
// the CPU does.
__global__ void maxpool2d_forward_kernel(kernels::Pool2dShape s, int out_h, int out_w, int64_t outputs,
                                         const float* x, float* y, int32_t* argmax) {
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < outputs; o += int64_t(gridDim.x) * blockDim.x) {
    const PlanePosition at = locate(o, out_h, out_w);
    const float* xp = x + at.plane * s.in_h * s.in_w;
    const int h0 = at.row * s.stride_h - s.pad_h, w0 = at.col * s.stride_w - s.pad_w;
    const int h_end = min(h0 + s.kernel_h, s.in_h), w_end = min(w0 + s.kernel_w, s.in_w);
    float best = -INFINITY;
    int32_t best_index = -1;
    for (int h = max(h0, 0); h < h_end; ++h)
      for (int w = max(w0, 0); w < w_end; ++w) {
        const float v = xp[h * s.in_w + w];
        if (best_index < 0 || v > best || (v != v && best == best)) {  // (v != v: v is NaN)
          best = v;
          best_index = h * s.in_w + w;
        }
      }
    y[o] = best;
    argmax[o] = best_index;
  }
}

// dx[i] += Σ dy[o] over the outputs o whose argmax is i, added in increasing o as the CPU adds them.
__global__ void maxpool2d_backward_kernel(kernels::Pool2dShape s, int out_h, int out_w, int64_t inputs,
                                          const int32_t* argmax, const float* dy, float* dx) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < inputs; i += int64_t(gridDim.x) * blockDim.x) {
    const PlanePosition at = locate(i, s.in_h, s.in_w);
    const int32_t self = at.row * s.in_w + at.col;
    const OutputRange rows = windows_containing(at.row, s.kernel_h, s.stride_h, s.pad_h, out_h);
    const OutputRange cols = windows_containing(at.col, s.kernel_w, s.stride_w, s.pad_w, out_w);
    const int64_t plane_begin = at.plane * out_h * out_w;
    const int32_t* ap = argmax + plane_begin;
    const float* dyp = dy + plane_begin;
    float acc = dx[i];
    for (int oh = rows.first; oh <= rows.last; ++oh)
      for (int ow = cols.first; ow <= cols.last; ++ow)
        if (ap[oh * out_w + ow] == self) acc += dyp[oh * out_w + ow];
    dx[i] = acc;
  }
}

// Average over the window with padding counted as zeros (divisor kernel_h · kernel_w), summed in
// row-major window order as the CPU does.
__global__ void avgpool2d_forward_kernel(kernels::Pool2dShape s, int out_h, int out_w, int64_t outputs,
                                         float inv_count, const float* x, float* y) {
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < outputs; o += int64_t(gridDim.x) * blockDim.x) {
    const PlanePosition at = locate(o, out_h, out_w);
    const float* xp = x + at.plane * s.in_h * s.in_w;
    const int h0 = at.row * s.stride_h - s.pad_h, w0 = at.col * s.stride_w - s.pad_w;
    const int h_end = min(h0 + s.kernel_h, s.in_h), w_end = min(w0 + s.kernel_w, s.in_w);
    float sum = 0.0f;
    for (int h = max(h0, 0); h < h_end; ++h)
      for (int w = max(w0, 0); w < w_end; ++w) sum += xp[h * s.in_w + w];
    y[o] = sum * inv_count;
  }
}

// dx[i] += Σ dy[o] / (kernel_h · kernel_w) over the windows containing i, in increasing o.
__global__ void avgpool2d_backward_kernel(kernels::Pool2dShape s, int out_h, int out_w, int64_t inputs,
                                          float inv_count, const float* dy, float* dx) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < inputs; i += int64_t(gridDim.x) * blockDim.x) {
    const PlanePosition at = locate(i, s.in_h, s.in_w);
    const OutputRange rows = windows_containing(at.row, s.kernel_h, s.stride_h, s.pad_h, out_h);
    const OutputRange cols = windows_containing(at.col, s.kernel_w, s.stride_w, s.pad_w, out_w);
    const float* dyp = dy + at.plane * out_h * out_w;
    float acc = dx[i];
    for (int oh = rows.first; oh <= rows.last; ++oh)
      for (int ow = cols.first; ow <= cols.last; ++ow) acc += dyp[oh * out_w + ow] * inv_count;
    dx[i] = acc;
  }
}

constexpr int kWarpsPerBlock = kThreads / 32;

// y[p] = mean of plane p: each lane sums its strided share in double, the warp adds the 32 partials.
__global__ void global_avgpool_forward_kernel(int64_t planes, int64_t spatial, const float* x, float* y) {
  __shared__ double partial[kThreads];
  const int lane = int(threadIdx.x) % 32;
  const int64_t p = blockIdx.x * int64_t(kWarpsPerBlock) + threadIdx.x / 32;
  double sum = 0.0;
  if (p < planes) {
    const float* xp = x + p * spatial;
    for (int64_t i = lane; i < spatial; i += 32) sum += xp[i];
  }
  partial[threadIdx.x] = sum;
  __syncwarp(0xffffffffu);
  for (int offset = 16; offset > 0; offset /= 2) {
    if (lane < offset) partial[threadIdx.x] += partial[threadIdx.x + offset];
    __syncwarp(0xffffffffu);
  }
  if (lane == 0 && p < planes) y[p] = float(partial[threadIdx.x] / double(spatial));
}

// dx[p, :] += dy[p] / spatial
__global__ void global_avgpool_backward_kernel(int64_t total, int64_t spatial, const float* dy, float* dx) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    dx[i] += dy[i / spatial] / float(spatial);
}

// The element counts of a 2-D pooling; `outputs` is 0 when no window fits (the CPU loops then do nothing).
struct PoolSizes {
  int out_h, out_w;
  int64_t inputs, outputs;
};

PoolSizes pool_sizes(const kernels::Pool2dShape& s) {
  const int out_h = s.out_h(), out_w = s.out_w();
  const int64_t planes = int64_t(s.batch) * s.channels;
  const int64_t outputs = out_h > 0 && out_w > 0 ? planes * out_h * out_w : 0;
  return {out_h, out_w, planes * s.in_h * s.in_w, outputs};
}

}  // namespace

void maxpool2d_forward(const kernels::Pool2dShape& s, const float* x, float* y, int32_t* argmax) {
  const PoolSizes n = pool_sizes(s);
  if (n.outputs == 0) return;
  RAISIN_LAUNCH(maxpool2d_forward_kernel, blocks_for(n.outputs), kThreads, 0, current_stream())(
      s, n.out_h, n.out_w, n.outputs, x, y, argmax);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

void maxpool2d_backward(const kernels::Pool2dShape& s, const int32_t* argmax, const float* dy, float* dx) {
  const PoolSizes n = pool_sizes(s);
  if (n.outputs == 0 || !dx) return;
  RAISIN_LAUNCH(maxpool2d_backward_kernel, blocks_for(n.inputs), kThreads, 0, current_stream())(
      s, n.out_h, n.out_w, n.inputs, argmax, dy, dx);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

void avgpool2d_forward(const kernels::Pool2dShape& s, const float* x, float* y) {
  const PoolSizes n = pool_sizes(s);
  if (n.outputs == 0) return;
  const float inv_count = 1.0f / float(s.kernel_h * s.kernel_w);
  RAISIN_LAUNCH(avgpool2d_forward_kernel, blocks_for(n.outputs), kThreads, 0, current_stream())(
      s, n.out_h, n.out_w, n.outputs, inv_count, x, y);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

void avgpool2d_backward(const kernels::Pool2dShape& s, const float* dy, float* dx) {
  const PoolSizes n = pool_sizes(s);
  if (n.outputs == 0 || !dx) return;
  const float inv_count = 1.0f / float(s.kernel_h * s.kernel_w);
  RAISIN_LAUNCH(avgpool2d_backward_kernel, blocks_for(n.inputs), kThreads, 0, current_stream())(
      s, n.out_h, n.out_w, n.inputs, inv_count, dy, dx);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

void global_avgpool_forward(const kernels::ImageShape& s, const float* x, float* y) {
  const int64_t planes = int64_t(s.batch) * s.channels;
  if (planes <= 0) return;
  const int64_t blocks = (planes + kWarpsPerBlock - 1) / kWarpsPerBlock;
  RAISIN_LAUNCH(global_avgpool_forward_kernel, int(blocks), kThreads, 0, current_stream())(planes, s.spatial(), x, y);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

void global_avgpool_backward(const kernels::ImageShape& s, const float* dy, float* dx) {
  const int64_t total = s.numel();
  if (total <= 0 || !dx) return;
  RAISIN_LAUNCH(global_avgpool_backward_kernel, blocks_for(total), kThreads, 0, current_stream())(
      total, s.spatial(), dy, dx);
  RAISIN_CUDA_CHECK(cudaGetLastError());
}

}  // namespace raisin::cuda
