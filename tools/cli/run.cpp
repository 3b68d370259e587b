// One training run: data, model, trainer, per-epoch evaluation, CSV metrics, checkpoints, resume.
#include "tools/cli/run.h"

#include <cblas.h>
#include <omp.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

#include "engine/backend.h"
#include "engine/checkpoint.h"
#include "engine/dataset.h"
#include "engine/error.h"
#include "engine/sampler.h"
#include "engine/trainer.h"
#include "models/models.h"
#include "rais/device_sampler.h"
#include "rais/oracle_sampler.h"
#include "rais/rais_sampler.h"
#include "tools/cli/interrupt.h"
#include "tools/cli/progress.h"

namespace raisin::cli {

namespace fs = std::filesystem;

void declare_train_flags(Flags& f) {
  f.add("data", "fashion-mnist", "dataset: mnist, fashion-mnist, cifar10 (a JPEG-q75 copy) or synthetic");
  f.add("data-dir", "", "folder with the dataset files (default: search the usual places)");
  f.add("model", "lenet5", "model: mlp, lenet5, resnet20 or vgg-small");
  f.add("epochs", "5", "training budget in epochs (fractions allowed)");
  f.add("batch", "128", "minibatch size");
  f.add("lr", "0.05", "base learning rate");
  f.add("momentum", "0.9", "SGD momentum (0 for none)");
  f.add_switch("nesterov", "Nesterov momentum");
  f.add("weight-decay", "5e-4", "L2 weight decay");
  f.add("schedule", "cosine", "learning-rate schedule over epochs: cosine, step or constant");
  f.add("warmup", "0", "epochs of linear learning-rate warm-up");
  f.add("lr-step", "30", "step schedule: epochs between decays");
  f.add("lr-gamma", "0.1", "step schedule: decay factor");
  f.add("crop-padding", "0", "augmentation: random crop after zero padding by this many pixels");
  f.add_switch("flip", "augmentation: random horizontal flips");
  f.add("train-subset", "0", "train on the first N training examples only (0: all)");
  f.add("test-subset", "0", "evaluate on the first N test examples only (0: all)");
  f.add("eval-train-every", "1", "evaluate the loss over the whole training set (evaluation mode, no augmentation) every this many epochs(-equivalent) and at the end, into train_eval.csv (0: never); not counted as training time");
  f.add("sampler", "uniform", "uniform (shuffled epochs: plain SGD), uniform-iid (with replacement), rais, or oracle (p from fresh norms of every example: a costly diagnostic)");
  f.add("oracle-refresh", "0", "oracle: steps between full passes over the training set (0: a quarter epoch)");
  f.add("oracle-uniform-share", "0.1", "oracle: share of uniform sampling mixed into p");
  f.add("rais-alpha", "0.01", "rais: EMA weight of the gain-ratio moments");
  f.add("rais-records", "32", "rais: records kept for the uncertainty-set fit, in batches (|D| = N·B); also the refit period in steps");
  f.add("rais-refresh", "16", "rais: steps between rebuilds of the sampling distribution (1: exact every step)");
  f.add("rais-uniform-share", "0", "rais: mix this share of uniform sampling into p");
  f.add("rais-floor", "0.01", "rais: floor of d for the constant feature, as a fraction of (mean proxy norm)^2");
  f.add("rais-pt-thread", "auto", "rais: solve PT on its own thread while training continues: yes; no (at launch, on the training threads); auto: yes when training on a GPU, no on the CPU, whose cores all train. The draws are the same");
  f.add("rais-trace", "", "rais: write the records, (c, d) and every example's features and p at each PT solve into this folder (CSV; see its FORMAT.txt)");
  f.add("device", "auto", "cpu, cuda, or auto (the GPU when one can be used, else the cpu)");
  f.add_switch("tf32", "on a GPU, let GEMMs and convolutions use TF32 tensor cores (faster, ~3 fewer digits)");
  f.add("on-nonfinite", "stop", "a step whose loss or gradient is NaN or infinite is never applied; then: stop (the run ends naming the step, the layer and the value; the last checkpoint stays) or skip (the run goes on; each skipped step is logged, and 20 in a row stop it)");
  f.add("cuda-graphs", "on", "on a GPU, capture the training step in a CUDA graph after its first steps and replay it: on, or off (launch every kernel of every step); the results are the same");
  f.add("threads", "0", "CPU threads for OpenMP and OpenBLAS (0: all cores)");
  f.add("seed", "1", "seed for initialisation, shuffling, dropout and augmentation");
  f.add("out", "runs/train", "run folder (metrics, log, checkpoints)");
  f.add("resume", "", "continue the run in this folder from its checkpoint");
  f.add("stop-after", "0", "stop with a checkpoint after this many epochs (0: run the full budget); continue with --resume");
  f.add("log-every", "100", "steps between log lines when the output is not a terminal");
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string exact(double v) {
  char text[40];
  std::snprintf(text, sizeof text, "%.17g", v);
  return text;
}

void keep_first(Dataset& data, int64_t n) {
  if (n <= 0 || n >= data.count) return;
  data.count = n;
  data.images.resize(size_t(n * data.image_size()));
  data.labels.resize(size_t(n));
}

// Keeps the header and the rows whose first column (a step number) is at most `last_step`, so that a
// resumed run's CSV continues exactly where its checkpoint was taken.
void truncate_csv(const fs::path& path, int64_t last_step) {
  std::ifstream in(path);
  if (!in) return;
  std::string line, kept;
  bool header = true;
  int64_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    const std::optional<int64_t> step = header ? std::optional<int64_t>(0) : parse_whole_number(line.substr(0, line.find(',')));
    if (!step)
      throw error("resume: line ", line_number, " of ", path.string(), " does not start with a step number; the run "
                  "folder is damaged (delete the rows after the checkpoint's step, or start a new run)");
    if (header || *step <= last_step) kept += line + "\n";
    header = false;
  }
  in.close();
  std::ofstream(path, std::ios::trunc) << kept;
}

std::string lookup(const std::vector<std::pair<std::string, std::string>>& metadata, const std::string& key,
                   const std::string& path) {
  for (const auto& [k, v] : metadata)
    if (k == key) return v;
  throw error("resume: checkpoint ", path, " has no '", key, "' entry; it was not written by raisin train");
}

int64_t lookup_integer(const std::vector<std::pair<std::string, std::string>>& metadata, const std::string& key,
                       const std::string& path) {
  const std::string text = lookup(metadata, key, path);
  const std::optional<int64_t> value = parse_whole_number(text);
  if (!value || *value < 0) throw error("resume: checkpoint ", path, " has '", key, "' = '", text, "', not a count");
  return *value;
}

double lookup_real(const std::vector<std::pair<std::string, std::string>>& metadata, const std::string& key,
                   const std::string& path) {
  const std::string text = lookup(metadata, key, path);
  const std::optional<double> value = parse_finite_number(text);
  if (!value) throw error("resume: checkpoint ", path, " has '", key, "' = '", text, "', not a number");
  return *value;
}

std::unique_ptr<Sampler> make_sampler(const Flags& flags, int64_t count, uint64_t seed, Module& model,
                                      const TrainTest& data, const Device& device) {
  const std::string name = flags.str("sampler");
  if (name == "oracle") {
    rais::OracleOptions options;
    options.refresh_steps = flags.integer("oracle-refresh", 0, INT64_MAX);
    options.uniform_share = flags.real("oracle-uniform-share", 0, 1);
    auto oracle = [&model, &data](std::vector<float>& norms) {
      return proxy_norms(model, data.train, data.normalization, norms);
    };
    return std::make_unique<rais::OracleSampler>(count, seed, oracle, options);
  }
  if (name == "uniform") return std::make_unique<ShuffledSampler>(count, seed);
  if (name == "uniform-iid") return std::make_unique<UniformIidSampler>(count, seed);
  if (name == "rais") {
    rais::RaisOptions options;
    options.gain_ratio.alpha = flags.real("rais-alpha", 1e-6, 1);
    options.record_batches = int(flags.integer("rais-records", 1, 1 << 16));
    options.refresh = int(flags.integer("rais-refresh", 1, 1 << 30));
    options.uniform_share = flags.real("rais-uniform-share", 0, 0.999);
    options.pt.floor_fraction = flags.real("rais-floor", 0, 1e6);
    options.trace_dir = flags.str("rais-trace");
    const std::string pt_thread = flags.str("rais-pt-thread");
    if (pt_thread != "auto" && pt_thread != "yes" && pt_thread != "no")
      throw error("raisin train: --rais-pt-thread ", pt_thread, " is not one of auto, yes, no");
    options.background_solve = pt_thread == "yes" || (pt_thread == "auto" && !device.is_cpu());
    if (!device.is_cpu()) return std::make_unique<rais::DeviceRaisSampler>(count, seed, device, options);
    return std::make_unique<rais::RaisSampler>(count, seed, options);
  }
  throw error("raisin train: unknown --sampler '", name, "': use uniform, uniform-iid, rais or oracle");
}

// One line on the RAIS sampler's state, for the log at each epoch.
std::string rais_status(const Sampler& sampler) {
  rais::RaisStats s;
  if (const auto* r = dynamic_cast<const rais::RaisSampler*>(&sampler)) s = r->stats();
  else if (const auto* d = dynamic_cast<const rais::DeviceRaisSampler*>(&sampler)) s = d->stats();
  else return "";
  std::ostringstream out;
  out << "rais: r̂ " << sampler.lr_multiplier() << (s.importance_sampling ? "" : " (shuffled warm-up)") << ", PT solves "
      << s.solves << " (" << s.failed_solves << " failed), clamped steps " << s.clamped_steps << ", largest weight "
      << s.largest_weight << ", c = [";
  for (size_t k = 0; k < s.c.size(); ++k) out << (k ? ", " : "") << s.c[k];
  out << "], d = [";
  for (size_t k = 0; k < s.d.size(); ++k) out << (k ? ", " : "") << s.d[k];
  out << "]";
  return out.str();
}

// cpu; cuda (an error naming the reason when no GPU can be used); auto: cuda when a GPU can be used.
Device resolve_device(const std::string& name) {
  if (name == "cpu") return Device::cpu();
  if (name != "cuda" && name != "auto") throw error("raisin train: --device ", name, " is not one of cpu, cuda, auto");
  const std::string reason = ensure_backend(Device::Kind::cuda);
  if (reason.empty()) return Device::cuda(0);
  if (name == "auto") return Device::cpu();
  throw error("raisin train: --device cuda: ", reason, "; use --device cpu");
}

void configure_threads(int64_t threads) {
  if (threads <= 0) return;
  omp_set_num_threads(int(threads));
  openblas_set_num_threads(int(threads));
}

}  // namespace

