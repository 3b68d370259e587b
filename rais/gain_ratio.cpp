// The gain-ratio estimator (RAIS.md §2).
#include "rais/gain_ratio.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"

namespace raisin::rais {

GainRatio::GainRatio(GainRatioOptions options) : options_(options) {
  if (!(options.alpha > 0 && options.alpha <= 1))
    throw error("gain ratio: alpha ", options.alpha, " must be in (0, 1]");
  if (!(options.min > 0 && options.min <= 1 && options.max >= 1))
    throw error("gain ratio: clamp [", options.min, ", ", options.max, "] must contain 1 and be positive");
}

double GainRatio::update(int batch, const float* proxy_norms, const float* weights, double bias_gradient_sq_norm) {
  double u1 = 0, r1 = 0;
  for (int i = 0; i < batch; ++i) {
    const double v = proxy_norms[i], w = weights ? weights[i] : 1.0;
    u1 += v * v * w;
    r1 += (v * w) * (v * w);
  }
  u1 /= batch;
  r1 /= batch;
  const double a = options_.alpha;
  m_u1_ = a * u1 + (1 - a) * m_u1_;
  m_r1_ = a * r1 + (1 - a) * m_r1_;
  m_r_ = a * bias_gradient_sq_norm + (1 - a) * m_r_;
  decay_ *= 1 - a;
  ++steps_;
  const double correction = 1 - decay_;  // bias correction of all three EMAs; cancels in the ratio
  const double m_u1 = m_u1_ / correction, m_r1 = m_r1_ / correction, m_r = m_r_ / correction;
  double r = m_r > 0 ? 1 + (m_u1 - m_r1) / (batch * m_r) : 1;
  if (!std::isfinite(r)) r = 1;
  if (r < options_.min || r > options_.max) ++clamped_;
  value_ = std::clamp(r, options_.min, options_.max);
  return value_;
}

void GainRatio::restore(const State& s) {
  m_u1_ = s.m_u1, m_r1_ = s.m_r1, m_r_ = s.m_r, decay_ = s.decay, value_ = s.value;
  clamped_ = s.clamped, steps_ = s.steps;
}

}  // namespace raisin::rais
