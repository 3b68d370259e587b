// CUDA 2-D convolution through cuDNN (cross-correlation, as PyTorch's Conv2d): NCHW activations, weight
// [Cout, Cin, kh, kw], stride, zero padding, optional bias; no dilation, no groups. The twin of
// kernels/cpu/conv2d.cpp, on the current stream.
//
// Each shape gets a plan, made once and cached: the descriptors (x, y, w: NCHW fp32) and, for each of the
// three passes (forward, backward data, backward filter), an algorithm and its workspace. Algorithms come
// from cuDNN's heuristics (cudnnGet*_v7: no trial runs, no allocations, the same choice every time),
// best first; the one taken is the first that fits kMaxWorkspaceBytes and uses the math of the TF32 mode
// (handles.h), a deterministic one where there is one, so that runs repeat bit for bit. Each pass has its own convolution descriptor set to its algorithm's math type,
// since cuDNN picks kernels by the pair. conv2d_workspace_floats is the largest of the three workspaces.
// Backward blends with beta = 1, so dx and dw accumulate as every backward kernel does; the bias is
// added and reduced by the per-channel bias kernels (kernels/cuda/bias.cu).
#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "kernels/cuda/device.h"
#include "kernels/cuda/kernels.h"
#include "kernels/cuda/vendor/handles.h"

namespace raisin::cuda {

namespace {

using kernels::Conv2dShape;

// The most workspace one pass may take: the implicit-GEMM and Winograd algorithms that suit these nets
// need a few MiB at most; this keeps out FFT variants that ask for gigabytes at large batches.
constexpr size_t kMaxWorkspaceBytes = size_t(256) << 20;

// ---- descriptors, destroyed with their plan ----

struct TensorDescriptor {
  cudnnTensorDescriptor_t desc = nullptr;
  TensorDescriptor(int n, int c, int h, int w) {
    RAISIN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&desc));
    RAISIN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w));
  }
  ~TensorDescriptor() { cudnnDestroyTensorDescriptor(desc); }
  TensorDescriptor(const TensorDescriptor&) = delete;
  TensorDescriptor& operator=(const TensorDescriptor&) = delete;
};

struct FilterDescriptor {
  cudnnFilterDescriptor_t desc = nullptr;
  explicit FilterDescriptor(const Conv2dShape& s) {
    RAISIN_CUDNN_CHECK(cudnnCreateFilterDescriptor(&desc));
    RAISIN_CUDNN_CHECK(cudnnSetFilter4dDescriptor(desc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s.out_channels,
                                                  s.in_channels, s.kernel_h, s.kernel_w));
  }
  ~FilterDescriptor() { cudnnDestroyFilterDescriptor(desc); }
  FilterDescriptor(const FilterDescriptor&) = delete;
  FilterDescriptor& operator=(const FilterDescriptor&) = delete;
};

struct ConvolutionDescriptor {
  cudnnConvolutionDescriptor_t desc = nullptr;
  ConvolutionDescriptor(const Conv2dShape& s, cudnnMathType_t math) {
    RAISIN_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&desc));
    RAISIN_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(desc, s.pad_h, s.pad_w, s.stride_h, s.stride_w, 1, 1,
                                                       CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    set_math(math);
  }
  void set_math(cudnnMathType_t math) { RAISIN_CUDNN_CHECK(cudnnSetConvolutionMathType(desc, math)); }
  ~ConvolutionDescriptor() { cudnnDestroyConvolutionDescriptor(desc); }
  ConvolutionDescriptor(const ConvolutionDescriptor&) = delete;
  ConvolutionDescriptor& operator=(const ConvolutionDescriptor&) = delete;
};

// ---- algorithm choice ----

std::string describe(const Conv2dShape& s) {
  return "conv2d [" + std::to_string(s.batch) + ", " + std::to_string(s.in_channels) + ", " +
         std::to_string(s.in_h) + ", " + std::to_string(s.in_w) + "] * [" + std::to_string(s.out_channels) +
         ", " + std::to_string(s.in_channels) + ", " + std::to_string(s.kernel_h) + ", " +
         std::to_string(s.kernel_w) + "] stride " + std::to_string(s.stride_h) + "x" + std::to_string(s.stride_w) +
         " pad " + std::to_string(s.pad_h) + "x" + std::to_string(s.pad_w);
}

