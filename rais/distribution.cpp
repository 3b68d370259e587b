// The closed-form robust distribution, the dual worst case of any p, and the §3 features.
#include "rais/distribution.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "rais/blocks.h"

namespace raisin::rais {

namespace {

constexpr int64_t kBlock = 8192;  // examples per block of the parallel passes (rais/blocks.h)

void require_nonnegative(const double* x, int64_t n, const char* what) {
  for (int64_t i = 0; i < n; ++i) {
    if (!(x[i] >= 0.0) || !std::isfinite(x[i])) {
      throw std::invalid_argument(std::string("robust distribution: ") + what + "[" + std::to_string(i) +
                                  "] = " + std::to_string(x[i]) + " is not a finite number >= 0");
    }
  }
}

}  // namespace

void centres_and_widths(const float* features, int64_t n, int dim, const double* c, const double* d, double* c_hat,
                        double* d_hat) {
  if (dim == kFeatureCount) {  // the engine's case: unrolled
    const double c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3], d0 = d[0], d1 = d[1], d2 = d[2], d3 = d[3];
    for_blocks(n, kBlock, [&](int64_t begin, int64_t end, int64_t) {
      for (int64_t i = begin; i < end; ++i) {
        const float* s = features + i * kFeatureCount;
        const double s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3];
        c_hat[i] = (c0 * s0 + c1 * s1) + (c2 * s2 + c3 * s3);
        d_hat[i] = (d0 * s0 + d1 * s1) + (d2 * s2 + d3 * s3);
      }
    });
    return;
  }
  for_blocks(n, kBlock, [&](int64_t begin, int64_t end, int64_t) {
    for (int64_t i = begin; i < end; ++i) {
      const float* s = features + i * dim;
      double ci = 0.0, di = 0.0;
      for (int j = 0; j < dim; ++j) {
        ci += c[j] * double(s[j]);
        di += d[j] * double(s[j]);
      }
      c_hat[i] = ci;
      d_hat[i] = di;
    }
  });
}

double closed_form_worst_case(const double* c_hat, const double* d_hat, int64_t n) {
  double sc = 0.0, sd = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    sc += c_hat[i];
    sd += d_hat[i];
  }
  const double root = sc + std::sqrt(double(n) * sd);
  return root * root;
}

