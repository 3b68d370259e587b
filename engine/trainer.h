// One model, one dataset, one sampler, on the model's device (move the model first, Module::to): the
// training step (draw, gather and augment, forward, fused loss, backward, SGD at r̂ · lr_schedule(progress))
// and evaluation. Progress is counted in epochs
// (epochs-equivalent for importance samplers: each step adds r̂ · B / n). Activations live in an arena
// reset every step, so after the first step a step allocates nothing.
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "engine/dataset.h"
#include "engine/device_data.h"
#include "engine/module.h"
#include "engine/ops.h"
#include "engine/optim.h"
#include "engine/sampler.h"
#include "engine/schedule.h"
#include "engine/staging.h"

namespace raisin {

struct TrainOptions {
  int batch = 128;
  Schedule schedule;
  SgdOptions sgd;
  uint64_t seed = 1;  // dropout and augmentation draws
  int crop_padding = 0;  // random crop after zero padding by this many pixels (0: off)
  bool flip = false;     // random horizontal flips
  bool cuda_graphs = true;  // replay the step's device work from a CUDA graph where the device has them
};

struct StepResult {
  int64_t step = 0;          // index of the step
  double loss = 0;           // weighted mean loss of the batch
  double accuracy = 0;       // fraction of the batch classified correctly (importance-weighted, like the loss)
  float lr = 0;              // learning rate applied
  double lr_multiplier = 1;  // r̂
  double progress = 0;       // epochs (-equivalent) after the step
  // The step's first non-finite value, when it had one (the step was then not applied: no update, and
  // the sampler did not learn from it): -1 for none, 0 for the loss, 1 + k for the gradient of the
  // optimizer's k-th parameter (Trainer::describe_fault names it).
  int fault = -1;
  double fault_value = 0;
};

struct Evaluation {
  double loss = 0;      // mean cross-entropy
  double accuracy = 0;  // fraction correct
  int64_t count = 0;
};

// Mean loss and accuracy of `model` in evaluation mode over all of `data`, in batches of `batch`.
Evaluation evaluate(Module& model, const Dataset& data, const Normalization& normalization, int batch = 500);
// The same over a dataset already on the model's device.
Evaluation evaluate(Module& model, const DeviceData& data, int batch = 500);

// Fresh proxy norms ṽ_i of every example of `data` (evaluation mode, no augmentation) into `norms`;
// returns ‖(1/n) Σ_i (softmax(z_i) − onehot(y_i))‖², the squared norm of the full-data gradient of the
// last layer's bias. The oracle sampler's view of the training set.
double proxy_norms(Module& model, const Dataset& data, const Normalization& normalization, std::vector<float>& norms,
                   int batch = 500);

// The step runs where the model is and, on a GPU, never waits for the host: the sampler draws there
// (or its host draws are uploaded through a pinned ring), the learning rate and progress are computed
// there (schedule_step) and each step's metrics go to a ring in device memory (step_metrics) that the
// host reads when it drains the queued steps.
//
// A step has two parts: prepare() does the host's share (the sampler's decisions and uploads, the
// step's number and metrics row uploaded into device memory), queue_device_work() queues the rest
// (draw, gather, forward, loss, backward, schedule, update, metrics, observation) as kernel launches whose
// host arguments are the same at every step of one form; whatever changes from step to step they read
// from device memory.
//
// On a device with CUDA graphs the trainer runs the device work of kEagerStepsBeforeCapture steps of a
// form as it comes (the first sets up the arena, cuDNN's plans and the caches), then captures the next
// one into a graph and from then on replays that graph while the form stays the same (a new form, such
// as RAIS leaving its warm-up, starts over). A host sampler that observes its steps keeps the eager path.
// If the device refuses the capture, the step runs eagerly, the reason is printed once to stderr and
// the run goes on without graphs; the results are the same either way.
class Trainer {
 public:
  Trainer(Module& model, const Dataset& train, const Normalization& normalization, Sampler& sampler,
          TrainOptions options);

