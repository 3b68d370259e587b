// `raisin compare`: trains the same model with several samplers (same seed, schedule and budget),
// plus the fair baseline (uniform given only as many steps as rais took, its schedule decayed over
// that budget), and reports how soon each reaches uniform's final training loss (over the whole
// training set, evaluated every --eval-train-every epochs) and test error (every epoch), in steps,
// epochs(-equivalent) and training time (evaluations excluded). Writes <out>/<run>/ for every run,
// <out>/summary.csv, <out>/summary.md and, through tools/plot_compare.py, the plots.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/error.h"
#include "tools/cli/commands.h"
#include "tools/cli/run.h"

namespace raisin::cli {

namespace fs = std::filesystem;

namespace {

struct Curve {
  std::vector<double> step, epoch, loss, wall;  // per evaluation of the whole training set
  std::vector<double> epoch_step, epoch_progress, test_error, epoch_wall;  // per epoch row
};

std::vector<std::vector<double>> read_numbers(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw error("compare: cannot read ", path.string());
  std::string line;
  std::getline(in, line);  // header
  std::vector<std::vector<double>> rows;
  while (std::getline(in, line)) {
    std::vector<double> row;
    std::stringstream cells(line);
    std::string cell;
    while (std::getline(cells, cell, ',')) row.push_back(std::stod(cell));
    rows.push_back(row);
  }
  return rows;
}

// The training-loss curve the report uses: the loss over the whole training set in evaluation mode
// (train_eval.csv), the same measure for every sampler (minibatch losses are noisy, and for rais
// importance-weighted); and the per-epoch test error.
Curve read_curve(const fs::path& dir) {
  Curve c;
  for (const auto& row : read_numbers(dir / "train_eval.csv")) {
    c.step.push_back(row[0]);
    c.epoch.push_back(row[1]);
    c.loss.push_back(row[2]);
    c.wall.push_back(row[4]);
  }
  for (const auto& row : read_numbers(dir / "epochs.csv")) {
    c.epoch_step.push_back(row[0]);
    c.epoch_progress.push_back(row[1]);
    c.test_error.push_back(row[5]);
    c.epoch_wall.push_back(row[6]);
  }
  if (c.step.empty() || c.epoch_step.empty())
    throw error("compare: run ", dir.string(), " recorded no evaluations (train_eval.csv, epochs.csv)");
  return c;
}

struct Reach {
  bool reached = false;
  double steps = 0, epochs = 0, seconds = 0;
};

Reach reach_loss(const Curve& c, double target) {
  for (size_t i = 0; i < c.loss.size(); ++i)
    if (c.loss[i] <= target) return {true, c.step[i], c.epoch[i], c.wall[i]};
  return {};
}

Reach reach_error(const Curve& c, double target) {
  for (size_t i = 0; i < c.test_error.size(); ++i)
    if (c.test_error[i] <= target) return {true, c.epoch_step[i], c.epoch_progress[i], c.epoch_wall[i]};
  return {};
}

std::string cell(const Reach& r, double reference_seconds) {
  if (!r.reached) return "not reached";
  char text[96];
  std::snprintf(text, sizeof text, "%.0f steps, %.2f ep, %.1f s (%.2fx)", r.steps, r.epochs, r.seconds,
                reference_seconds / r.seconds);
  return text;
}

struct Row {
  std::string name;
  double steps, wall_seconds, ms_per_step;
  double loss_speedup, error_speedup;  // uniform's time to the target over this run's; NaN: not reached
  double final_loss, final_accuracy;
};

std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> items;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) items.push_back(item);
  return items;
}

