// Seeded parameter initialisation: a small random generator and the fills layers use.
#pragma once
#include <cmath>
#include <cstdint>
#include <random>

#include "engine/tensor.h"

namespace raisin {

class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(engine_); }
  float normal(float mean, float stddev) { return std::normal_distribution<float>(mean, stddev)(engine_); }

 private:
  std::mt19937_64 engine_;
};

// Every element uniform in [-bound, bound).
inline void uniform_fill(Tensor& t, float bound, Rng& rng) {
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = rng.uniform(-bound, bound);
}

// He et al. (2015) for ReLU nets: normal with std sqrt(2 / fan), fan the inputs (or outputs) per unit.
inline void kaiming_normal_fill(Tensor& t, int64_t fan, Rng& rng) {
  const float stddev = std::sqrt(2.0f / float(fan));
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = rng.normal(0.0f, stddev);
}

}  // namespace raisin
