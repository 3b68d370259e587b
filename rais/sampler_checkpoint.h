// The checkpoint entries that both RAIS samplers, RaisSampler (host) and DeviceRaisSampler, write and read
// alike (engine/sampler.h's SamplerState; every key is listed at RaisSampler::save_state): the
// batch size and record count, (c, d) with the next solve's warm start, the gain-ratio estimator, and the
// PT solve in flight. Each load checks what it reads and throws raisin::Error naming the entry.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/sampler.h"
#include "rais/gain_ratio.h"
#include "rais/pt.h"

namespace raisin::rais {

// "batch": 0 before the first draw.
int64_t load_batch(const SamplerState& state);
// "records_written", which must fit the batch size (none before the first draw).
int64_t load_records_written(const SamplerState& state, int64_t batch);

// "c", "d" and the warm start ("warm_start_ok", "warm_start_c", "warm_start_d"); each vector is empty or
// has kFeatureCount values.
void save_solutions(const std::vector<double>& c, const std::vector<double>& d, const PtResult& warm_start,
                    SamplerState& state);
void load_solutions(const SamplerState& state, std::vector<double>& c, std::vector<double>& d, PtResult& warm_start);

// "gain_ratio_moments" and "gain_ratio_counts".
void save_gain_ratio(const GainRatio::State& gain, SamplerState& state);
GainRatio::State load_gain_ratio(const SamplerState& state);

// The solve in flight: "pending" (its launch and due steps, −1 when there is none) and, when there is
// one, the data it was given ("pending_features", "pending_v", "pending_w", "pending_a").
struct PendingSolve {
  int64_t launched_at = -1, ready_at = -1;
  std::shared_ptr<const PtData> data;  // null when launched_at < 0
};
void save_pending_solve(const PendingSolve& pending, SamplerState& state);
PendingSolve load_pending_solve(const SamplerState& state);
// Throws unless the resumed sampler, having launched the solve again, expects it at the same step.
void check_solve_due(const PendingSolve& pending, int64_t ready_at);

}  // namespace raisin::rais