// Trains every sampler (and the fair baseline) with the flags' seed into out/<run>/, writes
// out/summary.md, out/summary.csv and the plots, prints the table, and returns its rows.
std::vector<Row> compare_once(const Flags& flags, const std::vector<std::string>& samplers, const fs::path& out) {
  fs::create_directories(out);
  struct Run {
    std::string name;
    RunSummary summary;
  };
  std::vector<Run> runs;
  auto train = [&](const std::string& name, const std::string& sampler, double epochs) {
    Flags f = flags;
    f.set("sampler", sampler);
    f.set("out", (out / name).string());
    char text[32];
    std::snprintf(text, sizeof text, "%.17g", epochs);
    f.set("epochs", text);
    std::fprintf(stderr, "\n== %s\n", name.c_str());
    runs.push_back({name, run_training(f)});
  };
  const double epochs = flags.real("epochs", 1e-6, 1e6);
  for (const auto& s : samplers) train(s, s, epochs);
  // Index, not iterator: the fair-baseline run below grows `runs`.
  const auto found = std::find_if(runs.begin(), runs.end(), [](const Run& r) { return r.name == "rais"; });
  const bool has_rais = found != runs.end();
  const size_t rais_index = size_t(found - runs.begin());
  if (has_rais && !flags.on("no-fair-baseline")) {
    const double epochs_per_step = epochs / double(runs.front().summary.steps);  // uniform's
    train("uniform-short", "uniform", double(runs[rais_index].summary.steps) * epochs_per_step);
  }

  // ---- the report ----
  std::vector<Curve> curves;
  for (const Run& r : runs) curves.push_back(read_curve(out / r.name));
  const Curve& base = curves.front();
  const double target_loss = base.loss.back(), target_error = base.test_error.back();
  const Reach base_loss = reach_loss(base, target_loss), base_error = reach_error(base, target_error);
  auto ms_per_step = [](const RunSummary& s) { return 1000 * s.wall_seconds / double(s.steps); };
  const double base_ms = ms_per_step(runs.front().summary);

  std::ostringstream md;
  md << "Targets from `uniform`: final training loss " << target_loss << " (whole training set, evaluation mode, "
     << "evaluated every " << flags.str("eval-train-every") << " epochs(-equivalent)), final test error "
     << 100 * target_error << "%. Times are training time: evaluations and checkpoints excluded.\n\n"
     << "| run | steps | wall s | ms/step | reach uniform's final train loss | reach uniform's final test error | "
        "final train loss | final test acc |\n|---|---|---|---|---|---|---|---|\n";
  std::ofstream csv(out / "summary.csv");
  csv << "run,steps,wall_seconds,ms_per_step,loss_target_steps,loss_target_epochs,loss_target_seconds,"
         "error_target_steps,error_target_epochs,error_target_seconds,final_train_loss,final_test_accuracy\n";
  std::vector<Row> rows;
  for (size_t i = 0; i < runs.size(); ++i) {
    const Curve& c = curves[i];
    const RunSummary& s = runs[i].summary;
    const Reach l = reach_loss(c, target_loss), e = reach_error(c, target_error);
    const double ms = ms_per_step(s);
    rows.push_back({runs[i].name, double(s.steps), s.wall_seconds, ms, l.reached ? base_loss.seconds / l.seconds : NAN,
                    e.reached ? base_error.seconds / e.seconds : NAN, c.loss.back(), s.test_accuracy});
    char row[512];
    std::snprintf(row, sizeof row, "| %s | %lld | %.1f | %.2f | %s | %s | %.4f | %.2f%% |\n", runs[i].name.c_str(),
                  (long long)s.steps, s.wall_seconds, ms, cell(l, base_loss.seconds).c_str(),
                  cell(e, base_error.seconds).c_str(), c.loss.back(), 100 * s.test_accuracy);
    md << row;
    csv << runs[i].name << ',' << s.steps << ',' << s.wall_seconds << ',' << ms << ',' << (l.reached ? l.steps : NAN)
        << ',' << (l.reached ? l.epochs : NAN) << ',' << (l.reached ? l.seconds : NAN) << ','
        << (e.reached ? e.steps : NAN) << ',' << (e.reached ? e.epochs : NAN) << ','
        << (e.reached ? e.seconds : NAN) << ',' << c.loss.back() << ',' << s.test_accuracy << '\n';
  }
  std::string table = md.str();
  if (has_rais) {
    const double rais_ms = ms_per_step(runs[rais_index].summary);
    char line[400];
    std::snprintf(line, sizeof line,
                  "\nrais overhead per step: %.2f ms (%.1f%% of uniform's %.2f ms/step; training time per step of "
                  "runs made one after the other, so machine load that changes between them counts too; "
                  "bench/train_bench.cpp's BM_SamplerStep measures it interleaved)\n",
                  rais_ms - base_ms, 100 * (rais_ms - base_ms) / base_ms, base_ms);
    table += line;
  }
  table += "\n(in each reach cell, (N.NNx) is uniform's wall-clock time to the target divided by the run's)\n";
  std::ofstream(out / "summary.md") << table;
  std::printf("\n%s", table.c_str());

  const std::string plot = std::string(RAISIN_SOURCE_DIR) + "/tools/plot_compare.py";
  const std::string command = "/usr/bin/python3 '" + plot + "' '" + out.string() + "' >/dev/null 2>&1";
  if (fs::exists(plot) && std::system(command.c_str()) == 0)
    std::printf("plots: %s/*.png\n", out.c_str());
  else
    std::printf("plots: not drawn (needs /usr/bin/python3 with matplotlib: apt-get install python3-matplotlib)\n");
  std::printf("report: %s/summary.md\n", out.c_str());
  return rows;
}

}  // namespace


