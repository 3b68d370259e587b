// The oracle sampler of RAIS.md §6, a diagnostic: after one shuffled epoch, every `refresh_steps`
// steps it asks for fresh proxy norms of every example (a forward pass over the whole training set),
// samples p ∝ ṽ mixed with a uniform share (≥ 10% by default: without it the oracle diverged), and
// scales the learning rate by the exact gain ratio of that p for the last layer's bias:
//   r = [(1/B)(1/n)Σṽ² + (1 − 1/B)G] / [(1/B)Σ ṽ²/(n² p_i) + (1 − 1/B)G],  G = ‖∇F_bias‖².
// It is costly by design and not an upper bound on what RAIS can do.
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "engine/sampler.h"
#include "rais/alias.h"

namespace raisin::rais {

// Fills fresh ṽ of every training example and returns G = ‖∇F_bias‖².
using NormOracle = std::function<double(std::vector<float>& norms)>;

struct OracleOptions {
  int64_t refresh_steps = 0;   // 0: a quarter of an epoch
  double uniform_share = 0.1;  // mixed into p
};

class OracleSampler : public Sampler {
 public:
  OracleSampler(int64_t count, uint64_t seed, NormOracle oracle, OracleOptions options = {});
  std::string name() const override { return "oracle"; }
  void draw(int64_t step, int batch, std::vector<int32_t>& indices, std::vector<float>& weights) override;
  double lr_multiplier() const override { return ratio_; }
  // Any value at its next refresh: the trainer reads every step back.
  double max_lr_multiplier() const override { return std::numeric_limits<double>::infinity(); }
  const std::vector<double>& probabilities() const { return p_; }
  int64_t refreshes() const { return refreshes_; }
  // Checkpoints keep the norms and G of the last refresh (p, the alias table and r are rebuilt from
  // them) and when it happened.
  void save_state(SamplerState& state) const override;
  void load_state(const SamplerState& state) override;

 private:
  void refresh(int batch);
  void build();  // p, alias table and r from norms_, full_gradient_ and batch_

  int64_t n_;
  uint64_t seed_;
  NormOracle oracle_;
  OracleOptions options_;
  ShuffledSampler shuffled_;
  std::vector<float> norms_;
  double full_gradient_ = 0;  // G of the last refresh
  int batch_ = 0;             // batch size at the last refresh
  std::vector<double> p_;
  AliasTable table_;
  double ratio_ = 1;
  int64_t refreshed_at_ = -1, refreshes_ = 0;
};

}  // namespace raisin::rais