RunSummary run_training(Flags& flags) {
  // ---- resume: the run's own flags come back from its checkpoint ----
  std::vector<std::pair<std::string, std::string>> resume_metadata;
  fs::path checkpoint_path;
  const bool resuming = !flags.str("resume").empty();
  if (resuming) {
    const fs::path dir = flags.str("resume");
    checkpoint_path = dir / "checkpoint.safetensors";
    if (!fs::exists(checkpoint_path))
      throw error("resume: no checkpoint at ", checkpoint_path.string(), "; give the run folder of an earlier raisin train");
    resume_metadata = read_checkpoint_metadata(checkpoint_path.string());
    for (const auto& [name, value] : flags.values()) {
      if (name == "resume" || name == "threads" || name == "log-every" || name == "stop-after" || name == "device" ||
          name == "cuda-graphs" || name == "on-nonfinite")
        continue;
      if (flags.given(name))
        throw error("resume: --", name, " cannot change when resuming; the run's settings come from its checkpoint");
      flags.set(name, lookup(resume_metadata, "flag." + name, checkpoint_path.string()));
    }
    flags.set("out", dir.string());
  }

  const Device device = resolve_device(flags.str("device"));
  if (flags.on("tf32")) {
    if (!backend(device).set_allow_tf32)
      throw error("raisin train: --tf32 applies to GPUs, but this run is on ", device.str(),
                  ", which computes in fp32; drop --tf32 or use --device cuda");
    backend(device).set_allow_tf32(true);
  }
  configure_threads(flags.integer("threads", 0, 1024));

  // ---- data and model ----
  TrainTest data = load_dataset(flags.str("data"), flags.str("data-dir"));
  keep_first(data.train, flags.integer("train-subset", 0, INT32_MAX));
  keep_first(data.test, flags.integer("test-subset", 0, INT32_MAX));
  const uint64_t seed = uint64_t(flags.integer("seed", 0, INT64_MAX));
  auto model = make_model(flags.str("model"),
                          {data.train.channels, data.train.height, data.train.width, data.train.classes}, seed);
  model->to(device);

  TrainOptions options;
  options.batch = int(flags.integer("batch", 1, 1 << 20));
  const double epochs = flags.real("epochs", 1e-6, 1e6);
  options.schedule = Schedule{Schedule::parse_kind(flags.str("schedule")), float(flags.real("lr", 0, 1e3)), epochs,
                              flags.real("warmup", 0, 1e6), flags.real("lr-step", 1e-6, 1e6),
                              float(flags.real("lr-gamma", 0, 1))};
  options.sgd = SgdOptions{float(flags.real("momentum", 0, 1)), float(flags.real("weight-decay", 0, 1)),
                           flags.on("nesterov")};
  options.seed = seed;
  options.crop_padding = int(flags.integer("crop-padding", 0, 64));
  options.flip = flags.on("flip");
  const std::string graphs = flags.str("cuda-graphs");
  if (graphs != "on" && graphs != "off") throw error("raisin train: --cuda-graphs ", graphs, " is not one of on, off");
  options.cuda_graphs = graphs == "on";
  const std::string on_nonfinite = flags.str("on-nonfinite");
  if (on_nonfinite != "stop" && on_nonfinite != "skip")
    throw error("raisin train: --on-nonfinite ", on_nonfinite, " is not one of stop, skip");
  const bool skip_nonfinite = on_nonfinite == "skip";
  const std::unique_ptr<Sampler> sampler = make_sampler(flags, data.train.count, seed, *model, data, device);
  Trainer trainer(*model, data.train, data.normalization, *sampler, options);

  // ---- run folder ----
  const fs::path out = flags.str("out");
  fs::create_directories(out);
  const fs::path steps_csv = out / "steps.csv", epochs_csv = out / "epochs.csv", train_eval_csv = out / "train_eval.csv";
  double wall_offset = 0, epoch_loss_sum = 0, epoch_accuracy_sum = 0;
  int64_t epoch_steps = 0;
  if (resuming) {
    SamplerState sampler_state;
    load_checkpoint(checkpoint_path.string(), *model, &trainer.optimizer(), &sampler_state);
    sampler->load_state(sampler_state);
    const auto& m = resume_metadata;
    const std::string p = checkpoint_path.string();
    trainer.restore(lookup_integer(m, "train.step", p), lookup_real(m, "train.progress", p));
    wall_offset = lookup_real(m, "train.wall_seconds", p);
    epoch_loss_sum = lookup_real(m, "train.epoch_loss_sum", p);
    epoch_accuracy_sum = lookup_real(m, "train.epoch_accuracy_sum", p);
    epoch_steps = lookup_integer(m, "train.epoch_steps", p);
    if (trainer.progress() >= epochs - 1e-9)
      throw error("resume: the run in ", out.string(), " already finished its ", epochs, " epochs");
    truncate_csv(steps_csv, trainer.steps() - 1);
    truncate_csv(epochs_csv, trainer.steps());
    truncate_csv(train_eval_csv, trainer.steps());
  } else {
    std::ofstream(steps_csv) << "step,epoch,loss,accuracy,lr,lr_multiplier,wall_seconds,images_per_second\n";
    std::ofstream(epochs_csv)
        << "step,epoch,train_loss,train_accuracy,test_loss,test_error,wall_seconds,images_per_second\n";
    std::ofstream(train_eval_csv) << "step,epoch,loss,accuracy,wall_seconds,eval_seconds\n";
    std::ofstream command(out / "command.txt");
    command << "raisin train";
    for (const auto& [name, value] : flags.values())
      if (flags.given(name)) command << " --" << name << " " << value;
    command << "\n";
  }
  FILE* log = std::fopen((out / "log.txt").c_str(), resuming ? "a" : "w");
  if (!log) throw error("raisin train: cannot write ", (out / "log.txt").string(), " (", std::strerror(errno), ")");
  std::unique_ptr<FILE, int (*)(FILE*)> log_closer(log, &std::fclose);
  std::ofstream steps_out(steps_csv, std::ios::app), epochs_out(epochs_csv, std::ios::app),
      train_eval_out(train_eval_csv, std::ios::app);
  // Rows are buffered; whenever they are flushed (each epoch, each checkpoint) a failed write (a full
  // disk) stops the run with the file named instead of losing rows silently.
  auto flush_rows = [&] {
    for (auto [stream, path] : {std::pair{&steps_out, &steps_csv}, std::pair{&epochs_out, &epochs_csv},
                                std::pair{&train_eval_out, &train_eval_csv}}) {
      stream->flush();
      if (!*stream) throw error("raisin train: cannot write ", path->string(), " (", std::strerror(errno), ")");
    }
  };

  Progress progress(log, flags.integer("log-every", 1, INT32_MAX));
  char text[512];
  std::snprintf(text, sizeof text, "%s %s on %s (%s) on %s: %lld train / %lld test images %dx%dx%d, %lld parameters, batch %d, %g epochs",
                resuming ? "resuming" : "training", flags.str("model").c_str(), flags.str("data").c_str(),
                data.source.c_str(), device.str().c_str(), (long long)data.train.count, (long long)data.test.count, data.train.channels,
                data.train.height, data.train.width, (long long)model->parameter_count(), options.batch, epochs);
  progress.line(text);
  if (flags.str("data") == "cifar10")
    progress.line("note: cifar10 here is a JPEG quality-75 copy of CIFAR-10, not the lossless original");

  auto checkpoint = [&](double wall) {
    std::vector<std::pair<std::string, std::string>> metadata;
    for (const auto& [name, value] : flags.values()) metadata.emplace_back("flag." + name, value);
    metadata.emplace_back("train.step", std::to_string(trainer.steps()));
    metadata.emplace_back("train.progress", exact(trainer.progress()));
    metadata.emplace_back("train.wall_seconds", exact(wall));
    metadata.emplace_back("train.epoch_loss_sum", exact(epoch_loss_sum));
    metadata.emplace_back("train.epoch_accuracy_sum", exact(epoch_accuracy_sum));
    metadata.emplace_back("train.epoch_steps", std::to_string(epoch_steps));
    metadata.emplace_back("model", flags.str("model"));
    metadata.emplace_back("data", flags.str("data"));
    SamplerState sampler_state;
    sampler->save_state(sampler_state);
    save_checkpoint((out / "checkpoint.safetensors").string(), *model, &trainer.optimizer(), metadata, &sampler_state);
  };

  const int64_t total_steps = int64_t(std::ceil(epochs * double(data.train.count) / options.batch - 1e-9));
  const double stop_after = flags.real("stop-after", 0, 1e6);
  const double eval_train_every = flags.real("eval-train-every", 0, 1e6);
  // Evaluations of the training set are due whenever progress passes a multiple of the cadence.
  auto train_eval_index = [&](double progress) {
    return eval_train_every > 0 ? int64_t(std::floor((progress + 1e-9) / eval_train_every)) : 0;
  };

  // The training clock: wall-clock time less evaluations and checkpoint writes, which run
  // off_the_clock. Every wall_seconds column, the images/s rates and the summary use it, so samplers
  // are compared on training time only (the oracle's passes over the training set are its training
  // cost and stay on the clock).
  const auto start = std::chrono::steady_clock::now();
  auto interval_start = start;
  double paused = 0;
  auto training_seconds = [&] { return wall_offset + seconds_since(start) - paused; };
  auto off_the_clock = [&](auto&& work) {
    const auto begin = std::chrono::steady_clock::now();
    work();
    const auto spent = std::chrono::steady_clock::now() - begin;
    paused += std::chrono::duration<double>(spent).count();
    interval_start += spent;
    return std::chrono::duration<double>(spent).count();
  };
  int64_t interval_steps = 0;
  double images_per_second = 0;
  RunSummary summary;
  summary.out_dir = out.string();
  Evaluation test{};
  bool stopped_early = false;
  constexpr int kMostSkippedInARow = 20;
  int skipped_in_a_row = 0;

  // Everything the host does after a step: its rows, the progress line and, when the step ends an
  // epoch or a training-set evaluation interval, the evaluations and the checkpoint (which read the
  // model and trainer as they are now, so such a step must be the last one drained). False: stop early.
  auto after_step = [&](const StepResult& r, double progress_before, bool last_drained, double wall) {
    if (const std::string fault = trainer.describe_fault(r); !fault.empty()) {
      if (!skip_nonfinite) {  // the rows of the steps before it are written
        const fs::path last = out / "checkpoint.safetensors";
        throw error(fault, "; training stopped without applying that step",
                    fs::exists(last) ? "; the last checkpoint, " + last.string() + ", is intact" : std::string(),
                    "; lower the learning rate, or pass --on-nonfinite skip to skip such steps");
      }
      progress.line(fault + "; skipped (--on-nonfinite skip)");
      if (++skipped_in_a_row >= kMostSkippedInARow)
        throw error(kMostSkippedInARow, " steps in a row had non-finite values (the last: ", fault,
                    "); training stopped; lower the learning rate");
    } else {
      skipped_in_a_row = 0;
      epoch_loss_sum += r.loss;  // the epoch's means are over the steps applied
      epoch_accuracy_sum += r.accuracy;
      ++epoch_steps;
    }
    const int64_t steps_done = r.step + 1;
    const int64_t epoch_before = int64_t(std::floor(progress_before + 1e-9));
    ++interval_steps;
    // images/s over windows of at least a second, also closed at each epoch's end (a GPU epoch can take
    // less than a second); the first step (warm-up: cuDNN plans, first-touch pages) is a window alone.
    const double interval = seconds_since(interval_start);
    const bool epoch_ends = int64_t(std::floor(r.progress + 1e-9)) > epoch_before || r.progress >= epochs - 1e-9;
    if (interval > 0 && (interval >= 1.0 || epoch_ends || images_per_second == 0)) {
      images_per_second = interval_steps * options.batch / interval;
      interval_start = std::chrono::steady_clock::now();
      interval_steps = 0;
    }
    steps_out << r.step << ',' << r.progress << ',' << r.loss << ',' << r.accuracy << ',' << r.lr << ','
              << r.lr_multiplier << ',' << wall << ',' << images_per_second << '\n';

    ProgressState state{steps_done, total_steps, r.progress, epochs, epoch_loss_sum / epoch_steps,
                        epoch_accuracy_sum / epoch_steps, images_per_second,
                        images_per_second > 0 ? (total_steps - steps_done) * options.batch / images_per_second : 0};
    progress.update(state);

    const bool epoch_done = int64_t(std::floor(r.progress + 1e-9)) > epoch_before;
    const bool finished = r.progress >= epochs - 1e-9;
    const bool train_eval_due = eval_train_every > 0 && train_eval_index(r.progress) > train_eval_index(progress_before);
    if ((epoch_done || finished || train_eval_due) && !last_drained)
      throw error("internal error: step ", r.step, " ends an epoch or evaluation interval inside a queued run; please report it");
    if (eval_train_every > 0 && (train_eval_due || finished)) {
      Evaluation full;
      const double seconds = off_the_clock([&] { full = trainer.evaluate(data.train); });
      train_eval_out << steps_done << ',' << r.progress << ',' << full.loss << ',' << full.accuracy << ','
                     << wall << ',' << seconds << '\n';
      flush_rows();
      std::snprintf(text, sizeof text, "epoch %.2f  step %lld  whole training set (evaluation mode): loss %.4f  acc %.2f%%  (%.1f s, off the clock)",
                    r.progress, (long long)steps_done, full.loss, 100 * full.accuracy, seconds);
      progress.line(text);
      summary.final_full_train_loss = full.loss;
      summary.final_full_train_accuracy = full.accuracy;
    }
    if (!epoch_done && !finished) return true;

    off_the_clock([&] { test = trainer.evaluate(data.test); });
    const double train_loss = epoch_loss_sum / epoch_steps, train_accuracy = epoch_accuracy_sum / epoch_steps;
    epochs_out << steps_done << ',' << r.progress << ',' << train_loss << ',' << train_accuracy << ','
               << test.loss << ',' << 1 - test.accuracy << ',' << wall << ',' << images_per_second << '\n';
    flush_rows();
    std::snprintf(text, sizeof text,
                  "epoch %.2f  step %lld  train loss %.4f  train acc %.2f%%  test loss %.4f  test acc %.2f%%  %.0f img/s  %s",
                  r.progress, (long long)steps_done, train_loss, 100 * train_accuracy, test.loss,
                  100 * test.accuracy, images_per_second, format_duration(wall).c_str());
    progress.line(text);
    if (const std::string status = rais_status(*sampler); !status.empty()) progress.line(status);
    summary.final_train_loss = train_loss;
    epoch_loss_sum = epoch_accuracy_sum = 0;
    epoch_steps = 0;
    off_the_clock([&] { checkpoint(wall); });
    if (stop_after > 0 && r.progress >= stop_after - 1e-9 && !finished) {
      stopped_early = true;
      return false;
    }
    return true;
  };

  // On a GPU, steps are queued in runs of which only the last can end an epoch, an evaluation interval
  // or the run (Trainer::steps_before), then drained: the host reads back once per run, and every row
  // is what one step at a time would give, except wall_seconds, which the host only knows per run:
  // the run's time is spread evenly over its steps. On the cpu a step is done when queued, so runs are
  // single steps and every time is measured.
  const int64_t most_queued = device.is_cpu() ? 1 : 64;
  const int64_t first_step = trainer.steps();
  bool go_on = true;
  double last_wall = wall_offset;
  const InterruptGuard interrupts;
  // A failure from here on (a non-finite step, a full disk) also goes into log.txt.
  try {
    while (go_on && trainer.progress() < epochs - 1e-9) {
      if (const int signal = InterruptGuard::received()) {
        off_the_clock([&] {
          flush_rows();
          checkpoint(last_wall);
        });
        progress.finish();
        const std::string message = "interrupted by " + signal_name(signal) + " after step " +
                                    std::to_string(trainer.steps()) + " (epoch " + exact(trainer.progress()) +
                                    "); checkpoint written; continue with: raisin train --resume " + out.string();
        progress.line(message);
        throw Interrupted(signal, message);
      }
      double boundary = std::min(std::floor(trainer.progress() + 1e-9) + 1, epochs);
      if (eval_train_every > 0) boundary = std::min(boundary, double(train_eval_index(trainer.progress()) + 1) * eval_train_every);
      // The first step alone: it is the warm-up (cuDNN plans, first-touch pages) and its own images/s window.
      const int64_t run = trainer.steps() == first_step ? 1 : std::min(trainer.steps_before(boundary), most_queued);
      double progress_before = trainer.progress();
      const double run_start = training_seconds();
      for (int64_t q = 0; q < run; ++q) trainer.queue_step();
      const std::vector<StepResult> drained = trainer.drain();
      const double run_seconds = training_seconds() - run_start;
      for (size_t i = 0; i < drained.size() && go_on; ++i) {
        const double wall = run_start + run_seconds * double(i + 1) / double(drained.size());  // at the step's end
        go_on = after_step(drained[i], progress_before, i + 1 == drained.size(), wall);
        progress_before = drained[i].progress;
        last_wall = wall;
      }
    }
  } catch (const Interrupted&) {
    throw;
  } catch (const Error& e) {
    std::fprintf(log, "error: %s\n", e.what());
    std::fflush(log);
    throw;
  }
  progress.finish();
  flush_rows();

  summary.steps = trainer.steps();
  summary.epochs = trainer.progress();
  summary.test_loss = test.loss;
  summary.test_accuracy = test.accuracy;
  summary.wall_seconds = training_seconds();
  if (stopped_early) {
    progress.line("stopped after epoch " + exact(trainer.progress()) + "; continue with: raisin train --resume " + out.string());
  } else {
    save_checkpoint((out / "model.safetensors").string(), *model, nullptr,
                    {{"model", flags.str("model")}, {"data", flags.str("data")}});
  }
  return summary;
}

}  // namespace raisin::cli
