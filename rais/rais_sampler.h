// The RAIS sampler (../shared/RAIS.md §3-§5): keeps each example's last proxy norm and when it was
// last seen, turns them into features, samples from the robust distribution through an alias table,
// weights each draw by ω = 1/(n·p), records (features, ṽ, ω) of every draw in a ring buffer, refits
// the uncertainty set (c, d) by solving PT on a background thread, and estimates the gain ratio r̂
// that scales the learning rate.
//
// Determinism: a PT solve is launched every `record_batches` steps and its result is swapped in exactly
// `record_batches` steps later, so a run does not depend on where or when the solve ran. By default it
// runs at launch on the training thread, its loops on the OpenMP threads (a fraction of a millisecond
// warm-started): on a CPU whose cores all train, a separate solver thread only competes with them.
// With background_solve it runs on its own thread while training continues (the sampler waits only
// if it has not finished when due), for when the CPU has a core to spare (e.g. training on a GPU).
// Both give the same draws bit for bit. The sampler's whole state goes into checkpoints (save_state/load_state), including the
// inputs of a solve in flight, which a resumed sampler launches again: a stopped and resumed run
// equals an uninterrupted one bit for bit. Until the first solve has been swapped in, the sampler serves plain shuffled epochs
// (r̂ = 1) [choice: RAIS.md §4], which also gives every example a last norm.
#pragma once
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "engine/sampler.h"
#include "rais/alias.h"
#include "rais/distribution.h"
#include "rais/gain_ratio.h"
#include "rais/pt.h"
#include "rais/trace.h"

namespace raisin::rais {

struct RaisOptions {
  int record_batches = 32;        // |D| = record_batches · B [choice]
  int refresh = 1;                // steps between rebuilds of p and the alias table
  double uniform_share = 0.0;     // mix p with this share of uniform
  bool shuffled_warmup = true;    // serve shuffled epochs until the first PT solve is in
  GainRatioOptions gain_ratio;    // α, clamp
  PtOptions pt;                   // d_const floor and solver settings
  // Start from these (c, d) instead of waiting for a solve (length kFeatureCount); with
  // shuffled_warmup off and c = (1, 0, 0, 0), d = 0 the sampler reproduces uniform-iid exactly.
  std::vector<double> initial_c, initial_d;
  bool refit = true;              // solve PT at all (off: keep the initial (c, d))
  bool background_solve = false;  // solve PT on its own thread instead of at launch on this one
  // Write the RAIS trace (rais/trace.h: CSV files per swapped-in PT solve) into this folder, created
  // if needed; empty = off. Tracing never changes the draws.
  std::string trace_dir;
};

// Throws raisin::Error naming the first setting out of range (the samplers' constructors call it).
void validate(const RaisOptions& options);

// What the sampler has done, for logs and traces.
struct RaisStats {
  int64_t solves = 0, failed_solves = 0;
  int64_t clamped_steps = 0;   // steps whose r̂ estimate hit the clamp
  double largest_weight = 0;   // largest ω = 1/(n·p_i) of the current p
  std::vector<double> c, d;    // the (c, d) in use
  bool importance_sampling = false;  // false while serving the shuffled warm-up
};

class RaisSampler : public Sampler {
 public:
  RaisSampler(int64_t count, uint64_t seed, RaisOptions options = {});
  ~RaisSampler() override;
  std::string name() const override { return "rais"; }
  void draw(int64_t step, int batch, std::vector<int32_t>& indices, std::vector<float>& weights) override;
  void observe(const Observation& observation) override;
  double lr_multiplier() const override { return importance_ ? gain_ratio_.value() : 1.0; }
  bool observes() const override { return true; }
  double max_lr_multiplier() const override { return options_.gain_ratio.max; }
  void save_state(SamplerState& state) const override;
  void load_state(const SamplerState& state) override;
  RaisStats stats() const;
  // The current p over all examples (for traces and tests).
  const std::vector<double>& probabilities() const { return distribution_.p; }

 private:
  void rebuild(int64_t step);
  void build_from_features();
  void allocate_records(int batch);
  void launch_solve(int64_t step);
  void start_solve(std::shared_ptr<const PtData> data, int64_t launched_at);
  void swap_in_solve();
  void write_trace(int64_t step);

  int64_t n_;
  uint64_t seed_;
  RaisOptions options_;
  int batch_ = 0;
  int64_t steps_per_epoch_ = 0;
  ShuffledSampler shuffled_;
  GainRatio gain_ratio_;
  bool importance_ = false;

  // per example
  std::vector<float> last_norm_;
  std::vector<int64_t> last_seen_;
  std::vector<float> features_;  // n × kFeatureCount, as of the last rebuild
  RobustDistribution distribution_;
  AliasTable table_;
  std::vector<double> c_, d_;
  int64_t built_at_ = -1;

  // the drawn batch, as drawn
  std::vector<float> drawn_features_;  // B × kFeatureCount
  std::vector<float> drawn_weights_;

  // the record ring buffer
  std::vector<float> record_features_, record_norms_, record_weights_;
  int64_t records_written_ = 0;

  // PT on a background thread
  std::future<PtResult> pending_;
  std::shared_ptr<const PtData> pending_data_;  // the data given to the pending solve (for the trace)
  int64_t pending_ready_at_ = -1, pending_launched_at_ = -1;
  PtResult last_solve_;
  int64_t solves_ = 0, failed_solves_ = 0;

  // the trace (options_.trace_dir); the solve swapped in at this draw, until written
  std::unique_ptr<TraceWriter> trace_;
  struct SwappedSolve {
    std::shared_ptr<const PtData> data;
    PtResult result;
    int64_t launched_at = -1;
  };
  std::unique_ptr<SwappedSolve> to_trace_;
};

}  // namespace raisin::rais
