// The oracle sampler: p ∝ fresh proxy norms of every example, exact gain ratio.
#include "rais/oracle_sampler.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "rais/distribution.h"

namespace raisin::rais {

OracleSampler::OracleSampler(int64_t count, uint64_t seed, NormOracle oracle, OracleOptions options)
    : n_(count), seed_(seed), oracle_(std::move(oracle)), options_(options), shuffled_(count, seed) {
  if (!oracle_) throw error("oracle: needs a function that computes every example's proxy norm");
  if (!(options.uniform_share >= 0 && options.uniform_share <= 1))
    throw error("oracle: uniform share ", options.uniform_share, " must be in [0, 1]");
  if (options.refresh_steps < 0) throw error("oracle: refresh_steps ", options.refresh_steps, " must be ≥ 0");
}

void OracleSampler::refresh(int batch) {
  full_gradient_ = oracle_(norms_);
  batch_ = batch;
  build();
  ++refreshes_;
}

void OracleSampler::build() {
  const double G = full_gradient_;
  if (int64_t(norms_.size()) != n_) throw error("oracle: got ", norms_.size(), " proxy norms for ", n_, " examples");
  double total = 0, squares = 0;
  for (float v : norms_) {
    if (!(v >= 0) || !std::isfinite(v)) throw error("oracle: proxy norm ", v, " is not a finite nonnegative number");
    total += v, squares += double(v) * v;
  }
  const double u = total > 0 ? options_.uniform_share : 1.0;
  p_.resize(size_t(n_));
  double importance = 0;  // Σ ṽ²/(n² p_i)
  for (int64_t i = 0; i < n_; ++i) {
    p_[i] = (1 - u) * (total > 0 ? norms_[i] / total : 0.0) + u / double(n_);
    importance += double(norms_[i]) * norms_[i] / (double(n_) * double(n_) * p_[i]);
  }
  table_.build(p_);
  const double B = batch_;
  const double uniform_moment = squares / double(n_) / B + (1 - 1 / B) * G;
  const double sampled_moment = importance / B + (1 - 1 / B) * G;
  ratio_ = sampled_moment > 0 && std::isfinite(uniform_moment / sampled_moment) ? uniform_moment / sampled_moment : 1.0;
}

void OracleSampler::save_state(SamplerState& s) const {
  s.integers["refreshes"] = {refreshed_at_, refreshes_, batch_};
  s.floats["norms"] = norms_;
  s.reals["full_gradient_sq_norm"] = {full_gradient_};
}

void OracleSampler::load_state(const SamplerState& s) {
  const std::vector<int64_t>& refreshes = s.integer_array("refreshes", 3);
  if (refreshes[2] < 0 || refreshes[2] > INT32_MAX) throw error("oracle: checkpointed batch size ", refreshes[2], " is out of range");
  refreshed_at_ = refreshes[0], refreshes_ = refreshes[1], batch_ = int(refreshes[2]);
  norms_ = s.float_array("norms", refreshed_at_ >= 0 ? n_ : -1);
  full_gradient_ = s.real("full_gradient_sq_norm");
  ratio_ = 1;
  if (refreshed_at_ >= 0) build();
}

void OracleSampler::draw(int64_t step, int batch, std::vector<int32_t>& indices, std::vector<float>& weights) {
  const int64_t epoch = steps_per_epoch(n_, batch);
  if (step < epoch) {  // the same shuffled first epoch as rais
    ratio_ = 1;
    shuffled_.draw(step, batch, indices, weights);
    return;
  }
  const int64_t every = options_.refresh_steps > 0 ? options_.refresh_steps : std::max<int64_t>(1, epoch / 4);
  if (refreshed_at_ < 0 || step - refreshed_at_ >= every) {
    refresh(batch);
    refreshed_at_ = step;
  }
  indices.resize(batch);
  weights.resize(batch);
  table_.draw_batch(seed_, uint64_t(step), batch, indices.data());
  for (int j = 0; j < batch; ++j) weights[j] = float(1.0 / (double(n_) * p_[indices[j]]));
}

}  // namespace raisin::rais