// The math a plan asks cuDNN for: FMA (plain fp32) unless TF32 is allowed; then the default, which lets
// fp32 convolutions use TF32 tensor cores on Ampere and later (what PyTorch asks for with allow_tf32).
cudnnMathType_t requested_math(bool tf32) { return tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH; }

// Whether an algorithm computes in the math the TF32 mode allows: plain FMA for fp32; with TF32 anything
// but a conversion of the inputs to fp16.
bool math_allowed(cudnnMathType_t math, bool tf32) {
  return tf32 ? math != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION : math == CUDNN_FMA_MATH;
}

// The first usable entry of cuDNN's list (sorted best first), deterministic ones preferred.
template <class Perf>
Perf pick(const Perf* perf, int count, bool tf32, const char* pass, const Conv2dShape& s) {
  for (bool deterministic_only : {true, false}) {
    for (int i = 0; i < count; i++) {
      const Perf& p = perf[i];
      if (p.status != CUDNN_STATUS_SUCCESS || p.memory > kMaxWorkspaceBytes || !math_allowed(p.mathType, tf32))
        continue;
      if (deterministic_only && p.determinism != CUDNN_DETERMINISTIC) continue;
      return p;
    }
  }
  std::string offered;
  for (int i = 0; i < count; i++)
    offered += " {algo " + std::to_string(int(perf[i].algo)) + ", status " + cudnnGetErrorString(perf[i].status) +
               ", " + std::to_string(perf[i].memory) + " bytes, math " + std::to_string(int(perf[i].mathType)) +
               "}";
  throw std::runtime_error(std::string("cuDNN offers no ") + pass + " algorithm for " + describe(s) +
                           (tf32 ? " with TF32" : " in plain fp32 (FMA math)") + " within " +
                           std::to_string(kMaxWorkspaceBytes >> 20) + " MiB of workspace; it offered:" + offered);
}

struct Plan {
  TensorDescriptor x, y;
  FilterDescriptor w;
  ConvolutionDescriptor forward_conv, data_conv, filter_conv;
  cudnnConvolutionFwdAlgo_t forward_algo{};
  cudnnConvolutionBwdDataAlgo_t data_algo{};
  cudnnConvolutionBwdFilterAlgo_t filter_algo{};
  size_t forward_bytes = 0, data_bytes = 0, filter_bytes = 0;

  Plan(const Conv2dShape& s, bool tf32)
      : x(s.batch, s.in_channels, s.in_h, s.in_w),
        y(s.batch, s.out_channels, s.out_h(), s.out_w()),
        w(s),
        forward_conv(s, requested_math(tf32)),
        data_conv(s, requested_math(tf32)),
        filter_conv(s, requested_math(tf32)) {
    cudnnHandle_t handle = cudnn_handle();
    int n = 0, c = 0, h = 0, wd = 0;  // cuDNN's own output size must be the shape's
    RAISIN_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(forward_conv.desc, x.desc, w.desc, &n, &c, &h, &wd));
    if (n != s.batch || c != s.out_channels || h != s.out_h() || wd != s.out_w())
      throw std::runtime_error("cuDNN computes a " + std::to_string(h) + "x" + std::to_string(wd) + " output for " +
                               describe(s) + ", the shape says " + std::to_string(s.out_h()) + "x" +
                               std::to_string(s.out_w()));
    int returned = 0;

    cudnnConvolutionFwdAlgoPerf_t forward[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    RAISIN_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle, x.desc, w.desc, forward_conv.desc, y.desc,
                                                              CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned, forward));
    const auto f = pick(forward, returned, tf32, "forward", s);
    forward_algo = f.algo;
    forward_conv.set_math(f.mathType);
    RAISIN_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(handle, x.desc, w.desc, forward_conv.desc, y.desc,
                                                               forward_algo, &forward_bytes));

    cudnnConvolutionBwdDataAlgoPerf_t data[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    RAISIN_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(
        handle, w.desc, y.desc, data_conv.desc, x.desc, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &returned, data));
    const auto d = pick(data, returned, tf32, "backward-data", s);
    data_algo = d.algo;
    data_conv.set_math(d.mathType);
    RAISIN_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(handle, w.desc, y.desc, data_conv.desc, x.desc,
                                                                    data_algo, &data_bytes));

    cudnnConvolutionBwdFilterAlgoPerf_t filter[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    RAISIN_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
        handle, x.desc, y.desc, filter_conv.desc, w.desc, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &returned, filter));
    const auto g = pick(filter, returned, tf32, "backward-filter", s);
    filter_algo = g.algo;
    filter_conv.set_math(g.mathType);
    RAISIN_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(handle, x.desc, y.desc, filter_conv.desc,
                                                                      w.desc, filter_algo, &filter_bytes));
  }

  size_t max_workspace_bytes() const { return std::max({forward_bytes, data_bytes, filter_bytes}); }
};

