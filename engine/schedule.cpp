// Learning-rate schedules.
#include "engine/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "engine/error.h"

namespace raisin {

float Schedule::lr(double epoch) const {
  double rate = base_lr;
  switch (kind) {
    case Kind::constant: break;
    case Kind::step: rate *= std::pow(double(gamma), std::floor(epoch / step_epochs)); break;
    case Kind::cosine: {
      const double progress = std::clamp(epoch / total_epochs, 0.0, 1.0);
      rate *= 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
      break;
    }
  }
  if (warmup_epochs > 0 && epoch < warmup_epochs) rate *= epoch / warmup_epochs;
  return float(rate);
}

Schedule::Kind Schedule::parse_kind(const std::string& name) {
  if (name == "constant") return Kind::constant;
  if (name == "step") return Kind::step;
  if (name == "cosine") return Kind::cosine;
  throw error("unknown learning-rate schedule '", name, "': use constant, step or cosine");
}

}  // namespace raisin
