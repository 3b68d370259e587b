// The RAIS sampler on the training device: the host-side schedule around the device kernels.
#include "rais/device_sampler.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "engine/backend.h"
#include "engine/error.h"
#include "rais/sampler_checkpoint.h"

namespace raisin::rais {

namespace {

template <typename T>
std::vector<T> read_back(const Tensor& tensor, T* (Tensor::*typed)() const) {
  std::vector<T> host(size_t(tensor.numel()));
  backend(tensor.device()).copy_to_host(host.data(), (tensor.*typed)(), host.size() * sizeof(T));
  return host;
}

template <typename T>
void write(Tensor& tensor, T* (Tensor::*typed)() const, const std::vector<T>& host) {
  if (int64_t(host.size()) != tensor.numel())
    throw error("rais: restoring ", host.size(), " values into ", tensor.str());
  backend(tensor.device()).copy_to_device((tensor.*typed)(), host.data(), host.size() * sizeof(T));
}

// GainRatio::State in the device layout of kernels/shapes.h (GainRatioSlot), and back.
std::vector<double> gain_to_device(const GainRatio::State& g) {
  return {g.m_u1, g.m_r1, g.m_r, g.decay, g.value, double(g.clamped), double(g.steps)};
}

GainRatio::State gain_from_device(const std::vector<double>& g) {
  return {g[kernels::kGainM_U1],  g[kernels::kGainM_R1], g[kernels::kGainM_R],
          g[kernels::kGainDecay], g[kernels::kGainValue], int64_t(g[kernels::kGainClamped]),
          int64_t(g[kernels::kGainSteps])};
}

}  // namespace

// Destructors cannot report failures (the device may be in error, with its first message on its way
// to the user): they wait and release, and ignore further errors.
DeviceRaisSampler::Pinned::~Pinned() {
  try {
    if (data) backend(device).release_pinned(data, bytes);
  } catch (...) {
  }
}

DeviceRaisSampler::DeviceRaisSampler(int64_t count, uint64_t seed, Device device, RaisOptions options)
    : n_(count), seed_(seed), device_(device), options_(std::move(options)), shuffled_(count, seed) {
  validate(options_);
  c_ = options_.initial_c;
  d_ = options_.initial_d;
  importance_ = !options_.shuffled_warmup;
  const Backend& b = backend(device);
  last_norm_ = Tensor::zeros({n_}, DType::f32, device);
  last_seen_ = Tensor::empty({n_}, DType::i64, device);
  write(last_seen_, &Tensor::i64, std::vector<int64_t>(size_t(n_), -1));
  features_ = Tensor::zeros({n_, kFeatureCount}, DType::f32, device);
  p_ = Tensor::zeros({n_}, DType::f64, device);
  prob_ = Tensor::zeros({n_}, DType::f64, device);
  alias_ = Tensor::zeros({n_}, DType::i32, device);
  workspace_ = Tensor::zeros({std::max<int64_t>(1, std::max(b.rais_distribution_workspace_doubles(n_),
                                                             b.alias_workspace_doubles(n_)))},
                             DType::f64, device);
  c_device_ = Tensor::zeros({kFeatureCount}, DType::f64, device);
  d_device_ = Tensor::zeros({kFeatureCount}, DType::f64, device);
  gain_ = Tensor::empty({kernels::kGainRatioStateSize}, DType::f64, device);
  write(gain_, &Tensor::f64, gain_to_device(GainRatio::State{}));
  one_ = Tensor::empty({1}, DType::f64, device);
  counters_ = Tensor::zeros({2}, DType::i64, device);
  write(one_, &Tensor::f64, std::vector<double>{1.0});
  if (!c_.empty()) {
    write(c_device_, &Tensor::f64, c_);
    write(d_device_, &Tensor::f64, d_);
  }
  if (!options_.trace_dir.empty()) trace_ = std::make_unique<TraceWriter>(options_.trace_dir);
}

DeviceRaisSampler::~DeviceRaisSampler() {
  if (pending_.valid()) pending_.wait();
  try {
    backend(device_).synchronize();  // no queued kernel or copy may outlive the buffers
  } catch (...) {
  }
}

void DeviceRaisSampler::allocate(int batch) {
  batch_ = batch;
  steps_per_epoch_ = steps_per_epoch(n_, batch);
  capacity_ = int64_t(options_.record_batches) * batch;
  record_features_ = Tensor::zeros({capacity_, kFeatureCount}, DType::f32, device_);
  record_norms_ = Tensor::zeros({capacity_}, DType::f32, device_);
  record_weights_ = Tensor::zeros({capacity_}, DType::f32, device_);
  indices_ = Tensor::zeros({batch}, DType::i32, device_);
  weights_ = Tensor::zeros({batch}, DType::f32, device_);
  uploads_ = std::make_unique<UploadRing>(device_, std::max(size_t(batch) * sizeof(int32_t),
                                                             kFeatureCount * sizeof(double)));
  // The PT snapshot: last_seen, last_norm, then the records (features, norms, weights).
  snapshot_ = std::make_unique<Pinned>();
  snapshot_->device = device_;
  snapshot_->bytes = size_t(capacity_) * (kFeatureCount + 2) * sizeof(float) + size_t(n_) * (sizeof(float) + sizeof(int64_t));
  snapshot_->data = backend(device_).allocate_pinned(snapshot_->bytes);
}

void DeviceRaisSampler::upload_c_d() {
  uploads_->upload(c_device_.f64(), c_.data(), kFeatureCount * sizeof(double));
  uploads_->upload(d_device_.f64(), d_.data(), kFeatureCount * sizeof(double));
}

void DeviceRaisSampler::rebuild(int64_t step) {
  backend(device_).rais_features(n_, last_norm_.f32(), last_seen_.i64(), counters_.i64(), steps_per_epoch_,
                                 features_.f32());
  build_from_features();
  built_at_ = step;
}

void DeviceRaisSampler::build_from_features() {
  const Backend& b = backend(device_);
  b.rais_distribution(n_, features_.f32(), c_device_.f64(), d_device_.f64(), options_.uniform_share, p_.f64(),
                      workspace_.f64());
  b.alias_build(n_, p_.f64(), prob_.f64(), alias_.i32(), workspace_.f64());
}

// Copies the records written so far and the per-example state into the pinned snapshot (queued behind
// the steps before), then starts a solve that waits for the copy and computes a = Σ_i s_i on the host.
void DeviceRaisSampler::launch_solve(int64_t step) {
  const int64_t count = std::min(records_written_, capacity_);
  if (count == 0) return;
  const Backend& b = backend(device_);
  int64_t* last_seen = static_cast<int64_t*>(snapshot_->data);  // 8-byte values first: all stay aligned
  float* last_norm = reinterpret_cast<float*>(last_seen + n_);
  float* features = last_norm + n_;
  float* norms = features + capacity_ * kFeatureCount;
  float* weights = norms + capacity_;
  b.copy_to_host_async(features, record_features_.f32(), size_t(count) * kFeatureCount * sizeof(float));
  b.copy_to_host_async(norms, record_norms_.f32(), size_t(count) * sizeof(float));
  b.copy_to_host_async(weights, record_weights_.f32(), size_t(count) * sizeof(float));
  b.copy_to_host_async(last_norm, last_norm_.f32(), size_t(n_) * sizeof(float));
  b.copy_to_host_async(last_seen, last_seen_.i64(), size_t(n_) * sizeof(int64_t));
  const uint64_t copied = b.fence();
  const Device device = device_;
  const int64_t n = n_, steps_per_epoch = steps_per_epoch_;
  start_solve(
      [=] {
        backend(device).fence_wait(copied);
        auto data = std::make_shared<PtData>();
        data->num_features = kFeatureCount;
        data->features.assign(features, features + count * kFeatureCount);
        data->v.assign(norms, norms + count);
        data->w.assign(weights, weights + count);
        data->a.resize(kFeatureCount);
        feature_sums(last_norm, last_seen, n, step, steps_per_epoch, data->a.data());
        return std::shared_ptr<const PtData>(std::move(data));
      },
      step);
}

void DeviceRaisSampler::start_solve(std::function<std::shared_ptr<const PtData>()> prepare, int64_t launched_at) {
  const PtOptions pt = options_.pt;
  const PtResult warm = last_solve_;
  auto solve = [prepare = std::move(prepare), pt, warm] {
    Solve s;
    s.data = prepare();
    s.result = solve_pt(*s.data, pt, warm.ok ? &warm : nullptr);
    return s;
  };
  if (options_.background_solve) {
    pending_ = std::async(std::launch::async, [solve = std::move(solve)] {
                 omp_set_num_threads(1);  // this thread's own OpenMP setting: the solve stays on it
                 return solve();
               }).share();
  } else {
    std::promise<Solve> solved;
    solved.set_value(solve());
    pending_ = solved.get_future().share();
  }
  pending_launched_at_ = launched_at;
  pending_ready_at_ = launched_at + options_.record_batches;
}

void DeviceRaisSampler::swap_in_solve() {
  Solve solve = pending_.get();
  pending_ = {};
  const int64_t launched_at = pending_launched_at_;
  pending_ready_at_ = pending_launched_at_ = -1;
  ++solves_;
  if (trace_) to_trace_ = std::make_unique<SwappedSolve>(SwappedSolve{solve, launched_at});
  if (!solve.result.ok) {
    ++failed_solves_;  // keep the previous (c, d) (RAIS.md §4)
    return;
  }
  c_ = solve.result.c;
  d_ = solve.result.d;
  upload_c_d();
  last_solve_ = std::move(solve.result);
  importance_ = true;
  built_at_ = -1;
}

void DeviceRaisSampler::write_trace(int64_t step) {
  const std::unique_ptr<SwappedSolve> swapped = std::move(to_trace_);
  const Backend& b = backend(device_);
  if (!importance_)
    b.rais_features(n_, last_norm_.f32(), last_seen_.i64(), counters_.i64(), steps_per_epoch_, features_.f32());
  const std::vector<float> last_norm = read_back(last_norm_, &Tensor::f32);
  const std::vector<int64_t> last_seen = read_back(last_seen_, &Tensor::i64);
  const std::vector<float> features = read_back(features_, &Tensor::f32);
  const std::vector<double> p = importance_ ? read_back(p_, &Tensor::f64) : std::vector<double>(size_t(n_), 1.0 / double(n_));
  TraceSolve t;
  t.number = solves_;
  t.step_launched = swapped->launched_at;
  t.step_swapped_in = step;
  t.data = swapped->solve.data.get();
  t.result = &swapped->solve.result;
  t.n = n_;
  t.last_norm = last_norm.data();
  t.last_seen = last_seen.data();
  t.features = features.data();
  t.p = p.data();
  trace_->write_solve(t);
}

uint64_t DeviceRaisSampler::prepare_on_device(int64_t step, int batch) {
  if (batch_ == 0) {
    allocate(batch);
  } else if (batch != batch_) {
    throw error("rais: batch size changed from ", batch_, " to ", batch);
  }

  // PT: swap in the solve launched record_batches steps ago, then launch the next one.
  if (pending_.valid() && step >= pending_ready_at_) swap_in_solve();
  const int64_t first_solve = options_.shuffled_warmup ? steps_per_epoch_ : options_.record_batches;
  if (options_.refit && !pending_.valid() && step >= first_solve && (step - first_solve) % options_.record_batches == 0)
    launch_solve(step);

  // The step's draws fill the next `batch` record slots; observe_on_device completes them.
  const int64_t counters[2] = {step, records_written_};
  uploads_->upload(counters_.i64(), counters, sizeof counters);
  records_written_ += batch;
  if (!importance_) {
    shuffled_.draw(step, batch, host_indices_, host_weights_);
    uploads_->upload(indices_.i32(), host_indices_.data(), size_t(batch) * sizeof(int32_t));
  } else if (built_at_ < 0 || step - built_at_ >= options_.refresh) {
    rebuild(step);
  }
  if (to_trace_) write_trace(step);
  return importance_ ? 1 : 0;
}

DeviceDraw DeviceRaisSampler::draw_on_device() {
  if (batch_ == 0) throw error("rais: draw_on_device before prepare_on_device");
  const Backend& b = backend(device_);
  const int64_t* step = counters_.i64();
  const int64_t* first_record = counters_.i64() + 1;
  if (!importance_) {
    b.rais_features(n_, last_norm_.f32(), last_seen_.i64(), step, steps_per_epoch_, features_.f32());
    b.rais_record_draws(batch_, indices_.i32(), n_, nullptr, features_.f32(), first_record, capacity_, nullptr,
                        record_features_.f32(), record_weights_.f32());
    return {indices_, Tensor()};
  }
  b.alias_draw(n_, prob_.f64(), alias_.i32(), seed_, step, batch_, indices_.i32());
  b.rais_record_draws(batch_, indices_.i32(), n_, p_.f64(), features_.f32(), first_record, capacity_, weights_.f32(),
                      record_features_.f32(), record_weights_.f32());
  return {indices_, weights_};
}

void DeviceRaisSampler::observe_on_device(const DeviceObservation& o) {
  const int batch = int(o.draw.indices.numel());
  if (batch != batch_) throw error("rais: observed ", batch, " examples, drew ", batch_);
  const Backend& b = backend(device_);
  b.rais_observe(batch, o.draw.indices.i32(), o.proxy_norms.f32(), counters_.i64(), counters_.i64() + 1, capacity_,
                 record_norms_.f32(), last_norm_.f32(), last_seen_.i64(), o.skip);
  const kernels::GainRatioHyper hyper{options_.gain_ratio.alpha, options_.gain_ratio.min, options_.gain_ratio.max};
  b.gain_ratio_update(batch, int(o.dlogits.size(1)), o.proxy_norms.f32(),
                      o.draw.weights.defined() ? o.draw.weights.f32() : nullptr, o.dlogits.f32(), hyper, gain_.f64(),
                      o.skip);
}

const double* DeviceRaisSampler::device_lr_multiplier() const {
  return importance_ ? gain_.f64() + kernels::kGainValue : one_.f64();
}

void DeviceRaisSampler::draw(int64_t step, int batch, std::vector<int32_t>& indices, std::vector<float>& weights) {
  prepare_on_device(step, batch);
  const DeviceDraw drawn = draw_on_device();
  indices = read_back(drawn.indices, &Tensor::i32);
  weights = drawn.weights.defined() ? read_back(drawn.weights, &Tensor::f32) : std::vector<float>();
}

void DeviceRaisSampler::observe(const Observation&) {
  throw error("rais: the device sampler observes through observe_on_device (it needs the step's dlogits)");
}

double DeviceRaisSampler::lr_multiplier() const {
  return importance_ ? read_back(gain_, &Tensor::f64)[kernels::kGainValue] : 1.0;
}

// The checkpoint keys of RaisSampler::save_state, so a checkpoint resumes with either sampler.
void DeviceRaisSampler::save_state(SamplerState& s) const {
  s.integers["batch"] = {batch_};
  s.integers["importance"] = {importance_};
  s.integers["built_at"] = {built_at_};
  s.integers["records_written"] = {records_written_};
  s.integers["solves"] = {solves_, failed_solves_};
  s.floats["last_norm"] = read_back(last_norm_, &Tensor::f32);
  s.integers["last_seen"] = read_back(last_seen_, &Tensor::i64);
  if (built_at_ >= 0) s.floats["features"] = read_back(features_, &Tensor::f32);
  if (batch_ > 0) {
    s.floats["record_features"] = read_back(record_features_, &Tensor::f32);
    s.floats["record_norms"] = read_back(record_norms_, &Tensor::f32);
    s.floats["record_weights"] = read_back(record_weights_, &Tensor::f32);
  } else {
    s.floats["record_features"] = s.floats["record_norms"] = s.floats["record_weights"] = {};
  }
  save_solutions(c_, d_, last_solve_, s);
  save_gain_ratio(gain_from_device(read_back(gain_, &Tensor::f64)), s);
  save_pending_solve({pending_launched_at_, pending_ready_at_, pending_.valid() ? pending_.get().data : nullptr}, s);
}

void DeviceRaisSampler::load_state(const SamplerState& s) {
  if (pending_.valid()) pending_.wait();
  pending_ = {};
  to_trace_.reset();
  const int64_t batch = load_batch(s);
  batch_ = 0;
  capacity_ = 0;
  if (batch > 0) {
    allocate(int(batch));
    write(record_features_, &Tensor::f32, s.float_array("record_features", capacity_ * kFeatureCount));
    write(record_norms_, &Tensor::f32, s.float_array("record_norms", capacity_));
    write(record_weights_, &Tensor::f32, s.float_array("record_weights", capacity_));
  }
  records_written_ = load_records_written(s, batch);
  write(last_norm_, &Tensor::f32, s.float_array("last_norm", n_));
  write(last_seen_, &Tensor::i64, s.integer_array("last_seen", n_));
  const std::vector<int64_t>& solves = s.integer_array("solves", 2);
  solves_ = solves[0], failed_solves_ = solves[1];
  importance_ = s.integer("importance") != 0;
  load_solutions(s, c_, d_, last_solve_);
  if (!c_.empty()) {
    write(c_device_, &Tensor::f64, c_);
    write(d_device_, &Tensor::f64, d_);
  }
  write(gain_, &Tensor::f64, gain_to_device(load_gain_ratio(s)));
  built_at_ = s.integer("built_at");
  if (built_at_ >= 0) {
    if (c_.size() != kFeatureCount || d_.size() != kFeatureCount)
      throw error("rais: the checkpoint has a built distribution but no (c, d)");
    write(features_, &Tensor::f32, s.float_array("features", n_ * kFeatureCount));
    build_from_features();
  }
  const PendingSolve pending = load_pending_solve(s);
  if (pending.data) {
    start_solve([data = pending.data] { return data; }, pending.launched_at);
    check_solve_due(pending, pending_ready_at_);
  }
}

RaisStats DeviceRaisSampler::stats() const {
  RaisStats s;
  s.solves = solves_;
  s.failed_solves = failed_solves_;
  s.clamped_steps = gain_from_device(read_back(gain_, &Tensor::f64)).clamped;
  s.c = c_;
  s.d = d_;
  s.importance_sampling = importance_;
  if (importance_ && built_at_ >= 0) {
    double smallest = 1;
    for (double p : read_back(p_, &Tensor::f64))
      if (p > 0) smallest = std::min(smallest, p);
    s.largest_weight = 1.0 / (double(n_) * smallest);
  }
  return s;
}

std::vector<double> DeviceRaisSampler::probabilities() const {
  return built_at_ >= 0 ? read_back(p_, &Tensor::f64) : std::vector<double>();
}

}  // namespace raisin::rais