void robust_p(const double* c_hat, const double* d_hat, int64_t n, double uniform_share, double* p,
              RobustDistribution& out) {
  if (n < 0) throw std::invalid_argument("robust distribution: negative example count");
  if (!(uniform_share >= 0.0 && uniform_share <= 1.0)) {
    throw std::invalid_argument("robust distribution: uniform share " + std::to_string(uniform_share) +
                                " is not in [0, 1]");
  }
  out.uniform_share = uniform_share;
  if (n == 0) {
    out.k = 0.0;
    out.worst_case = 0.0;
    out.kind = DistributionCase::kUniform;
    return;
  }
  // Per-block sums (two accumulators each) and a branch-free validity check; the offending entry is
  // looked up only on failure.
  const int64_t blocks = block_count(n, kBlock);
  std::vector<double> block_sums(static_cast<size_t>(2 * blocks));
  std::vector<char> block_valid(static_cast<size_t>(blocks));
  constexpr double kMax = std::numeric_limits<double>::max();
  for_blocks(n, kBlock, [&](int64_t begin, int64_t end, int64_t b) {
    double sc0 = 0.0, sc1 = 0.0, sd0 = 0.0, sd1 = 0.0;
    bool valid = true;
    int64_t i = begin;
    for (; i + 2 <= end; i += 2) {
      valid &= (c_hat[i] >= 0.0) & (c_hat[i] <= kMax) & (d_hat[i] >= 0.0) & (d_hat[i] <= kMax);
      valid &= (c_hat[i + 1] >= 0.0) & (c_hat[i + 1] <= kMax) & (d_hat[i + 1] >= 0.0) & (d_hat[i + 1] <= kMax);
      sc0 += c_hat[i];
      sd0 += d_hat[i];
      sc1 += c_hat[i + 1];
      sd1 += d_hat[i + 1];
    }
    for (; i < end; ++i) {
      valid &= (c_hat[i] >= 0.0) & (c_hat[i] <= kMax) & (d_hat[i] >= 0.0) & (d_hat[i] <= kMax);
      sc0 += c_hat[i];
      sd0 += d_hat[i];
    }
    block_sums[size_t(2 * b)] = sc0 + sc1;
    block_sums[size_t(2 * b + 1)] = sd0 + sd1;
    block_valid[size_t(b)] = valid;
  });
  double sc = 0.0, sd = 0.0;
  bool valid = true;
  for (int64_t b = 0; b < blocks; ++b) {
    sc += block_sums[size_t(2 * b)];
    sd += block_sums[size_t(2 * b + 1)];
    valid &= block_valid[size_t(b)] != 0;
  }
  if (!valid) {
    require_nonnegative(c_hat, n, "c_hat");
    require_nonnegative(d_hat, n, "d_hat");
  }
  const double nd = double(n);
  double k = 0.0, total = sc;
  out.kind = DistributionCase::kCentreOnly;
  if (sd > 0.0) {
    k = std::sqrt(nd / sd);
    total = sc + k * sd;
    out.kind = DistributionCase::kRobust;
  }
  out.k = k;
  const double root = sc + std::sqrt(nd * sd);
  out.worst_case = root * root;

  // Unnormalised weights ĉ + k·d̂ into p; exactly uniform when they are all equal (equal features).
  const double first = c_hat[0] + k * d_hat[0];
  std::vector<char> block_equal(static_cast<size_t>(blocks));
  for_blocks(n, kBlock, [&](int64_t begin, int64_t end, int64_t b) {
    bool equal = true;
    for (int64_t i = begin; i < end; ++i) {
      const double w = c_hat[i] + k * d_hat[i];
      p[i] = w;
      equal &= w == first;
    }
    block_equal[size_t(b)] = equal;
  });
  const bool all_equal = std::all_of(block_equal.begin(), block_equal.end(), [](char e) { return e != 0; });
  if (!(total > 0.0) || !std::isfinite(total) || all_equal) {
    if (!(total > 0.0)) out.kind = DistributionCase::kUniform;
    std::fill(p, p + n, 1.0 / nd);
    return;
  }
  const double scale = (1.0 - uniform_share) / total, floor = uniform_share / nd;
  for_blocks(n, kBlock, [&](int64_t begin, int64_t end, int64_t) {
    for (int64_t i = begin; i < end; ++i) p[i] = p[i] * scale + floor;
  });
}

void robust_distribution(const float* features, int64_t n, int dim, const double* c, const double* d,
                         double uniform_share, RobustDistribution& out) {
  if (dim < 0) throw std::invalid_argument("robust distribution: negative feature count");
  require_nonnegative(c, dim, "c");
  require_nonnegative(d, dim, "d");
  out.c_hat.resize(size_t(n));
  out.d_hat.resize(size_t(n));
  out.p.resize(size_t(n));
  centres_and_widths(features, n, dim, c, d, out.c_hat.data(), out.d_hat.data());
  robust_p(out.c_hat.data(), out.d_hat.data(), n, uniform_share, out.p.data(), out);
}

RobustDistribution robust_distribution(const float* features, int64_t n, int dim, const double* c,
                                       const double* d, double uniform_share) {
  RobustDistribution out;
  robust_distribution(features, n, dim, c, d, uniform_share, out);
  return out;
}

