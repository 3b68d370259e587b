// The gain ratio r̂ of RAIS.md §2: how much less variance the importance-sampled gradient has than the
// uniform one, estimated from three bias-corrected exponential moving averages of per-step moments,
// all of the last layer's bias gradient (for which the proxy norm ṽ is exact):
//   U1_t = (1/B) Σ ṽ_i² ω_i,   R1_t = (1/B) Σ (ṽ_i ω_i)²,   R_t = ‖ĝ‖², ĝ = (1/B) Σ ω_i (softmax − onehot)
//   r̂ = 1 + (m_U1 − m_R1) / (B · m_R), clamped to [min, max].
// With uniform sampling (ω ≡ 1) U1_t and R1_t are the same numbers, so r̂ = 1 exactly.
#pragma once
#include <cstdint>

namespace raisin::rais {

struct GainRatioOptions {
  double alpha = 0.01;  // EMA weight of the newest step
  double min = 0.25, max = 16;
};

class GainRatio {
 public:
  explicit GainRatio(GainRatioOptions options = {});
  // Feeds one step: B proxy norms ṽ and weights ω (null: ω ≡ 1), and ‖ĝ‖². Returns the new r̂.
  double update(int batch, const float* proxy_norms, const float* weights, double bias_gradient_sq_norm);
  double value() const { return value_; }
  int64_t clamped() const { return clamped_; }  // steps whose estimate hit the clamp
  int64_t steps() const { return steps_; }

  // Everything update() depends on, for checkpoints.
  struct State {
    double m_u1 = 0, m_r1 = 0, m_r = 0, decay = 1, value = 1;
    int64_t clamped = 0, steps = 0;
  };
  State state() const { return {m_u1_, m_r1_, m_r_, decay_, value_, clamped_, steps_}; }
  void restore(const State& s);

 private:
  GainRatioOptions options_;
  double m_u1_ = 0, m_r1_ = 0, m_r_ = 0, decay_ = 1;  // decay_ = (1 − α)^t for bias correction
  double value_ = 1;
  int64_t clamped_ = 0, steps_ = 0;
};

}  // namespace raisin::rais
