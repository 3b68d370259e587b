// The learning-rate schedule as a function of training progress in epochs, usable from CPU and CUDA code
// alike: raisin::Schedule (engine/schedule.h) evaluates it on the host, the schedule_step kernel on the
// training device, so both compute the same float for the same progress (up to the device's cos/pow).
#pragma once
#include <cmath>

#include "kernels/philox.h"  // RAISIN_HOST_DEVICE

namespace raisin::kernels {

struct LrSchedule {
  enum class Kind : int { constant, step, cosine };
  Kind kind = Kind::cosine;
  float base_lr = 0.05f;
  double total_epochs = 10;  // cosine decays to 0 at this point
  double warmup_epochs = 0;  // linear ramp from 0 over the first warmup_epochs
  double step_epochs = 30;   // step: multiply by gamma every step_epochs
  float gamma = 0.1f;
};

RAISIN_HOST_DEVICE inline float scheduled_lr(const LrSchedule& s, double epoch) {
  double rate = s.base_lr;
  switch (s.kind) {
    case LrSchedule::Kind::constant: break;
    case LrSchedule::Kind::step: rate *= pow(double(s.gamma), floor(epoch / s.step_epochs)); break;
    case LrSchedule::Kind::cosine: {
      const double progress = fmin(fmax(epoch / s.total_epochs, 0.0), 1.0);
      rate *= 0.5 * (1.0 + cos(3.141592653589793 * progress));
      break;
    }
  }
  if (s.warmup_epochs > 0 && epoch < s.warmup_epochs) rate *= epoch / s.warmup_epochs;
  return float(rate);
}

}  // namespace raisin::kernels
