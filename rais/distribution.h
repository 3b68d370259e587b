// The robust sampling distribution of RAIS (../shared/RAIS.md §3): from per-example nonnegative
// features s_i ∈ R^d and parameters c, d ≥ 0, the centre ĉ_i = ⟨c, s_i⟩ and width d̂_i = ⟨d, s_i⟩ of
// the uncertainty set U = { v ≥ 0 : (1/n) Σ (v_i − ĉ_i)²/d̂_i ≤ 1 }, and the p minimising the worst
// case of Σ v_i²/p_i over U in closed form:
//
//   k = sqrt(n / Σ d̂),  p_i ∝ ĉ_i + k·d̂_i,  worst case = (Σ ĉ + sqrt(n·Σ d̂))².
//
// Everything is computed and returned in double: p feeds the alias table (double) and the weights
// ω_i = 1/(n·p_i), whose relative error should not depend on n. Features are float (they come from
// float proxy norms) and are accumulated in double. The O(n) passes run on OpenMP threads in fixed
// blocks (rais/blocks.h): the results do not depend on the number of threads.
#pragma once
#include <cstdint>
#include <vector>

namespace raisin::rais {

// Which formula produced p.
enum class DistributionCase {
  kRobust,      // Σd̂ > 0: p ∝ ĉ + k·d̂
  kCentreOnly,  // Σd̂ = 0, Σĉ > 0: p ∝ ĉ
  kUniform,     // Σ(ĉ + k·d̂) = 0: uniform
};

struct RobustDistribution {
  std::vector<double> p;      // n probabilities summing to 1, after mixing with the uniform share
  std::vector<double> c_hat;  // ĉ_i = ⟨c, s_i⟩
  std::vector<double> d_hat;  // d̂_i = ⟨d, s_i⟩
  double k = 0.0;             // sqrt(n/Σd̂); 0 when Σd̂ = 0
  // (Σĉ + sqrt(n·Σd̂))²: the worst case of the unmixed closed-form p (mixing only raises it; use
  // worst_case_of(p, ...) for the mixed p).
  double worst_case = 0.0;
  double uniform_share = 0.0;  // u of p ← (1 − u)·p + u/n
  DistributionCase kind = DistributionCase::kUniform;
};

// ĉ_i = ⟨c, s_i⟩ and d̂_i = ⟨d, s_i⟩ for row-major features (n × dim). c_hat, d_hat: n doubles.
void centres_and_widths(const float* features, int64_t n, int dim, const double* c, const double* d, double* c_hat,
                        double* d_hat);

// The closed form from ĉ and d̂ (all ≥ 0, finite; throws std::invalid_argument otherwise): writes the
// n probabilities to p and fills out's k, worst_case, uniform_share and kind (out.p/c_hat/d_hat are
// left alone). uniform_share ∈ [0, 1].
void robust_p(const double* c_hat, const double* d_hat, int64_t n, double uniform_share, double* p,
              RobustDistribution& out);

// Features → ĉ, d̂ → p, reusing out's buffers (no allocation once they have grown to n).
// c, d: dim doubles ≥ 0. Throws std::invalid_argument on negative or non-finite inputs.
void robust_distribution(const float* features, int64_t n, int dim, const double* c, const double* d,
                         double uniform_share, RobustDistribution& out);
RobustDistribution robust_distribution(const float* features, int64_t n, int dim, const double* c,
                                       const double* d, double uniform_share = 0.0);

// (Σĉ + sqrt(n·Σd̂))².
double closed_form_worst_case(const double* c_hat, const double* d_hat, int64_t n);

// The worst case max_{v ∈ U} Σ v_i²/p_i of ANY p ≥ 0, by its dual: the minimum over λ > max_i d̂_i/p_i
// of n·λ + Σ λ·ĉ_i²/(λ·p_i − d̂_i), a 1-D convex problem solved by bisection on the (increasing)
// derivative in log-space, about 1e-15 relative in λ. +infinity when some p_i = 0 has ĉ_i > 0 or
// d̂_i > 0; examples with p_i = ĉ_i = d̂_i = 0 contribute nothing. O(n) per iteration, ≤ ~250 iterations.
double worst_case_of(const double* p, const double* c_hat, const double* d_hat, int64_t n);

// ---- Features (RAIS.md §3 [choice]) ----
constexpr int kFeatureCount = 4;

// ⌈n/B⌉.
int64_t steps_per_epoch(int64_t n, int64_t batch);

// Row-major n × 4 features from per-example state at step `step`:
//   [0] 1;
//   [1] last_norm_i if 0 ≤ step − last_seen_i < steps_per_epoch, else 0;
//   [2] last_norm_i if step − last_seen_i ≥ steps_per_epoch, else 0;
//   [3] 1 if last_seen_i < 0 (never seen), else 0.
// last_seen_i is the step at which example i was last drawn (−1 = never). A last_seen in the future
// (step − last_seen < 0) counts as recent. Negative or non-finite last_norm is clamped to 0.
void compute_features(const float* last_norm, const int64_t* last_seen, int64_t n, int64_t step,
                      int64_t steps_per_epoch, float* features);

// sums[k] = Σ_i s_ik over the features compute_features would write (kFeatureCount values), in one
// pass that writes no per-example output: the a of problem PT.
void feature_sums(const float* last_norm, const int64_t* last_seen, int64_t n, int64_t step,
                  int64_t steps_per_epoch, double* sums);

}  // namespace raisin::rais
