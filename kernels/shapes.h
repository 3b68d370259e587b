// Shape structs shared by the CPU and CUDA kernels: plain sizes, no engine types.
#pragma once
#include <cstdint>

namespace raisin::kernels {

// y[batch, out] = x[batch, in] · w[out, in]ᵀ + b[out]
struct LinearShape {
  int batch;
  int in_features;
  int out_features;
};

// NCHW input [batch, in_channels, in_h, in_w], weight [out_channels, in_channels, kernel_h, kernel_w].
struct Conv2dShape {
  int batch;
  int in_channels, in_h, in_w;
  int out_channels;
  int kernel_h, kernel_w;
  int stride_h = 1, stride_w = 1;
  int pad_h = 0, pad_w = 0;
  int out_h() const { return (in_h + 2 * pad_h - kernel_h) / stride_h + 1; }
  int out_w() const { return (in_w + 2 * pad_w - kernel_w) / stride_w + 1; }
};

// Max and average pooling over NCHW windows; padding counts as -inf (max) or 0 (average, PyTorch's
// count_include_pad=True).
struct Pool2dShape {
  int batch, channels, in_h, in_w;
  int kernel_h, kernel_w;
  int stride_h, stride_w;
  int pad_h = 0, pad_w = 0;
  int out_h() const { return (in_h + 2 * pad_h - kernel_h) / stride_h + 1; }
  int out_w() const { return (in_w + 2 * pad_w - kernel_w) / stride_w + 1; }
};

// An NCHW activation; spatial() = height · width.
struct ImageShape {
  int batch, channels, height, width;
  int64_t spatial() const { return int64_t(height) * width; }
  int64_t numel() const { return int64_t(batch) * channels * spatial(); }
};

// Fused softmax-cross-entropy over logits [batch, classes].
struct LossShape {
  int batch;
  int classes;
};

// Assembling a batch from a uint8 dataset [count, channels, height, width].
struct GatherShape {
  int batch;
  int channels, height, width;
  int pad = 0;       // random crop from the image zero-padded by this many pixels per side (0: none)
  bool flip = false; // random horizontal flip with probability 1/2
};

// One tensor of a multi-tensor SGD update: n floats of param, grad and (unless momentum is 0)
// momentum_buffer on the backend's device.
struct SgdTensor {
  float* param;
  const float* grad;
  float* momentum_buffer;
  int64_t n;
};

// One buffer that find_nonfinite scans.
struct CheckTensor {
  const float* data;
  int64_t n;
};

// The gain-ratio estimator's settings (rais::GainRatioOptions): EMA weight of the newest step and the
// clamp of r̂.
struct GainRatioHyper {
  double alpha;
  double min, max;
};

// The estimator's state in device memory, kGainRatioStateSize doubles, in this order (rais::GainRatio::State;
// the two counts are exact integers in double).
enum GainRatioSlot : int { kGainM_U1, kGainM_R1, kGainM_R, kGainDecay, kGainValue, kGainClamped, kGainSteps };
constexpr int kGainRatioStateSize = 7;

// The training step's scalars in device memory (schedule_step, step_metrics): progress in epochs
// (-equivalent) after the last step, and the learning-rate multiplier that step applied.
enum StepScalarSlot : int { kStepProgress, kStepMultiplier };
constexpr int kStepScalarCount = 2;

// One row of a step's metrics (step_metrics; the fault slots find_nonfinite's), doubles in this order.
enum StepMetric : int {
  kMetricLoss,
  kMetricAccuracy,
  kMetricLr,
  kMetricMultiplier,
  kMetricProgress,
  kMetricFaultBuffer,  // index of the buffer that held the step's first non-finite value, or -1
  kMetricFaultValue,   // that value (0 when none)
};
constexpr int kStepMetricCount = 7;

}  // namespace raisin::kernels
