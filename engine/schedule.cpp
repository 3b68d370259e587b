// Learning-rate schedules.
#include "engine/schedule.h"

#include "engine/error.h"

namespace raisin {

kernels::LrSchedule Schedule::kernel_form() const {
  kernels::LrSchedule s;
  s.kind = kind == Kind::constant ? kernels::LrSchedule::Kind::constant
           : kind == Kind::step   ? kernels::LrSchedule::Kind::step
                                  : kernels::LrSchedule::Kind::cosine;
  s.base_lr = base_lr;
  s.total_epochs = total_epochs;
  s.warmup_epochs = warmup_epochs;
  s.step_epochs = step_epochs;
  s.gamma = gamma;
  return s;
}

Schedule::Kind Schedule::parse_kind(const std::string& name) {
  if (name == "constant") return Kind::constant;
  if (name == "step") return Kind::step;
  if (name == "cosine") return Kind::cosine;
  throw error("unknown learning-rate schedule '", name, "': use constant, step or cosine");
}

}  // namespace raisin