// Plans by device, TF32 mode and shape. A plan is never removed, so the reference stays valid.
const Plan& plan_for(const Conv2dShape& s) {
  static std::mutex mutex;
  static std::map<std::array<int, 13>, std::unique_ptr<Plan>> plans;
  int device = 0;
  RAISIN_CUDA_CHECK(cudaGetDevice(&device));
  const bool tf32 = allow_tf32();
  const std::array<int, 13> key{device,     int(tf32),  s.batch,    s.in_channels, s.in_h,   s.in_w,  s.out_channels,
                                s.kernel_h, s.kernel_w, s.stride_h, s.stride_w,    s.pad_h, s.pad_w};
  std::lock_guard<std::mutex> lock(mutex);
  std::unique_ptr<Plan>& plan = plans[key];
  if (plan == nullptr) plan = std::make_unique<Plan>(s, tf32);
  return *plan;
}

// Nothing to compute: an empty batch or output.
bool empty_output(const Conv2dShape& s) {
  return s.batch <= 0 || s.out_channels <= 0 || s.out_h() <= 0 || s.out_w() <= 0;
}
// Every output is an empty sum (no input channels or an empty kernel): y = b, and only db flows back.
bool empty_sum(const Conv2dShape& s) { return s.in_channels <= 0 || s.kernel_h <= 0 || s.kernel_w <= 0; }

kernels::ImageShape output_shape(const Conv2dShape& s) { return {s.batch, s.out_channels, s.out_h(), s.out_w()}; }

}  // namespace

int64_t conv2d_workspace_floats(const Conv2dShape& s) {
  if (empty_output(s) || empty_sum(s)) return 0;
  return int64_t((plan_for(s).max_workspace_bytes() + sizeof(float) - 1) / sizeof(float));
}

void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y,
                    float* workspace) {
  if (empty_output(s)) return;
  if (empty_sum(s)) {
    RAISIN_CUDA_CHECK(cudaMemsetAsync(y, 0, sizeof(float) * size_t(output_shape(s).numel()), current_stream()));
  } else {
    const Plan& p = plan_for(s);
    const float one = 1.0f, zero = 0.0f;
    RAISIN_CUDNN_CHECK(cudnnConvolutionForward(cudnn_handle(), &one, p.x.desc, x, p.w.desc, w, p.forward_conv.desc,
                                               p.forward_algo, workspace, p.forward_bytes, &zero, p.y.desc, y));
  }
  if (b != nullptr) bias_add_forward(output_shape(s), b, y);
}

void conv2d_backward(const Conv2dShape& s, const float* x, const float* w, const float* dy, float* dx, float* dw,
                     float* db, float* workspace) {
  if (empty_output(s)) return;  // nothing flows back
  if (!empty_sum(s) && (dx != nullptr || dw != nullptr)) {
    const Plan& p = plan_for(s);
    const float one = 1.0f;
    if (dx != nullptr)
      RAISIN_CUDNN_CHECK(cudnnConvolutionBackwardData(cudnn_handle(), &one, p.w.desc, w, p.y.desc, dy,
                                                      p.data_conv.desc, p.data_algo, workspace, p.data_bytes, &one,
                                                      p.x.desc, dx));
    if (dw != nullptr)
      RAISIN_CUDNN_CHECK(cudnnConvolutionBackwardFilter(cudnn_handle(), &one, p.x.desc, x, p.y.desc, dy,
                                                        p.filter_conv.desc, p.filter_algo, workspace, p.filter_bytes,
                                                        &one, p.w.desc, dw));
  }
  if (db != nullptr) bias_add_backward(output_shape(s), dy, db);
}

}  // namespace raisin::cuda
