// Learning-rate schedules as functions of training progress measured in epochs (a real number; RAIS
// feeds epochs-equivalent), never of the step count.
#pragma once
#include <string>

#include "kernels/schedule.h"

namespace raisin {

struct Schedule {
  enum class Kind { constant, step, cosine };
  Kind kind = Kind::cosine;
  float base_lr = 0.05f;
  double total_epochs = 10;   // cosine decays to 0 at this point
  double warmup_epochs = 0;   // linear ramp from 0 over the first warmup_epochs
  double step_epochs = 30;    // step: multiply by gamma every step_epochs
  float gamma = 0.1f;

  float lr(double epoch) const { return kernels::scheduled_lr(kernel_form(), epoch); }
  // The same schedule as the plain struct the schedule_step kernel evaluates on the device.
  kernels::LrSchedule kernel_form() const;
  static Kind parse_kind(const std::string& name);  // "constant", "step", "cosine"; throws otherwise
};

}  // namespace raisin