int compare_command(int argc, char** argv) {
  Flags flags("compare");
  declare_train_flags(flags);
  flags.add("samplers", "uniform,rais", "samplers to compare, comma-separated (uniform first: it sets the targets)");
  flags.add("seeds", "", "several seeds, comma-separated: one comparison per seed (out/seed-N/), then a summary paired by seed");
  flags.add_switch("no-fair-baseline", "skip the uniform run given only rais's number of steps");
  flags.set("out", "runs/compare");
  // Finer than raisin train's default: the time to reach a loss is read at these evaluations.
  flags.set("eval-train-every", "0.5");
  if (!flags.parse(argc, argv, 1)) return 0;
  if (!(flags.real("eval-train-every", 0, 1e6) > 0))
    throw error("raisin compare: --eval-train-every must be positive: the report measures the training loss with it");
  if (flags.given("sampler")) throw error("raisin compare: use --samplers (a list), not --sampler");
  if (flags.given("resume") || flags.given("stop-after"))
    throw error("raisin compare: --resume and --stop-after apply to raisin train only");
  if (flags.given("seeds") && flags.given("seed")) throw error("raisin compare: give --seed or --seeds, not both");

  const std::vector<std::string> samplers = split(flags.str("samplers"));
  if (samplers.empty() || samplers.front() != "uniform")
    throw error("raisin compare: --samplers must start with uniform (the baseline), e.g. uniform,rais");
  const fs::path out = flags.str("out");
  const std::vector<std::string> seeds = split(flags.str("seeds"));
  if (seeds.size() < 2) {
    if (seeds.size() == 1) flags.set("seed", seeds.front());
    compare_once(flags, samplers, out);
    return 0;
  }

  // One comparison per seed, then each run's figures over the seeds (speed-ups are paired: each is
  // uniform's time to its own targets over the run's time with the same seed).
  std::vector<std::vector<Row>> per_seed;
  for (const std::string& seed : seeds) {
    Flags f = flags;
    f.set("seed", seed);
    f.integer("seed", 0, INT64_MAX);  // reject a malformed seed before training
    per_seed.push_back(compare_once(f, samplers, out / ("seed-" + seed)));
  }
  std::ostringstream md;
  md << "Over seeds " << flags.str("seeds") << " (mean [min, max]; a speed-up is uniform's wall-clock time to its "
     << "final training loss or test error over the run's, with the same seed; `n/a` where not reached):\n\n"
     << "| run | steps | ms/step | speed-up to uniform's train loss | speed-up to uniform's test error | "
        "final train loss | final test acc |\n|---|---|---|---|---|---|---|\n";
  for (size_t r = 0; r < per_seed.front().size(); ++r) {
    auto stat = [&](double Row::*field, double scale, int digits) {
      std::vector<double> v;
      for (const auto& rows : per_seed)
        if (r < rows.size() && std::isfinite(rows[r].*field)) v.push_back(rows[r].*field * scale);
      if (v.empty()) return std::string("n/a");
      double sum = 0;
      for (double x : v) sum += x;
      char text[96];
      std::snprintf(text, sizeof text, "%.*f [%.*f, %.*f]%s", digits, sum / double(v.size()), digits,
                    *std::min_element(v.begin(), v.end()), digits, *std::max_element(v.begin(), v.end()),
                    v.size() < per_seed.size()
                        ? (" (" + std::to_string(v.size()) + " of " + std::to_string(per_seed.size()) + " seeds)").c_str()
                        : "");
      return std::string(text);
    };
    md << "| " << per_seed.front()[r].name << " | " << stat(&Row::steps, 1, 0) << " | " << stat(&Row::ms_per_step, 1, 2)
       << " | " << stat(&Row::loss_speedup, 1, 2) << " | " << stat(&Row::error_speedup, 1, 2) << " | "
       << stat(&Row::final_loss, 1, 4) << " | " << stat(&Row::final_accuracy, 100, 2) << " |\n";
  }
  std::ofstream(out / "summary.md") << md.str();
  std::printf("\n%s\nreport: %s/summary.md (each seed's in %s/seed-N/)\n", md.str().c_str(), out.c_str(), out.c_str());
  return 0;
}

}  // namespace raisin::cli
