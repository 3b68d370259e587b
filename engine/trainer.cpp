// The training step and evaluation.
#include "engine/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "engine/backend.h"
#include "engine/device_data.h"
#include "engine/ops.h"

namespace raisin {

namespace {

// How many rows of logits have their first maximum at the label.
int64_t count_correct(const Tensor& logits, const int32_t* labels) {
  const int64_t batch = logits.size(0), classes = logits.size(1);
  const float* z = logits.f32();
  int64_t correct = 0;
  for (int64_t i = 0; i < batch; ++i) {
    const float* row = z + i * classes;
    int64_t best = 0;
    for (int64_t k = 1; k < classes; ++k)
      if (row[k] > row[best]) best = k;
    correct += best == labels[i];
  }
  return correct;
}

// ‖Σ_i dlogits_i‖²: the squared norm of the gradient of the last layer's bias, since the loss is the
// only consumer of the logits and its backward wrote dlogits_i = ω_i (softmax − onehot) / B.
double bias_gradient_sq_norm(const Tensor& dlogits) {
  const int64_t batch = dlogits.size(0), classes = dlogits.size(1);
  const float* d = dlogits.f32();
  double total = 0;
  for (int64_t k = 0; k < classes; ++k) {
    double column = 0;
    for (int64_t i = 0; i < batch; ++i) column += d[i * classes + k];
    total += column * column;
  }
  return total;
}

// Runs `model` in evaluation mode over all of `data` in order, `batch` examples at a time, and hands
// each batch's first example index, logits, labels and loss to `visit`.
// The model runs where its parameters are; `visit` gets host copies (the tensors themselves on the cpu)
// of the logits and of the loss outputs it reads, and the batch's labels.
template <typename Visit>
void for_each_batch(Module& model, const DeviceData& on_device, int batch, Visit visit) {
  if (batch < 1) throw error("evaluate: batch size ", batch, " must be at least 1");
  const Device device = model.device();
  if (!(on_device.device() == device))
    throw error("evaluate: the data is on ", on_device.device().str(), " but the model on ", device.str());
  const Dataset& data = on_device.data();
  Arena arena(0, device);
  std::vector<int32_t> indices;
  for (int64_t start = 0; start < data.count; start += batch) {
    const int n = int(std::min<int64_t>(batch, data.count - start));
    indices.resize(n);
    for (int i = 0; i < n; ++i) indices[i] = int32_t(start + i);
    arena.reset();
    Tensor x, y;
    on_device.gather(arena, indices, 0, false, 0, nullptr, x, y);
    Context ctx{.arena = &arena, .training = false};
    Var logits = model.forward(ctx, constant(x));
    const LossOutput loss = softmax_cross_entropy(ctx, logits, y, Tensor());
    visit(start, logits->value.to(Device::cpu()), data.labels.data() + start, loss);
  }
}

}  // namespace

Evaluation evaluate(Module& model, const Dataset& data, const Normalization& normalization, int batch) {
  return evaluate(model, DeviceData(data, normalization, model.device()), batch);
}

Evaluation evaluate(Module& model, const DeviceData& on_device, int batch) {
  const Dataset& data = on_device.data();
  double loss_sum = 0;
  int64_t correct = 0;
  for_each_batch(model, on_device, batch,
                 [&](int64_t, const Tensor& logits, const int32_t* labels, const LossOutput& loss) {
                   loss_sum += double(loss.mean_loss->value.to(Device::cpu()).f32()[0]) * double(logits.size(0));
                   correct += count_correct(logits, labels);
                 });
  Evaluation result;
  result.count = data.count;
  result.loss = data.count ? loss_sum / double(data.count) : 0;
  result.accuracy = data.count ? double(correct) / double(data.count) : 0;
  return result;
}

double proxy_norms(Module& model, const Dataset& data, const Normalization& normalization, std::vector<float>& norms,
                   int batch) {
  norms.resize(size_t(data.count));
  std::vector<double> gradient(size_t(data.classes), 0.0);
  for_each_batch(model, DeviceData(data, normalization, model.device()), batch,
                 [&](int64_t start, const Tensor& logits, const int32_t*, const LossOutput& loss) {
                   const int64_t n = logits.size(0);
                   std::copy_n(loss.proxy_norm.to(Device::cpu()).f32(), n, norms.begin() + start);
                   const Tensor dlogits = loss.dlogits.to(Device::cpu());
                   const float* d = dlogits.f32();  // (softmax − onehot) / n per row
                   for (int64_t i = 0; i < n; ++i)
                     for (int k = 0; k < data.classes; ++k) gradient[k] += double(d[i * data.classes + k]) * double(n);
                 });
  double total = 0;
  for (double g : gradient) total += (g / double(data.count)) * (g / double(data.count));
  return total;
}

Trainer::Trainer(Module& model, const Dataset& train, const Normalization& normalization, Sampler& sampler,
                 TrainOptions options)
    : model_(model),
      train_(train),
      sampler_(sampler),
      options_(options),
      optimizer_(model.named_parameters(), options.sgd),
      normalization_(normalization),
      device_(model.device()),
      data_(train, normalization, model.device()),
      arena_(0, model.device()),
      uploads_(model.device(),
               std::max({size_t(std::max(options.batch, 1)) * sizeof(int32_t), sizeof(double),
                         kStepInputCount * sizeof(int64_t)})) {
  if (options.batch < 1) throw error("train: batch size ", options.batch, " must be at least 1");
  if (options.batch > train.count)
    throw error("train: batch size ", options.batch, " is larger than the training set (", train.count,
                " examples); use --batch ", train.count, " or less");
  if (options.crop_padding < 0) throw error("train: crop padding ", options.crop_padding, " must not be negative");
  scalars_ = Tensor::zeros({kernels::kStepScalarCount}, DType::f64, device_);
  lr_ = Tensor::zeros({1}, DType::f32, device_);
  host_multiplier_ = Tensor::zeros({1}, DType::f64, device_);
  metrics_ = Tensor::zeros({kMaxQueued, kernels::kStepMetricCount}, DType::f64, device_);
  inputs_ = Tensor::zeros({kStepInputCount}, DType::i64, device_);
  skip_ = Tensor::zeros({1}, DType::i32, device_);
  host_indices_ = Tensor::zeros({options.batch}, DType::i32, device_);
  host_weights_ = Tensor::zeros({options.batch}, DType::f32, device_);
}

uint64_t Trainer::prepare(int64_t step) {
  const int64_t inputs[kStepInputCount] = {step, queued_};
  uploads_.upload(inputs_.i64(), inputs, sizeof inputs);
  uint64_t form = 0;
  if (sampler_.draws_on_device()) {
    form = sampler_.prepare_on_device(step, options_.batch);
  } else {
    sampler_.draw(step, options_.batch, indices_, weights_);
    if (int64_t(indices_.size()) != options_.batch || (!weights_.empty() && weights_.size() != indices_.size()))
      throw error("train: sampler ", sampler_.name(), " drew ", indices_.size(), " examples and ", weights_.size(),
                  " weights for a batch of ", options_.batch);
    uploads_.upload(host_indices_.i32(), indices_.data(), indices_.size() * sizeof(int32_t));
    if (!weights_.empty()) uploads_.upload(host_weights_.f32(), weights_.data(), weights_.size() * sizeof(float));
    form = weights_.empty() ? 0 : 1;
  }
  // r̂ from the sampler's device memory, or its host value (uploaded when it changes; on the cpu, passed
  // to schedule_step as it is).
  multiplier_ = sampler_.device_lr_multiplier();
  fallback_multiplier_ = multiplier_ ? 1.0 : sampler_.lr_multiplier();
  if (!multiplier_ && !device_.is_cpu()) {
    if (fallback_multiplier_ != uploaded_multiplier_) {  // uniform samplers: once
      uploads_.upload(host_multiplier_.f64(), &fallback_multiplier_, sizeof fallback_multiplier_);
      uploaded_multiplier_ = fallback_multiplier_;
    }
    multiplier_ = host_multiplier_.f64();
  }
  return form;
}

LossOutput Trainer::queue_device_work() {
  const Backend& b = backend(device_);
  const int64_t* step = inputs_.i64() + kInputStep;
  arena_.reset();
  host_updates_.clear();
  const DeviceDraw drawn = sampler_.draws_on_device()
                               ? sampler_.draw_on_device()
                               : DeviceDraw{host_indices_, weights_.empty() ? Tensor() : host_weights_};
  Tensor x, y;
  data_.gather(arena_, drawn.indices, options_.crop_padding, options_.flip, options_.seed, step, x, y);

  Tape tape(&arena_);
  Context ctx{.tape = &tape,
              .arena = &arena_,
              .training = true,
              .seed = options_.seed,
              .step = step,
              .host_updates = &host_updates_};
  Var logits = model_.forward(ctx, constant(x));
  LossOutput loss = softmax_cross_entropy(ctx, logits, y, drawn.weights);
  optimizer_.zero_grad();
  tape.backward(loss.mean_loss);
  // The loss and every gradient checked for NaN and infinities: a step that has one is not applied.
  checked_.clear();
  checked_.push_back({loss.mean_loss->value.f32(), 1});
  for (const auto& [name, p] : optimizer_.parameters()) checked_.push_back({p->grad.f32(), p->grad.numel()});
  b.find_nonfinite(checked_.data(), int(checked_.size()), inputs_.i64() + kInputMetricsRow, metrics_.f64(),
                   skip_.i32());

  // lr = r̂ · schedule(progress) and progress += r̂ · B/n, on the device.
  b.schedule_step(options_.schedule.kernel_form(), double(options_.batch) / double(train_.count), multiplier_,
                  fallback_multiplier_, scalars_.f64(), lr_.f32());
  optimizer_.step(lr_.f32(), skip_.i32());
  const kernels::LossShape shape{options_.batch, int(logits->value.size(1))};
  b.step_metrics(shape, logits->value.f32(), y.i32(), drawn.weights.defined() ? drawn.weights.f32() : nullptr,
                 loss.mean_loss->value.f32(), lr_.f32(), scalars_.f64(), inputs_.i64() + kInputMetricsRow,
                 metrics_.f64());
  if (sampler_.draws_on_device()) sampler_.observe_on_device({drawn, loss.proxy_norm, loss.dlogits, skip_.i32()});
  return loss;
}

// Tells a host sampler that wants it what the step measured, as host copies (a wait for the device, once
// per step; the uniform samplers want nothing).
void Trainer::observe_on_host(int64_t step, const LossOutput& loss) {
  if (skip_.to(Device::cpu()).i32()[0] != 0) return;  // a step with a non-finite value teaches nothing
  const Tensor proxy_norms = loss.proxy_norm.to(Device::cpu());
  sampler_.observe({step, indices_, proxy_norms.f32(), weights_.empty() ? nullptr : weights_.data(),
                    bias_gradient_sq_norm(loss.dlogits.to(Device::cpu()))});
}

void Trainer::queue_step() {
  if (queued_ >= kMaxQueued) throw error("train: ", queued_, " steps queued; drain() them first");
  const int64_t step = step_ + queued_;
  const uint64_t form = prepare(step);
  if (!queue_as_graph(form)) {
    const LossOutput loss = queue_device_work();
    if (!sampler_.draws_on_device() && sampler_.observes()) observe_on_host(step, loss);
  }
  for (const auto& update : host_updates_) update();
  ++queued_;
}

bool Trainer::queue_as_graph(uint64_t form) {
  const Backend& b = backend(device_);
  if (!options_.cuda_graphs || !b.capture_graph || !graph_stats_.off_reason.empty()) return false;
  if (!sampler_.draws_on_device() && sampler_.observes()) return false;  // it reads each step on the host
  if (form != last_form_) {  // a graph holds the work of one form: last_form_'s
    drop_graph();
    last_form_ = form;
    steps_of_form_ = 0;
  }
  ++steps_of_form_;
  if (!graph_) {
    if (steps_of_form_ <= kEagerStepsBeforeCapture) return false;
    std::string why;
    graph_ = b.capture_graph([this] { queue_device_work(); }, why);
    if (!graph_) {
      graph_stats_.off_reason = why.empty() ? "the capture failed" : why;
      std::fprintf(stderr, "raisin: CUDA graphs off (%s); the steps run without them\n",
                   graph_stats_.off_reason.c_str());
      return false;
    }
    ++graph_stats_.captures;
  }
  b.launch_graph(graph_);
  ++graph_stats_.replays;
  return true;
}

// The graph's work reads the arena's blocks; an eager step resets the arena, so the graph goes first.
void Trainer::drop_graph() {
  if (graph_) backend(device_).destroy_graph(graph_);
  graph_ = nullptr;
}

Trainer::~Trainer() {
  try {
    drop_graph();
  } catch (...) {  // a destructor cannot report a failing device; its first error has been reported
  }
}

std::vector<StepResult> Trainer::drain() {
  std::vector<StepResult> results;
  if (queued_ == 0) return results;
  metrics_host_.resize(size_t(queued_) * kernels::kStepMetricCount);
  backend(device_).copy_to_host(metrics_host_.data(), metrics_.f64(), metrics_host_.size() * sizeof(double));
  for (int64_t q = 0; q < queued_; ++q) {
    const double* row = &metrics_host_[size_t(q) * kernels::kStepMetricCount];
    StepResult r;
    r.step = step_ + q;
    r.loss = row[kernels::kMetricLoss];
    r.accuracy = row[kernels::kMetricAccuracy];
    r.lr = float(row[kernels::kMetricLr]);
    r.lr_multiplier = row[kernels::kMetricMultiplier];
    r.progress = row[kernels::kMetricProgress];
    r.fault = int(row[kernels::kMetricFaultBuffer]);
    r.fault_value = row[kernels::kMetricFaultValue];
    results.push_back(r);
  }
  step_ += queued_;
  progress_ = results.back().progress;
  queued_ = 0;
  return results;
}

Evaluation Trainer::evaluate(const Dataset& data, int batch) {
  if (&data == &train_) return raisin::evaluate(model_, data_, batch);
  if (!eval_data_ || &eval_data_->data() != &data)
    eval_data_ = std::make_unique<DeviceData>(data, normalization_, device_);
  return raisin::evaluate(model_, *eval_data_, batch);
}

StepResult Trainer::step() {
  queue_step();
  const StepResult r = drain().back();
  if (const std::string fault = describe_fault(r); !fault.empty())
    throw error("train: ", fault, "; the step was not applied; lower the learning rate");
  return r;
}

std::string Trainer::describe_fault(const StepResult& r) const {
  if (r.fault < 0) return "";
  std::ostringstream out;
  out << "step " << r.step << ": ";
  if (r.fault == 0) out << "the loss";
  else out << "the gradient of " << optimizer_.parameters()[size_t(r.fault - 1)].first;
  out << " is ";
  if (std::isnan(r.fault_value)) out << "NaN";  // whatever its sign bit
  else out << r.fault_value;                     // inf or -inf
  return out.str();
}

int64_t Trainer::steps_before(double epochs) const {
  if (queued_ != 0) throw error("train: steps_before needs the queued steps drained first");
  const double per_step = sampler_.max_lr_multiplier() * double(options_.batch) / double(train_.count);
  const double room = epochs - 1e-9 - progress_;
  if (!(per_step > 0) || !std::isfinite(per_step) || room <= 0) return 1;
  // k − 1 steps of at most per_step each stay below the boundary: k = ⌈room/per_step⌉, with a margin
  // far above the rounding of the device's running sum.
  const double k = std::ceil(room / per_step - 1e-6);
  return int64_t(std::clamp(k, 1.0, double(kMaxQueued)));
}

void Trainer::restore(int64_t steps, double progress) {
  if (queued_ != 0) throw error("train: restore needs the queued steps drained first");
  step_ = steps;
  progress_ = progress;
  const double scalars[kernels::kStepScalarCount] = {progress, 1.0};
  backend(device_).copy_to_device(scalars_.f64(), scalars, sizeof scalars);
}

}  // namespace raisin
