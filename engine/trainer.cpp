// The training step and evaluation.
#include "engine/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/ops.h"
#include "kernels/cpu/kernels.h"

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

// x [B, C, H, W] (normalised, augmented when shape.pad/flip ask) and y [B] for the given examples,
// in the arena.
void gather(Arena& arena, const Dataset& data, const Normalization& normalization, const std::vector<int32_t>& indices,
            int crop_padding, bool flip, uint64_t seed, uint64_t stream, Tensor& x, Tensor& y) {
  const int batch = int(indices.size());
  x = Tensor::empty(arena, {batch, data.channels, data.height, data.width});
  y = Tensor::empty(arena, {batch}, DType::i32);
  float inv_std[16];
  for (int c = 0; c < data.channels && c < 16; ++c)
    inv_std[c] = normalization.stddev[c] > 0 ? 1.0f / normalization.stddev[c] : 1.0f;
  const kernels::GatherShape s{batch, data.channels, data.height, data.width, crop_padding, flip};
  cpu::gather_batch(s, data.images.data(), data.labels.data(), indices.data(), normalization.mean.data(), inv_std,
                    seed, stream, x.f32(), y.i32());
}

void check_normalization(const Dataset& data, const Normalization& normalization) {
  if (data.channels > 16) throw error("data ", data.name, ": ", data.channels, " channels; at most 16 are supported");
  if (int(normalization.mean.size()) != data.channels || int(normalization.stddev.size()) != data.channels)
    throw error("data ", data.name, ": normalisation has ", normalization.mean.size(), " channels, the images ",
                data.channels);
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
template <typename Visit>
void for_each_batch(Module& model, const Dataset& data, const Normalization& normalization, int batch, Visit visit) {
  check_normalization(data, normalization);
  if (batch < 1) throw error("evaluate: batch size ", batch, " must be at least 1");
  Arena arena;
  std::vector<int32_t> indices;
  for (int64_t start = 0; start < data.count; start += batch) {
    const int n = int(std::min<int64_t>(batch, data.count - start));
    indices.resize(n);
    for (int i = 0; i < n; ++i) indices[i] = int32_t(start + i);
    arena.reset();
    Tensor x, y;
    gather(arena, data, normalization, indices, 0, false, 0, 0, x, y);
    Context ctx{.arena = &arena, .training = false};
    Var logits = model.forward(ctx, constant(x));
    visit(start, logits->value, y, softmax_cross_entropy(ctx, logits, y, Tensor()));
  }
}

}  // namespace

Evaluation evaluate(Module& model, const Dataset& data, const Normalization& normalization, int batch) {
  double loss_sum = 0;
  int64_t correct = 0;
  for_each_batch(model, data, normalization, batch,
                 [&](int64_t, const Tensor& logits, const Tensor& y, const LossOutput& loss) {
                   loss_sum += double(loss.mean_loss->value.f32()[0]) * double(y.numel());
                   correct += int64_t(count_correct(logits, y.i32()));
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
                 [&](int64_t start, const Tensor&, const Tensor& y, const LossOutput& loss) {
                   const int64_t n = y.numel();
                   std::copy_n(loss.proxy_norm.f32(), n, norms.begin() + start);
                   const float* d = loss.dlogits.f32();  // (softmax − onehot) / n per row
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
      normalization_(normalization) {
  if (options.batch < 1) throw error("train: batch size ", options.batch, " must be at least 1");
  if (options.batch > train.count)
    throw error("train: batch size ", options.batch, " is larger than the training set (", train.count,
                " examples); use --batch ", train.count, " or less");
  check_normalization(train, normalization);
  if (options.crop_padding < 0) throw error("train: crop padding ", options.crop_padding, " must not be negative");
}

StepResult Trainer::step() {
  arena_.reset();
  sampler_.draw(step_, options_.batch, indices_, weights_);
  Tensor x, y;
  gather(arena_, train_, normalization_, indices_, options_.crop_padding, options_.flip, options_.seed,
         uint64_t(step_), x, y);
  Tensor weights;
  if (!weights_.empty()) {
    weights = Tensor::empty(arena_, {options_.batch});
    std::memcpy(weights.f32(), weights_.data(), weights_.size() * sizeof(float));
  }

  Tape tape(&arena_);
  Context ctx{.tape = &tape, .arena = &arena_, .training = true, .seed = options_.seed, .step = uint64_t(step_)};
  Var logits = model_.forward(ctx, constant(x));
  LossOutput loss = softmax_cross_entropy(ctx, logits, y, weights);
  const float loss_value = loss.mean_loss->value.f32()[0];
  if (!std::isfinite(loss_value))
    throw error("train: the loss became ", loss_value, " at step ", step_, "; lower the learning rate");
  optimizer_.zero_grad();
  tape.backward(loss.mean_loss);

  const double multiplier = sampler_.lr_multiplier();
  const float lr = float(multiplier * options_.schedule.lr(progress_));
  optimizer_.step(lr);
  sampler_.observe({step_, indices_, loss.proxy_norm.f32(), weights_.empty() ? nullptr : weights_.data(),
                    bias_gradient_sq_norm(logits->grad)});

  const double correct = count_correct(logits->value, y.i32(), weights_.empty() ? nullptr : weights_.data());
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
