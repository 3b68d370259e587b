// The training step and evaluation.
#include "engine/trainer.h"

#include <algorithm>
#include <cmath>

#include "engine/backend.h"
#include "engine/device_data.h"
#include "engine/ops.h"

namespace raisin {

namespace {

// Σ_i ω_i · [argmax z_i = y_i] (ω ≡ 1 when weights is null): with importance weights, divided by B,
// an unbiased estimate of the accuracy over the whole training set, as the weighted loss is of its loss.
double count_correct(const Tensor& logits, const int32_t* labels, const float* weights = nullptr) {
  const int64_t batch = logits.size(0), classes = logits.size(1);
  const float* z = logits.f32();
  double correct = 0;
  for (int64_t i = 0; i < batch; ++i) {
    const float* row = z + i * classes;
    int64_t best = 0;
    for (int64_t k = 1; k < classes; ++k)
      if (row[k] > row[best]) best = k;
    if (best == labels[i]) correct += weights ? weights[i] : 1.0;
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
void for_each_batch(Module& model, const Dataset& data, const Normalization& normalization, int batch, Visit visit) {
  if (batch < 1) throw error("evaluate: batch size ", batch, " must be at least 1");
  const Device device = model.device();
  const DeviceData on_device(data, normalization, device);
  Arena arena(0, device);
  std::vector<int32_t> indices;
  for (int64_t start = 0; start < data.count; start += batch) {
    const int n = int(std::min<int64_t>(batch, data.count - start));
    indices.resize(n);
    for (int i = 0; i < n; ++i) indices[i] = int32_t(start + i);
    arena.reset();
    Tensor x, y;
    on_device.gather(arena, indices, 0, false, 0, 0, x, y);
    Context ctx{.arena = &arena, .training = false};
    Var logits = model.forward(ctx, constant(x));
    const LossOutput loss = softmax_cross_entropy(ctx, logits, y, Tensor());
    visit(start, logits->value.to(Device::cpu()), data.labels.data() + start, loss);
  }
}

}  // namespace

Evaluation evaluate(Module& model, const Dataset& data, const Normalization& normalization, int batch) {
  double loss_sum = 0;
  int64_t correct = 0;
  for_each_batch(model, data, normalization, batch,
                 [&](int64_t, const Tensor& logits, const int32_t* labels, const LossOutput& loss) {
                   loss_sum += double(loss.mean_loss->value.to(Device::cpu()).f32()[0]) * double(logits.size(0));
                   correct += int64_t(count_correct(logits, labels));
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
  for_each_batch(model, data, normalization, batch,
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
      data_(train, normalization, model.device()),
      arena_(0, model.device()) {
  if (options.batch < 1) throw error("train: batch size ", options.batch, " must be at least 1");
  if (options.batch > train.count)
    throw error("train: batch size ", options.batch, " is larger than the training set (", train.count,
                " examples); use --batch ", train.count, " or less");
  if (options.crop_padding < 0) throw error("train: crop padding ", options.crop_padding, " must not be negative");
}

StepResult Trainer::step() {
  arena_.reset();
  sampler_.draw(step_, options_.batch, indices_, weights_);
  Tensor x, y;
  data_.gather(arena_, indices_, options_.crop_padding, options_.flip, options_.seed, uint64_t(step_), x, y);
  Tensor weights;
  if (!weights_.empty()) {
    weights = Tensor::empty(arena_, {options_.batch});
    backend(arena_.device()).copy_to_device(weights.f32(), weights_.data(), weights_.size() * sizeof(float));
  }

  Tape tape(&arena_);
  Context ctx{.tape = &tape, .arena = &arena_, .training = true, .seed = options_.seed, .step = uint64_t(step_)};
  Var logits = model_.forward(ctx, constant(x));
  LossOutput loss = softmax_cross_entropy(ctx, logits, y, weights);
  const float loss_value = loss.mean_loss->value.to(Device::cpu()).f32()[0];
  if (!std::isfinite(loss_value))
    throw error("train: the loss became ", loss_value, " at step ", step_, "; lower the learning rate");
  optimizer_.zero_grad();
  tape.backward(loss.mean_loss);

  const double multiplier = sampler_.lr_multiplier();
  const float lr = float(multiplier * options_.schedule.lr(progress_));
  optimizer_.step(lr);
  const Tensor proxy_norms = loss.proxy_norm.to(Device::cpu());
  sampler_.observe({step_, indices_, proxy_norms.f32(), weights_.empty() ? nullptr : weights_.data(),
                    bias_gradient_sq_norm(logits->grad.to(Device::cpu()))});

  labels_.resize(indices_.size());
  for (size_t i = 0; i < indices_.size(); ++i) labels_[i] = train_.labels[size_t(indices_[i])];
  const double correct = count_correct(logits->value.to(Device::cpu()), labels_.data(),
                                       weights_.empty() ? nullptr : weights_.data());
  StepResult result{step_, loss_value, correct / options_.batch, lr, multiplier};
  progress_ += multiplier * options_.batch / double(train_.count);
  ++step_;
  return result;
}

void Trainer::restore(int64_t steps, double progress) {
  step_ = steps;
  progress_ = progress;
}

}  // namespace raisin