// Dual of max_{v ∈ U} Σ v²/p: min over λ > λ0 = max d̂/p of f(λ) = n·λ + Σ λ·ĉ²/(λ·p − d̂). With
// λ = λ0 + μ and g_i = λ0 − d̂_i/p_i ≥ 0 (computed without cancellation), λ·p_i − d̂_i = p_i·(g_i + μ) and
// f'(μ) = n − Σ ĉ_i²·d̂_i / (p_i·(g_i + μ))², increasing in μ: bisect for its root in log μ.
double worst_case_of(const double* p, const double* c_hat, const double* d_hat, int64_t n) {
  if (n <= 0) return 0.0;
  const double nd = double(n);
  double lambda0 = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    if (!(p[i] >= 0.0) || !(c_hat[i] >= 0.0) || !(d_hat[i] >= 0.0)) {
      throw std::invalid_argument("worst_case_of: negative or NaN input at " + std::to_string(i));
    }
    if (p[i] == 0.0) {
      if (c_hat[i] > 0.0 || d_hat[i] > 0.0) return std::numeric_limits<double>::infinity();
      continue;
    }
    lambda0 = std::max(lambda0, d_hat[i] / p[i]);
  }
  auto active = [&](int64_t i) { return p[i] > 0.0 && c_hat[i] > 0.0 && d_hat[i] > 0.0; };
  auto gap = [&](int64_t i) { return lambda0 - d_hat[i] / p[i]; };
  auto derivative = [&](double mu) {
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      if (!active(i)) continue;
      const double den = p[i] * (gap(i) + mu);
      s += c_hat[i] * c_hat[i] * d_hat[i] / (den * den);
    }
    return nd - s;
  };
  auto value = [&](double mu) {
    const double lambda = lambda0 + mu;
    double s = nd * lambda;
    for (int64_t i = 0; i < n; ++i) {
      if (!(p[i] > 0.0) || c_hat[i] == 0.0) continue;
      const double c2 = c_hat[i] * c_hat[i];
      if (d_hat[i] == 0.0) {
        s += c2 / p[i];  // λ·ĉ²/(λ·p): v_i is pinned at ĉ_i
      } else {
        s += lambda * c2 / (p[i] * (gap(i) + mu));
      }
    }
    return s;
  };

  // Bracket: f'(hi) ≥ 0 for hi = sqrt(Σ ĉ²d̂/p² / n), since every g_i ≥ 0.
  double bound = 0.0;
  bool pole = false;  // an active term with g_i = 0 makes f'(0+) = −∞
  for (int64_t i = 0; i < n; ++i) {
    if (!active(i)) continue;
    bound += c_hat[i] * c_hat[i] * d_hat[i] / (p[i] * p[i]);
    if (gap(i) == 0.0) pole = true;
  }
  if (bound == 0.0) return value(0.0);  // no active term: f' = n > 0, the infimum is at λ0
  if (!pole && derivative(0.0) >= 0.0) return value(0.0);
  double hi = std::sqrt(bound / nd), lo = hi;
  for (int guard = 0; guard < 4000 && lo > 0.0 && derivative(lo) >= 0.0; ++guard) lo *= 0.5;
  for (int iter = 0; iter < 250; ++iter) {
    const double mid = lo > 0.0 ? std::sqrt(lo * hi) : 0.5 * hi;
    if (!(mid > lo && mid < hi)) break;
    if (derivative(mid) < 0.0) {
      lo = mid;
    } else {
      hi = mid;
    }
    if (hi - lo <= 1e-16 * hi) break;
  }
  double best = value(hi);
  if (lo > 0.0) best = std::min(best, value(lo));
  return best;
}

int64_t steps_per_epoch(int64_t n, int64_t batch) {
  if (n < 0 || batch <= 0) throw std::invalid_argument("steps_per_epoch: need n >= 0 and batch > 0");
  return (n + batch - 1) / batch;
}

// The device sampler's kernel, whose CPU twin is this definition: one place says what the features are.
void compute_features(const float* last_norm, const int64_t* last_seen, int64_t n, int64_t step,
                      int64_t steps_per_epoch, float* features) {
  static_assert(kFeatureCount == 4, "rais_features writes 4 features per example");
  cpu::rais_features(n, last_norm, last_seen, &step, steps_per_epoch, features);
}

void feature_sums(const float* last_norm, const int64_t* last_seen, int64_t n, int64_t step, int64_t steps_per_epoch,
                  double* sums) {
  const int64_t blocks = block_count(n, kBlock);
  std::vector<double> block_sums(static_cast<size_t>(blocks * kFeatureCount));
  for_blocks(n, kBlock, [&](int64_t begin, int64_t end, int64_t b) {
    double recent_sum = 0.0, stale_sum = 0.0, never_count = 0.0;
    for (int64_t i = begin; i < end; ++i) {
      const float x = last_norm[i];
      const double norm = (x > 0.0f) & (x <= std::numeric_limits<float>::max()) ? double(x) : 0.0;
      const int64_t seen = last_seen[i];
      const bool never = seen < 0, recent = (seen >= 0) & (step - seen < steps_per_epoch);
      recent_sum += recent ? norm : 0.0;
      stale_sum += !never && !recent ? norm : 0.0;
      never_count += never ? 1.0 : 0.0;
    }
    double* out = &block_sums[size_t(b * kFeatureCount)];
    out[0] = double(end - begin);
    out[1] = recent_sum;
    out[2] = stale_sum;
    out[3] = never_count;
  });
  std::fill(sums, sums + kFeatureCount, 0.0);
  for (int64_t b = 0; b < blocks; ++b)
    for (int k = 0; k < kFeatureCount; ++k) sums[k] += block_sums[size_t(b * kFeatureCount + k)];
}

}  // namespace raisin::rais
