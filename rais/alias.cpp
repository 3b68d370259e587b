// Vose's alias method ("A linear algorithm for generating random numbers with a given distribution",
// IEEE TSE 1991), with the numerically careful ending: leftovers of either worklist keep prob = 1,
// except zero-weight items, which must never be drawn. The sum, the scaling and the partition into
// small and large items run on OpenMP threads in fixed blocks (rais/blocks.h), so the table does not
// depend on the number of threads; the pairing loop is sequential.
#include "rais/alias.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "kernels/philox.h"
#include "rais/blocks.h"

namespace raisin::rais {

void AliasTable::build(const double* weights, int64_t n) {
  if (n < 1 || n > int64_t(std::numeric_limits<int32_t>::max())) {
    throw std::invalid_argument("alias table: need 1 <= n <= 2^31 - 1 items, got " + std::to_string(n));
  }
  // Per-block sums with four accumulators (the add chain bounds this loop) and a branch-free validity
  // check, and per-block counts of small items (for the partition below).
  constexpr int64_t kBlock = 8192;
  const int64_t blocks = block_count(n, kBlock);
  block_sums_.assign(size_t(blocks), 0.0);
  block_small_.assign(size_t(blocks) + 1, 0);
  std::vector<char> block_valid(static_cast<size_t>(blocks));
  for_blocks(n, kBlock, [&](int64_t begin, int64_t end, int64_t b) {
    double partial[4] = {0.0, 0.0, 0.0, 0.0};
    bool valid = true;
    int64_t i = begin;
    for (; i + 4 <= end; i += 4) {
      for (int k = 0; k < 4; ++k) {
        const double w = weights[i + k];
        valid &= (w >= 0.0) & (w <= std::numeric_limits<double>::max());
        partial[k] += w;
      }
    }
    for (; i < end; ++i) {
      valid &= (weights[i] >= 0.0) & (weights[i] <= std::numeric_limits<double>::max());
      partial[0] += weights[i];
    }
    block_sums_[size_t(b)] = (partial[0] + partial[1]) + (partial[2] + partial[3]);
    block_valid[size_t(b)] = valid;
  });
  double total = 0.0;
  bool valid = true;
  for (int64_t b = 0; b < blocks; ++b) {
    total += block_sums_[size_t(b)];
    valid &= block_valid[size_t(b)] != 0;
  }
  if (!valid) {
    for (int64_t j = 0; j < n; ++j) {
      if (!(weights[j] >= 0.0) || !std::isfinite(weights[j])) {
        throw std::invalid_argument("alias table: weight " + std::to_string(j) + " = " + std::to_string(weights[j]) +
                                    " is not a finite number >= 0");
      }
    }
  }
  if (!(total > 0.0) || !std::isfinite(total)) {
    throw std::invalid_argument("alias table: the weights sum to " + std::to_string(total));
  }
  const size_t count = size_t(n);
  p_.resize(count);
  prob_.resize(count);
  alias_.resize(count);
  scaled_.resize(count);
  const double inv_total = 1.0 / total, nd = double(n);
  double* q = scaled_.data();
  for_blocks(n, kBlock, [&](int64_t begin, int64_t end, int64_t b) {
    int64_t small_items = 0;
    for (int64_t k = begin; k < end; ++k) {
      p_[size_t(k)] = weights[k] * inv_total;
      q[k] = p_[size_t(k)] * nd;
      small_items += q[k] < 1.0;
    }
    block_small_[size_t(b) + 1] = small_items;
  });
  // Vose's worklists as plain arrays: a branch-free partition into small (q < 1) and large (q ≥ 1)
  // items in index order (each block writes at its offsets), then each small item takes its missing
  // mass from the large item on top of the stack; a large item that drops below 1 moves onto the
  // small stack.
  for (int64_t b = 0; b < blocks; ++b) block_small_[size_t(b) + 1] += block_small_[size_t(b)];
  small_.resize(count);
  large_.resize(count);
  int32_t* small = small_.data();
  int32_t* large = large_.data();
  for_blocks(n, kBlock, [&](int64_t begin, int64_t end, int64_t b) {
    size_t ns = size_t(block_small_[size_t(b)]), nl = size_t(begin - block_small_[size_t(b)]);
    for (int64_t i = begin; i < end; ++i) {
      const bool is_small = q[i] < 1.0;
      *(is_small ? small + ns : large + nl) = int32_t(i);  // a select, not a branch; no write outside the block's slots
      ns += is_small;
      nl += !is_small;
    }
  });
  size_t ns = size_t(block_small_[size_t(blocks)]), nl = count - ns;
  // The current large item's remaining mass lives in a register until it drops below 1.
  int32_t l = nl > 0 ? large[nl - 1] : 0;
  double ql = nl > 0 ? q[l] : 0.0;
  while (ns > 0 && nl > 0) {
    const int32_t s = small[--ns];
    const double qs = q[s];
    prob_[size_t(s)] = qs;
    alias_[size_t(s)] = l;
    // (a + b) − 1 loses less than a − (1 − b) when a ≥ 1 > b.
    ql = (ql + qs) - 1.0;
    if (ql < 1.0) {
      q[l] = ql;
      --nl;
      small[ns++] = l;
      if (nl > 0) {
        l = large[nl - 1];
        ql = q[l];
      }
    }
  }
  if (nl > 0) q[l] = ql;
  // What remains is ≈ 1 up to rounding: keep it whole. A zero-weight item can remain only through
  // rounding (the large items ran out first); it keeps prob 0 and aliases to the heaviest item.
  for (size_t k = 0; k < nl; ++k) {
    prob_[size_t(large[k])] = 1.0;
    alias_[size_t(large[k])] = large[k];
  }
  int32_t heaviest = -1;
  for (size_t k = 0; k < ns; ++k) {
    const int32_t s = small[k];
    if (weights[s] > 0.0) {
      prob_[size_t(s)] = 1.0;
      alias_[size_t(s)] = s;
    } else {
      if (heaviest < 0) heaviest = int32_t(std::max_element(weights, weights + n) - weights);
      prob_[size_t(s)] = 0.0;
      alias_[size_t(s)] = heaviest;
    }
  }
  // Every alias is an item that was large when paired (q ≥ 1, so positive weight) or the heaviest
  // item: a zero-weight item is never reached.
}

int32_t AliasTable::draw(uint64_t seed, uint64_t step, uint64_t j) const {
  const kernels::Philox4 w = kernels::philox_block(seed, step, j);
  const uint64_t hi = (uint64_t(w.v[0]) << 32) | w.v[1];
  const uint64_t lo = (uint64_t(w.v[2]) << 32) | w.v[3];
  const uint64_t slot = uint64_t((static_cast<unsigned __int128>(hi) * prob_.size()) >> 64);
  const double coin = double(lo >> 11) * 0x1.0p-53;
  return coin < prob_[slot] ? int32_t(slot) : alias_[slot];
}

void AliasTable::draw_batch(uint64_t seed, uint64_t step, int batch, int32_t* out) const {
  for (int j = 0; j < batch; ++j) out[j] = draw(seed, step, uint64_t(j));
}

std::vector<double> AliasTable::implied_probabilities() const {
  const size_t n = prob_.size();
  std::vector<double> q(n, 0.0);
  for (size_t i = 0; i < n; ++i) {
    q[i] += prob_[i];
    q[size_t(alias_[i])] += 1.0 - prob_[i];
  }
  for (double& x : q) x /= double(n);
  return q;
}

}  // namespace raisin::rais
