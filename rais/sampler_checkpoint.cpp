// The RAIS samplers' shared checkpoint entries.
#include "rais/sampler_checkpoint.h"

#include "engine/error.h"
#include "rais/distribution.h"

namespace raisin::rais {

int64_t load_batch(const SamplerState& s) {
  const int64_t batch = s.integer("batch");
  if (batch < 0 || batch > INT32_MAX) throw error("rais: checkpointed batch size ", batch, " is out of range");
  return batch;
}

int64_t load_records_written(const SamplerState& s, int64_t batch) {
  const int64_t records = s.integer("records_written");
  if (records < 0 || (batch == 0 && records != 0))
    throw error("rais: the checkpoint's record count ", records, " does not fit its batch size ", batch,
                " (a damaged checkpoint)");
  return records;
}

void save_solutions(const std::vector<double>& c, const std::vector<double>& d, const PtResult& warm_start,
                    SamplerState& s) {
  s.reals["c"] = c;
  s.reals["d"] = d;
  s.integers["warm_start_ok"] = {warm_start.ok};
  s.reals["warm_start_c"] = warm_start.c;
  s.reals["warm_start_d"] = warm_start.d;
}

void load_solutions(const SamplerState& s, std::vector<double>& c, std::vector<double>& d, PtResult& warm_start) {
  for (const char* key : {"c", "d", "warm_start_c", "warm_start_d"}) {
    const size_t size = s.real_array(key).size();
    if (size != 0 && size != kFeatureCount)
      throw error("rais: checkpointed '", key, "' has ", size, " values, expected ", kFeatureCount);
  }
  c = s.real_array("c");
  d = s.real_array("d");
  warm_start = PtResult{};
  warm_start.ok = s.integer("warm_start_ok") != 0;
  warm_start.c = s.real_array("warm_start_c");
  warm_start.d = s.real_array("warm_start_d");
}

void save_gain_ratio(const GainRatio::State& g, SamplerState& s) {
  s.reals["gain_ratio_moments"] = {g.m_u1, g.m_r1, g.m_r, g.decay, g.value};
  s.integers["gain_ratio_counts"] = {g.clamped, g.steps};
}

GainRatio::State load_gain_ratio(const SamplerState& s) {
  const std::vector<double>& moments = s.real_array("gain_ratio_moments", 5);
  const std::vector<int64_t>& counts = s.integer_array("gain_ratio_counts", 2);
  return {moments[0], moments[1], moments[2], moments[3], moments[4], counts[0], counts[1]};
}

// PT's inputs are stored as float: they are copies of the float records, so the conversion is exact.
void save_pending_solve(const PendingSolve& pending, SamplerState& s) {
  s.integers["pending"] = {pending.launched_at, pending.ready_at};
  if (!pending.data) return;
  const PtData& data = *pending.data;
  s.floats["pending_features"].assign(data.features.begin(), data.features.end());
  s.floats["pending_v"].assign(data.v.begin(), data.v.end());
  s.floats["pending_w"].assign(data.w.begin(), data.w.end());
  s.reals["pending_a"] = data.a;
}

PendingSolve load_pending_solve(const SamplerState& s) {
  const std::vector<int64_t>& steps = s.integer_array("pending", 2);
  PendingSolve pending{steps[0], steps[1], nullptr};
  if (pending.launched_at < 0) return pending;
  auto data = std::make_shared<PtData>();
  data->num_features = kFeatureCount;
  const std::vector<float>& v = s.float_array("pending_v");
  const std::vector<float>& features = s.float_array("pending_features", int64_t(v.size()) * kFeatureCount);
  const std::vector<float>& w = s.float_array("pending_w", int64_t(v.size()));
  data->features.assign(features.begin(), features.end());
  data->v.assign(v.begin(), v.end());
  data->w.assign(w.begin(), w.end());
  data->a = s.real_array("pending_a", kFeatureCount);
  pending.data = std::move(data);
  return pending;
}

void check_solve_due(const PendingSolve& pending, int64_t ready_at) {
  if (ready_at != pending.ready_at)
    throw error("rais: the checkpointed solve was due at step ", pending.ready_at, ", but --rais-records says ",
                ready_at, "; resume with the run's own settings");
}

}  // namespace raisin::rais
