// Sampler: decides which examples each training step sees and with what importance weight. The
// engine's training loop talks only to this interface; the uniform samplers live here, the importance
// samplers (RAIS) in rais/.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/memory.h"
#include "engine/tensor.h"

namespace raisin {

// Everything an adaptive sampler needs to continue a stopped run exactly (RAIS: per-example state,
// records, gain-ratio moments, the pending PT solve), as checkpoints store it (engine/checkpoint.h):
// float and integer arrays become F32 and I64 tensors, reals (short lists of doubles) exact decimal
// text in the metadata. The lookups throw raisin::Error naming the entry when it is missing or has
// another size.
struct SamplerState {
  std::map<std::string, std::vector<float>> floats;
  std::map<std::string, std::vector<int64_t>> integers;
  std::map<std::string, std::vector<double>> reals;

  bool empty() const { return floats.empty() && integers.empty() && reals.empty(); }
  // size < 0: any size.
  const std::vector<float>& float_array(const std::string& key, int64_t size = -1) const;
  const std::vector<int64_t>& integer_array(const std::string& key, int64_t size = -1) const;
  const std::vector<double>& real_array(const std::string& key, int64_t size = -1) const;
  int64_t integer(const std::string& key) const { return integer_array(key, 1)[0]; }
  double real(const std::string& key) const { return real_array(key, 1)[0]; }
};

// What a training step learned about the examples it drew, for samplers that adapt (RAIS).
struct Observation {
  int64_t step;
  const std::vector<int32_t>& indices;  // the drawn examples, duplicates included
  const float* proxy_norms;             // ṽ_i = ‖softmax(z_i) − onehot(y_i)‖₂ per drawn example
  const float* weights;                 // ω_i used in the step; null when every ω is 1
  double bias_gradient_sq_norm;         // ‖ĝ‖², ĝ = (1/B) Σ ω_i (softmax(z_i) − onehot(y_i))
};

// A step's draw where the step runs (samplers that draw on the training device).
struct DeviceDraw {
  Tensor indices;  // int32 [batch]
  Tensor weights;  // f32 [batch]; undefined when every ω is 1
};

// What a training step measured, on the training device.
struct DeviceObservation {
  const DeviceDraw& draw;
  Tensor proxy_norms;  // f32 [batch]: ṽ_i
  Tensor dlogits;      // f32 [batch, classes]: ω_i (softmax(z_i) − onehot(y_i)) / B, the fused loss's
  // An int32 on the device, or null: nonzero when the step held a non-finite value (its loss or a
  // gradient); the step is then not applied and the sampler must not learn from it.
  const int32_t* skip = nullptr;
};

class Sampler {
 public:
  virtual ~Sampler() = default;
  virtual std::string name() const = 0;
  // Fills indices[0..batch) for step `step` and, for importance samplers, weights[0..batch)
  // (ω_i = 1/(n·p_i)); leaves weights empty when every ω is 1.
  virtual void draw(int64_t step, int batch, std::vector<int32_t>& indices, std::vector<float>& weights) = 0;
  // Called after each step's backward pass with what the step measured.
  virtual void observe(const Observation& /*observation*/) {}
  // The learning-rate multiplier for the step just drawn (r̂ for RAIS; 1 for uniform sampling).
  virtual double lr_multiplier() const { return 1.0; }
  // Checkpointing, between steps: save_state writes everything the sampler's future draws, weights
  // and multipliers depend on; load_state, on a sampler made with the same settings, restores it so
  // that the run continues bit for bit. Stateless samplers (the uniform ones) keep the defaults.
  virtual void save_state(SamplerState& /*state*/) const {}
  virtual void load_state(const SamplerState& /*state*/) {}

  // ---- for the trainer on a GPU ----
  // Whether observe() uses what it is given (the trainer copies a step's measurements back to the host
  // only for samplers that do).
  virtual bool observes() const { return false; }
  // An upper bound on lr_multiplier() over the steps to come: the trainer queues steps without reading
  // their progress back as long as none but the last can reach an epoch boundary.
  virtual double max_lr_multiplier() const { return 1.0; }
  // Samplers that keep their state on the training device (RAIS on a GPU) say so and draw, observe and
  // hold their multiplier there; the trainer uploads the host draws of all others.
  virtual bool draws_on_device() const { return false; }
  // Their share of a step comes in two parts, so that the trainer can capture the second in a CUDA graph
  // and replay it at later steps:
  // prepare_on_device(step, batch) does what needs the host (decisions, uploads, work queued on some
  // steps only) and writes the step's values into the sampler's device memory; it returns the step's
  // form, a number that changes whenever the work of the two calls below would change other than
  // through values in device memory.
  virtual uint64_t prepare_on_device(int64_t step, int batch);
  // The prepared step's indices and weights: kernel launches only, the same at every step of one form,
  // into tensors that stay where they are.
  virtual DeviceDraw draw_on_device();
  // After the step's loss, likewise kernel launches only.
  virtual void observe_on_device(const DeviceObservation& /*observation*/) {}
  // The learning-rate multiplier of the step just drawn, a double in device memory that the step's
  // schedule_step kernel reads.
  virtual const double* device_lr_multiplier() const { return nullptr; }
};

// Plain SGD's order: the training set as an endless stream of epochs, each a fresh permutation drawn
// from (seed, epoch); step s takes positions [s·B, (s+1)·B) of that stream, so every batch is full,
// batches may straddle epochs, and any step can be drawn without replaying the ones before (exact
// resume).
class ShuffledSampler : public Sampler {
 public:
  ShuffledSampler(int64_t count, uint64_t seed);
  std::string name() const override { return "uniform"; }
  void draw(int64_t step, int batch, std::vector<int32_t>& indices, std::vector<float>& weights) override;

 private:
  const std::vector<int32_t>& permutation(int64_t epoch);
  int64_t count_;
  uint64_t seed_;
  int64_t cached_epoch_ = -1;
  std::vector<int32_t> cached_;
};

// Uniform sampling with replacement (RAIS.md §6 `uniform-iid`, an ablation): draw j of step s is
// example ⌊u·n⌋ for a 64-bit Philox number u ∈ [0, 1) keyed by (seed, s, j).
class UniformIidSampler : public Sampler {
 public:
  UniformIidSampler(int64_t count, uint64_t seed);
  std::string name() const override { return "uniform-iid"; }
  void draw(int64_t step, int batch, std::vector<int32_t>& indices, std::vector<float>& weights) override;

 private:
  int64_t count_;
  uint64_t seed_;
};

}  // namespace raisin