  // Queues one step (on a GPU: returns before it has run). At most kMaxQueued steps between drains.
  void queue_step();
  // Waits for the queued steps and returns their results in order (look at their faults).
  std::vector<StepResult> drain();
  // queue_step() and drain(): one step, waited for; throws when it had a non-finite value.
  StepResult step();
  // "" for a step without a fault, else e.g. "step 12: the gradient of fc2.weight is nan".
  std::string describe_fault(const StepResult& result) const;
  static constexpr int kMaxQueued = 256;
  int64_t queued() const { return queued_; }
  // How many steps may be queued now (1 to kMaxQueued) so that none but the last can bring progress()
  // to `epochs` (within 1e-9): the bound uses the sampler's max_lr_multiplier(). Needs an empty queue.
  int64_t steps_before(double epochs) const;

  // Evaluates the model on the training set's device copy, or on another dataset's, uploaded on its
  // first evaluation and kept for the next (the test set each epoch).
  Evaluation evaluate(const Dataset& data, int batch = 500);

  // Steps taken and progress (epochs, or epochs-equivalent) as of the last drain.
  int64_t steps() const { return step_; }
  double progress() const { return progress_; }
  // Where to continue from (used by resume, with the model and optimizer state restored).
  void restore(int64_t steps, double progress);
  Sgd& optimizer() { return optimizer_; }
  const Arena& arena() const { return arena_; }

  static constexpr int kEagerStepsBeforeCapture = 2;
  struct GraphStats {
    int64_t captures = 0;  // graphs captured
    int64_t replays = 0;   // steps queued as a graph replay (the captured step included)
    std::string off_reason;  // why graphs are not used ("" while they are, or may be)
  };
  const GraphStats& graph_stats() const { return graph_stats_; }
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

 private:
  // The host's share of step `step`; returns the step's form (Sampler::prepare_on_device).
  uint64_t prepare(int64_t step);
  // The step's device work, after prepare(); returns its loss (for host samplers that observe).
  LossOutput queue_device_work();
  void observe_on_host(int64_t step, const LossOutput& loss);
  // Queues the prepared step of form `form` as a graph replay; false when it must run eagerly.
  bool queue_as_graph(uint64_t form);
  void drop_graph();

  Module& model_;
  const Dataset& train_;
  Sampler& sampler_;
  TrainOptions options_;
  Sgd optimizer_;
  Normalization normalization_;
  Device device_;
  DeviceData data_;  // the training set on the model's device
  std::unique_ptr<DeviceData> eval_data_;  // the last other dataset evaluated, on the model's device
  Arena arena_;      // on the model's device
  UploadRing uploads_;  // host draws (and a host-known multiplier) to the device
  Tensor scalars_;   // f64 [kStepScalarCount]: progress and the last multiplier (kernels/shapes.h)
  Tensor lr_;        // f32 [1]: the learning rate of the step being queued
  Tensor host_multiplier_;  // f64 [1]: a host sampler's multiplier, uploaded when it changes
  double uploaded_multiplier_ = std::numeric_limits<double>::quiet_NaN();
  Tensor metrics_;   // f64 [kMaxQueued, kStepMetricCount]: the queued steps' metrics
  // int64 {step, metrics row} of the step being queued, read by its kernels.
  enum StepInput { kInputStep, kInputMetricsRow, kStepInputCount };
  Tensor inputs_;
  Tensor skip_;  // int32 [1]: find_nonfinite's verdict on the step being queued
  Tensor host_indices_, host_weights_;  // a host sampler's draw, uploaded (int32, f32 [batch])
  const double* multiplier_ = nullptr;  // where schedule_step reads r̂ (null: fallback_multiplier_)
  double fallback_multiplier_ = 1;
  void* graph_ = nullptr;  // the captured device work of form last_form_ (Backend::capture_graph)
  uint64_t last_form_ = 0;
  int64_t steps_of_form_ = 0;  // consecutive steps of last_form_ so far
  GraphStats graph_stats_;
  // The host-side changes of the step last run eagerly or captured, made once per step queued (Context).
  std::vector<std::function<void()>> host_updates_;
  std::vector<kernels::CheckTensor> checked_;  // the loss and the gradients, for find_nonfinite
  std::vector<int32_t> indices_;
  std::vector<float> weights_;
  std::vector<double> metrics_host_;
  int64_t step_ = 0, queued_ = 0;
  double progress_ = 0;
};

}  // namespace raisin
