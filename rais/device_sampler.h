// RAIS with its state on the training device (RAIS.md §3-§5; DESIGN.md's data flow): the sampler of
// rais_sampler.h — the same shuffled warm-up, PT cadence, determinism and checkpoint keys — with the
// per-example state, features, robust p, alias table, draws, importance weights, record ring and
// gain-ratio moments in device memory, computed by kernels (kernels/signatures.inc), so that a training
// step never waits for the host. The host keeps the schedule: at each PT launch the records and the
// per-example state are copied asynchronously into pinned memory; the solve waits for that copy (on its
// own thread with background_solve, else at launch) and record_batches steps later its (c, d) are
// uploaded asynchronously, for the next rebuild of p. r̂ stays on the device, where the trainer's
// schedule_step kernel reads it.
//
// prepare_on_device does all of that host-side work, rebuilds p when due and uploads the step and its
// first record slot; draw_on_device and observe_on_device then only launch kernels that read those from
// device memory, into fixed buffers: the same launches at every step of the warm-up, and at every step
// after it, which is what lets the trainer replay them from a CUDA graph.
//
// It runs on any backend (on the cpu through the kernels' CPU twins, for tests). Its sums run in one
// fixed order, so p, the alias table and the draws are the same bit for bit on every backend; against
// RaisSampler, which sums in other blocks and builds its alias table another way, p agrees to rounding
// and the draws have the same distribution. Reading its state (stats, probabilities, checkpoints,
// traces) waits for the device.
#pragma once
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "engine/sampler.h"
#include "engine/staging.h"
#include "rais/pt.h"
#include "rais/rais_sampler.h"
#include "rais/trace.h"

namespace raisin::rais {

class DeviceRaisSampler : public Sampler {
 public:
  DeviceRaisSampler(int64_t count, uint64_t seed, Device device, RaisOptions options = {});
  ~DeviceRaisSampler() override;
  std::string name() const override { return "rais"; }

  bool draws_on_device() const override { return true; }
  uint64_t prepare_on_device(int64_t step, int batch) override;
  DeviceDraw draw_on_device() override;
  void observe_on_device(const DeviceObservation& observation) override;
  const double* device_lr_multiplier() const override;
  double max_lr_multiplier() const override { return options_.gain_ratio.max; }

  // The host interface: draw() prepares and runs the device draw and copies it back; observe()
  // cannot be served (the gain ratio needs the step's dlogits) and throws; lr_multiplier() reads r̂ back.
  void draw(int64_t step, int batch, std::vector<int32_t>& indices, std::vector<float>& weights) override;
  void observe(const Observation& observation) override;
  double lr_multiplier() const override;

  void save_state(SamplerState& state) const override;
  void load_state(const SamplerState& state) override;
  RaisStats stats() const;
  std::vector<double> probabilities() const;  // the current p (empty before the first build)

 private:
  // A PT solve launched at some step: the records it was given and what it returned.
  struct Solve {
    std::shared_ptr<const PtData> data;
    PtResult result;
  };
  void allocate(int batch);
  void rebuild(int64_t step);
  void build_from_features();
  void upload_c_d();
  void launch_solve(int64_t step);
  void start_solve(std::function<std::shared_ptr<const PtData>()> prepare, int64_t launched_at);
  void swap_in_solve();
  void write_trace(int64_t step);

  int64_t n_;
  uint64_t seed_;
  Device device_;
  RaisOptions options_;
  int batch_ = 0;
  int64_t steps_per_epoch_ = 0;
  ShuffledSampler shuffled_;
  bool importance_ = false;
  int64_t built_at_ = -1;
  std::vector<double> c_, d_;  // the (c, d) in use (on the device in c_device_, d_device_)

  // On the device: per example; p's alias table; (c, d); the gain ratio; the record ring; the prepared
  // step's number and first record slot (kernels read them there); its draw.
  Tensor last_norm_, last_seen_, features_, p_, prob_, alias_, workspace_;
  Tensor c_device_, d_device_, gain_, one_;
  Tensor record_features_, record_norms_, record_weights_;
  Tensor counters_;  // int64 {step, first record}
  Tensor indices_, weights_;
  int64_t capacity_ = 0, records_written_ = 0;
  std::unique_ptr<UploadRing> uploads_;
  std::vector<int32_t> host_indices_;
  std::vector<float> host_weights_;

  // PT: the pinned snapshot a launch copies into, and the solve in flight.
  struct Pinned {
    Device device;
    void* data = nullptr;
    size_t bytes = 0;
    ~Pinned();
  };
  std::unique_ptr<Pinned> snapshot_;
  std::shared_future<Solve> pending_;
  int64_t pending_ready_at_ = -1, pending_launched_at_ = -1;
  PtResult last_solve_;
  int64_t solves_ = 0, failed_solves_ = 0;

  std::unique_ptr<TraceWriter> trace_;
  struct SwappedSolve {
    Solve solve;
    int64_t launched_at = -1;
  };
  std::unique_ptr<SwappedSolve> to_trace_;
};

}  // namespace raisin::rais
