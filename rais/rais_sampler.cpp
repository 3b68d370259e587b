// The RAIS sampler: per-example state, features, robust p, alias draws, records, PT refits, r̂.
#include "rais/rais_sampler.h"

#include <omp.h>

#include <algorithm>

#include "engine/error.h"
#include "rais/sampler_checkpoint.h"

namespace raisin::rais {

void validate(const RaisOptions& options) {
  if (options.record_batches < 1) throw error("rais: record_batches ", options.record_batches, " must be ≥ 1");
  if (options.refresh < 1) throw error("rais: refresh ", options.refresh, " must be ≥ 1 step");
  if (!(options.uniform_share >= 0 && options.uniform_share < 1))
    throw error("rais: uniform share ", options.uniform_share, " must be in [0, 1)");
  const bool has_initial = !options.initial_c.empty() || !options.initial_d.empty();
  if (has_initial && (options.initial_c.size() != kFeatureCount || options.initial_d.size() != kFeatureCount))
    throw error("rais: initial c and d need ", kFeatureCount, " values each");
  if (!options.shuffled_warmup && !has_initial)
    throw error("rais: without the shuffled warm-up epoch, give an initial (c, d)");
  GainRatio check(options.gain_ratio);  // throws on a bad α or clamp
}

RaisSampler::RaisSampler(int64_t count, uint64_t seed, RaisOptions options)
    : n_(count),
      seed_(seed),
      options_(std::move(options)),
      shuffled_(count, seed),
      gain_ratio_(options_.gain_ratio),
      last_norm_(size_t(count), 0.0f),
      last_seen_(size_t(count), -1),
      features_(size_t(count) * kFeatureCount) {
  validate(options_);
  c_ = options_.initial_c;
  d_ = options_.initial_d;
  importance_ = !options_.shuffled_warmup;
  if (!options_.trace_dir.empty()) trace_ = std::make_unique<TraceWriter>(options_.trace_dir);
}

RaisSampler::~RaisSampler() {
  if (pending_.valid()) pending_.wait();
}

void RaisSampler::rebuild(int64_t step) {
  compute_features(last_norm_.data(), last_seen_.data(), n_, step, steps_per_epoch_, features_.data());
  build_from_features();
  built_at_ = step;
}

void RaisSampler::build_from_features() {
  robust_distribution(features_.data(), n_, kFeatureCount, c_.data(), d_.data(), options_.uniform_share,
                      distribution_);
  table_.build(distribution_.p);
}

void RaisSampler::allocate_records(int batch) {
  batch_ = batch;
  steps_per_epoch_ = steps_per_epoch(n_, batch);
  const size_t capacity = size_t(options_.record_batches) * size_t(batch);
  record_features_.assign(capacity * kFeatureCount, 0.0f);
  record_norms_.assign(capacity, 0.0f);
  record_weights_.assign(capacity, 0.0f);
}

void RaisSampler::launch_solve(int64_t step) {
  const int64_t capacity = int64_t(record_norms_.size());
  const int64_t count = std::min(records_written_, capacity);
  if (count == 0) return;
  auto shared = std::make_shared<PtData>();
  PtData& data = *shared;
  data.num_features = kFeatureCount;
  data.features.assign(record_features_.begin(), record_features_.begin() + count * kFeatureCount);
  data.v.assign(record_norms_.begin(), record_norms_.begin() + count);
  data.w.assign(record_weights_.begin(), record_weights_.begin() + count);
  data.a.resize(kFeatureCount);  // Σ_i s_i over the examples as they are now
  feature_sums(last_norm_.data(), last_seen_.data(), n_, step, steps_per_epoch_, data.a.data());
  start_solve(std::move(shared), step);
}

void RaisSampler::start_solve(std::shared_ptr<const PtData> data, int64_t launched_at) {
  const PtOptions pt = options_.pt;
  const PtResult warm = last_solve_;
  pending_data_ = data;
  if (options_.background_solve) {
    pending_ = std::async(std::launch::async, [data = std::move(data), pt, warm] {
      omp_set_num_threads(1);  // this thread's own OpenMP setting: the solve stays on this one thread
      return solve_pt(*data, pt, warm.ok ? &warm : nullptr);
    });
  } else {
    std::promise<PtResult> solved;
    solved.set_value(solve_pt(*data, pt, warm.ok ? &warm : nullptr));
    pending_ = solved.get_future();
  }
  pending_launched_at_ = launched_at;
  pending_ready_at_ = launched_at + options_.record_batches;
}

void RaisSampler::swap_in_solve() {
  PtResult result = pending_.get();
  std::shared_ptr<const PtData> data = std::move(pending_data_);
  const int64_t launched_at = pending_launched_at_;
  pending_ready_at_ = pending_launched_at_ = -1;
  ++solves_;
  if (trace_) to_trace_ = std::make_unique<SwappedSolve>(SwappedSolve{std::move(data), result, launched_at});
  if (!result.ok) {
    ++failed_solves_;  // keep the previous (c, d) (RAIS.md §4)
    return;
  }
  c_ = result.c;
  d_ = result.d;
  last_solve_ = std::move(result);
  importance_ = true;
  built_at_ = -1;  // rebuild p with the new set
}

void RaisSampler::write_trace(int64_t step) {
  const std::unique_ptr<SwappedSolve> solve = std::move(to_trace_);
  TraceSolve t;
  t.number = solves_;
  t.step_launched = solve->launched_at;
  t.step_swapped_in = step;
  t.data = solve->data.get();
  t.result = &solve->result;
  t.n = n_;
  t.last_norm = last_norm_.data();
  t.last_seen = last_seen_.data();
  // The state this step's draw uses: p and the features of its last rebuild, or, while the shuffled
  // warm-up is served, the features now and p = 1/n. Read only: the draws do not depend on tracing.
  std::vector<float> features;
  std::vector<double> uniform;
  if (importance_) {
    t.features = features_.data();
    t.p = distribution_.p.data();
  } else {
    features.resize(size_t(n_) * kFeatureCount);
    compute_features(last_norm_.data(), last_seen_.data(), n_, step, steps_per_epoch_, features.data());
    uniform.assign(size_t(n_), 1.0 / double(n_));
    t.features = features.data();
    t.p = uniform.data();
  }
  trace_->write_solve(t);
}

void RaisSampler::draw(int64_t step, int batch, std::vector<int32_t>& indices, std::vector<float>& weights) {
  if (batch_ == 0) {
    allocate_records(batch);
  } else if (batch != batch_) {
    throw error("rais: batch size changed from ", batch_, " to ", batch);
  }

  // PT: swap in the solve launched record_batches steps ago, then launch the next one.
  if (pending_.valid() && step >= pending_ready_at_) swap_in_solve();
  const int64_t first_solve = options_.shuffled_warmup ? steps_per_epoch_ : options_.record_batches;
  if (options_.refit && !pending_.valid() && step >= first_solve &&
      (step - first_solve) % options_.record_batches == 0)
    launch_solve(step);

  indices.resize(batch);
  drawn_features_.resize(size_t(batch) * kFeatureCount);
  drawn_weights_.resize(batch);
  if (!importance_) {
    shuffled_.draw(step, batch, indices, weights);
    for (int j = 0; j < batch; ++j) {
      const int32_t i = indices[j];
      compute_features(&last_norm_[i], &last_seen_[i], 1, step, steps_per_epoch_, &drawn_features_[size_t(j) * kFeatureCount]);
      drawn_weights_[j] = 1.0f;
    }
    weights.clear();
    if (to_trace_) write_trace(step);
    return;
  }

  if (built_at_ < 0 || step - built_at_ >= options_.refresh) rebuild(step);
  if (to_trace_) write_trace(step);
  table_.draw_batch(seed_, uint64_t(step), batch, indices.data());
  weights.resize(batch);
  for (int j = 0; j < batch; ++j) {
    const int32_t i = indices[j];
    weights[j] = float(1.0 / (double(n_) * distribution_.p[i]));
    drawn_weights_[j] = weights[j];
    std::copy_n(&features_[size_t(i) * kFeatureCount], kFeatureCount, &drawn_features_[size_t(j) * kFeatureCount]);
  }
}

void RaisSampler::observe(const Observation& o) {
  const int batch = int(o.indices.size());
  const int64_t capacity = int64_t(record_norms_.size());
  for (int j = 0; j < batch; ++j) {
    const int64_t slot = records_written_++ % capacity;
    std::copy_n(&drawn_features_[size_t(j) * kFeatureCount], kFeatureCount, &record_features_[size_t(slot) * kFeatureCount]);
    record_norms_[slot] = o.proxy_norms[j];
    record_weights_[slot] = drawn_weights_[j];
  }
  for (int j = 0; j < batch; ++j) {
    last_norm_[o.indices[j]] = o.proxy_norms[j];
    last_seen_[o.indices[j]] = o.step;
  }
  gain_ratio_.update(batch, o.proxy_norms, o.weights, o.bias_gradient_sq_norm);
}

// Keys of the checkpointed state (engine/sampler.h): per example "last_norm", "last_seen" and, once p
// has been built, "features" (those p was built from, so the alias table is rebuilt exactly); the
// record ring buffer; (c, d) and the previous solve (the next solve's warm start); the gain-ratio
// moments; and the inputs of the solve in flight (rais/sampler_checkpoint.h, shared with the device sampler).
void RaisSampler::save_state(SamplerState& s) const {
  s.integers["batch"] = {batch_};
  s.integers["importance"] = {importance_};
  s.integers["built_at"] = {built_at_};
  s.integers["records_written"] = {records_written_};
  s.integers["solves"] = {solves_, failed_solves_};
  s.floats["last_norm"] = last_norm_;
  s.integers["last_seen"] = last_seen_;
  if (built_at_ >= 0) s.floats["features"] = features_;
  s.floats["record_features"] = record_features_;
  s.floats["record_norms"] = record_norms_;
  s.floats["record_weights"] = record_weights_;
  save_solutions(c_, d_, last_solve_, s);
  save_gain_ratio(gain_ratio_.state(), s);
  save_pending_solve({pending_launched_at_, pending_ready_at_, pending_.valid() ? pending_data_ : nullptr}, s);
}

void RaisSampler::load_state(const SamplerState& s) {
  if (pending_.valid()) pending_.wait();
  pending_ = {};
  pending_data_.reset();
  to_trace_.reset();
  const int64_t batch = load_batch(s);
  batch_ = 0;
  if (batch > 0) allocate_records(int(batch));
  const int64_t capacity = int64_t(record_norms_.size());
  record_features_ = s.float_array("record_features", capacity * kFeatureCount);
  record_norms_ = s.float_array("record_norms", capacity);
  record_weights_ = s.float_array("record_weights", capacity);
  records_written_ = load_records_written(s, batch);
  last_norm_ = s.float_array("last_norm", n_);
  last_seen_ = s.integer_array("last_seen", n_);
  const std::vector<int64_t>& solves = s.integer_array("solves", 2);
  solves_ = solves[0], failed_solves_ = solves[1];
  importance_ = s.integer("importance") != 0;
  load_solutions(s, c_, d_, last_solve_);
  gain_ratio_.restore(load_gain_ratio(s));
  built_at_ = s.integer("built_at");
  if (built_at_ >= 0) {
    if (c_.size() != kFeatureCount || d_.size() != kFeatureCount)
      throw error("rais: the checkpoint has a built distribution but no (c, d)");
    features_ = s.float_array("features", n_ * kFeatureCount);
    build_from_features();
  }
  const PendingSolve pending = load_pending_solve(s);
  if (pending.data) {
    start_solve(pending.data, pending.launched_at);
    check_solve_due(pending, pending_ready_at_);
  }
}

RaisStats RaisSampler::stats() const {
  RaisStats s;
  s.solves = solves_;
  s.failed_solves = failed_solves_;
  s.clamped_steps = gain_ratio_.clamped();
  s.c = c_;
  s.d = d_;
  s.importance_sampling = importance_;
  if (importance_ && !distribution_.p.empty()) {
    double smallest = 1;
    for (double p : distribution_.p)
      if (p > 0) smallest = std::min(smallest, p);
    s.largest_weight = 1.0 / (double(n_) * smallest);
  }
  return s;
}

}  // namespace raisin::rais
