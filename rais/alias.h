// Vose's alias table (RAIS.md §5): O(n) build from nonnegative weights, O(1) reproducible draws.
//
// Draw j of step t under seed (the CPU reference; a GPU twin must do exactly this):
//   w    = kernels::philox_block(seed, /*stream=*/t, /*index=*/j).v      (one 4-word block per draw)
//   slot = floor(((w[0] << 32) | w[1]) · n / 2^64)                       (64×64 → high 64 bits)
//   coin = (((w[2] << 32) | w[3]) >> 11) · 2^-53                         (uniform in [0, 1), 53 bits)
//   draw = coin < prob[slot] ? slot : alias[slot]
// Slot and coin come from independent words. The slot's bias is below n/2^64 (< 2^-40 for n ≤ 2^24;
// undetectable for any int32 n) and the coin has full double resolution, so the table's probabilities
// (double) are reproduced to ~1e-16. Items with zero weight get prob = 0 and are never drawn
// (coin ≥ 0 is never < 0), and no slot aliases to a zero-weight item.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace raisin::rais {

class AliasTable {
 public:
  AliasTable() = default;
  // Builds from n ≥ 1 nonnegative finite weights with a positive sum (normalised here, so p need not
  // sum to 1). Throws std::invalid_argument otherwise. Reuses its buffers: no allocation when n does
  // not grow.
  void build(const double* weights, int64_t n);
  void build(const std::vector<double>& weights) { build(weights.data(), int64_t(weights.size())); }

  int64_t size() const { return int64_t(prob_.size()); }
  // Draw j of step `step` under `seed` (see the formula above).
  int32_t draw(uint64_t seed, uint64_t step, uint64_t j) const;
  // out[j] = draw(seed, step, j) for j in [0, batch).
  void draw_batch(uint64_t seed, uint64_t step, int batch, int32_t* out) const;
  // The normalised probability p_i the table was built for (what the weight ω_i = 1/(n·p_i) uses).
  double probability(int32_t i) const { return p_[size_t(i)]; }
  // The probability the table actually draws item i with: (prob_i + Σ_{j: alias_j = i} (1 − prob_j))/n.
  // O(n) for all items; for tests.
  std::vector<double> implied_probabilities() const;

  const std::vector<double>& probs() const { return prob_; }      // acceptance probability per slot
  const std::vector<int32_t>& aliases() const { return alias_; }  // alias per slot

 private:
  std::vector<double> p_;       // normalised input
  std::vector<double> prob_;    // per slot: accept the slot itself when coin < prob
  std::vector<int32_t> alias_;  // per slot: otherwise take this item
  std::vector<double> scaled_;  // build scratch: n·p_i, then the remaining mass
  std::vector<int32_t> small_, large_;  // build scratch: Vose's worklists
  std::vector<double> block_sums_;      // build scratch: per-block weight sums
  std::vector<int64_t> block_small_;    // build scratch: small items before each block
};

}  // namespace raisin::rais
