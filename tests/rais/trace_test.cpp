// The RAIS trace (rais/trace.h): a traced RaisSampler writes FORMAT.txt and, per swapped-in PT solve,
// records / result / examples CSV files with the documented columns and row counts, whose (c, d) match
// the sampler's, whose p sums to 1 and matches probabilities(); tracing does not change the draws;
// failures to write throw raisin::Error naming the path.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <unistd.h>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/error.h"
#include "rais/rais_sampler.h"
#include "rais/trace.h"

namespace raisin::rais {
namespace {

namespace fs = std::filesystem;

struct Csv {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  size_t column(const std::string& name) const {
    for (size_t k = 0; k < header.size(); ++k)
      if (header[k] == name) return k;
    ADD_FAILURE() << "no column " << name;
    return 0;
  }
  double number(size_t row, const std::string& name) const { return std::stod(rows.at(row).at(column(name))); }
};

// Splits one CSV line; handles a double-quoted field with doubled inner quotes.
std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char ch = line[i];
    if (quoted) {
      if (ch == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        out.back() += '"';
        ++i;
      } else if (ch == '"') {
        quoted = false;
      } else {
        out.back() += ch;
      }
    } else if (ch == '"') {
      quoted = true;
    } else if (ch == ',') {
      out.emplace_back();
    } else {
      out.back() += ch;
    }
  }
  return out;
}

Csv read_csv(const fs::path& path) {
  Csv csv;
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::string line;
  if (std::getline(in, line)) csv.header = split(line);
  while (std::getline(in, line)) {
    csv.rows.push_back(split(line));
    EXPECT_EQ(csv.rows.back().size(), csv.header.size()) << path << " row " << csv.rows.size();
  }
  return csv;
}

std::string solve_file(int number, const char* kind) {
  char name[64];
  std::snprintf(name, sizeof name, "solve_%04d_%s.csv", number, kind);
  return name;
}

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("raisin_trace_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir;
}

struct TraceRun {
  std::vector<std::vector<int32_t>> indices;
  std::vector<std::vector<float>> weights;
  RaisStats stats;
  std::vector<double> p;                            // probabilities() after the last draw
  std::vector<std::vector<double>> p_at_swap;       // probabilities() at each step a solve was swapped in
  std::vector<int64_t> swap_steps;
};

constexpr int64_t kN = 60;
constexpr int kBatch = 10;

// Like rais_sampler_test: examples below 10 are "hard" (norm 1.2), the rest easy (0.05).
TraceRun run(const std::string& trace_dir, int64_t steps) {
  RaisOptions options;
  options.record_batches = 2;
  options.trace_dir = trace_dir;
  RaisSampler rais(kN, 7, options);
  TraceRun r;
  std::vector<int32_t> idx;
  std::vector<float> w, norms(kBatch);
  int64_t solves = 0;
  for (int64_t step = 0; step < steps; ++step) {
    rais.draw(step, kBatch, idx, w);
    if (rais.stats().solves != solves) {
      solves = rais.stats().solves;
      r.swap_steps.push_back(step);
      r.p_at_swap.push_back(rais.probabilities());
    }
    r.indices.push_back(idx);
    r.weights.push_back(w);
    for (int j = 0; j < kBatch; ++j) norms[j] = idx[j] < 10 ? 1.2f : 0.05f + 0.01f * float(idx[j] % 7);
    double g = 0;
    for (int j = 0; j < kBatch; ++j) g += (w.empty() ? 1.0 : w[j]) * norms[j] / kBatch;
    rais.observe({step, idx, norms.data(), w.empty() ? nullptr : w.data(), 0.01 * g * g});
  }
  r.stats = rais.stats();
  r.p = rais.probabilities();
  return r;
}

TEST(RaisTrace, WritesDocumentedFilesAndKeepsDraws) {
  const fs::path root = fresh_dir("files");
  const fs::path dir = root / "nested";
  const int64_t steps = 40;
  const TraceRun traced = run(dir.string(), steps);
  const TraceRun plain = run("", steps);
  EXPECT_EQ(traced.indices, plain.indices);
  EXPECT_EQ(traced.weights, plain.weights);
  EXPECT_EQ(traced.stats.c, plain.stats.c);
  EXPECT_EQ(traced.stats.d, plain.stats.d);

  ASSERT_TRUE(fs::exists(dir / "FORMAT.txt"));
  {
    std::ifstream in(dir / "FORMAT.txt");
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_EQ(text.str(), kTraceFormat);
    for (std::string column : {"s0", "v", "w", "step_launched", "step_swapped_in", "ok", "converged",
                               "floor_active", "iterations", "H", "objective", "c0", "d0", "message",
                               "index", "last_norm", "last_seen", "p"})
      EXPECT_NE(text.str().find("\n  " + column), std::string::npos) << column;
  }

  // Epoch of 6 steps, then a solve launched every 2 steps and swapped in 2 steps later.
  const int64_t solves = traced.stats.solves;
  ASSERT_GE(solves, 10);
  EXPECT_EQ(traced.stats.failed_solves, 0);
  ASSERT_EQ(int64_t(traced.swap_steps.size()), solves);
  EXPECT_FALSE(fs::exists(dir / solve_file(int(solves + 1), "result")));
  for (int s = 1; s <= solves; ++s) {
    SCOPED_TRACE("solve " + std::to_string(s));
    for (const char* kind : {"records", "result", "examples"}) ASSERT_TRUE(fs::exists(dir / solve_file(s, kind)));

    const Csv records = read_csv(dir / solve_file(s, "records"));
    EXPECT_EQ(records.header, (std::vector<std::string>{"s0", "s1", "s2", "s3", "v", "w"}));
    EXPECT_EQ(records.rows.size(), size_t(2 * kBatch)) << "|D| = record_batches · B";
    for (size_t j = 0; j < records.rows.size(); ++j) {
      EXPECT_EQ(records.number(j, "s0"), 1.0);
      EXPECT_GT(records.number(j, "w"), 0.0);
      EXPECT_GE(records.number(j, "v"), 0.0);
    }

    const Csv result = read_csv(dir / solve_file(s, "result"));
    EXPECT_EQ(result.header, (std::vector<std::string>{"step_launched", "step_swapped_in", "ok", "converged",
                                                        "floor_active", "iterations", "H", "objective", "c0",
                                                        "c1", "c2", "c3", "d0", "d1", "d2", "d3", "message"}));
    ASSERT_EQ(result.rows.size(), 1u);
    EXPECT_EQ(result.number(0, "ok"), 1.0);
    EXPECT_EQ(result.rows[0][result.column("message")], "");
    const int64_t swapped = int64_t(result.number(0, "step_swapped_in"));
    EXPECT_EQ(swapped, traced.swap_steps[size_t(s - 1)]);
    EXPECT_EQ(int64_t(result.number(0, "step_launched")), swapped - 2);
    EXPECT_GT(result.number(0, "objective"), 0.0);
    if (s == solves) {  // the last swapped-in (c, d) is the one in use
      for (int k = 0; k < kFeatureCount; ++k) {
        const std::string kk = std::to_string(k);
        EXPECT_EQ(result.number(0, std::string("c").append(kk)), traced.stats.c[size_t(k)]) << k;
        EXPECT_EQ(result.number(0, std::string("d").append(kk)), traced.stats.d[size_t(k)]) << k;
      }
    }

    const Csv examples = read_csv(dir / solve_file(s, "examples"));
    EXPECT_EQ(examples.header,
              (std::vector<std::string>{"index", "last_norm", "last_seen", "s0", "s1", "s2", "s3", "p"}));
    ASSERT_EQ(examples.rows.size(), size_t(kN));
    double sum = 0;
    for (size_t i = 0; i < examples.rows.size(); ++i) {
      EXPECT_EQ(examples.number(i, "index"), double(i));
      EXPECT_LT(examples.number(i, "last_seen"), double(swapped));
      const double p = examples.number(i, "p");
      EXPECT_EQ(p, traced.p_at_swap[size_t(s - 1)][i]) << "p as used for the draw at the swap-in step";
      sum += p;
    }
    EXPECT_NEAR(sum, 1.0, 1e-12);
  }
  fs::remove_all(root);
}

TEST(RaisTrace, FailedSolvesAreTracedToo) {
  // Solves that cannot succeed: the proxy norms are not finite, so PT reports failure and the
  // sampler keeps serving the shuffled warm-up (the examples' p is then 1/n).
  const fs::path dir = fresh_dir("failed");
  RaisOptions options;
  options.record_batches = 2;
  options.trace_dir = dir.string();
  RaisSampler rais(kN, 3, options);
  std::vector<int32_t> idx;
  std::vector<float> w, norms(kBatch, 0.3f);
  for (int64_t step = 0; step < 12; ++step) {
    rais.draw(step, kBatch, idx, w);
    for (int j = 0; j < kBatch; ++j) norms[j] = step < 2 ? 0.1f : INFINITY;
    rais.observe({step, idx, norms.data(), w.empty() ? nullptr : w.data(), 0.01});
  }
  const RaisStats stats = rais.stats();
  ASSERT_GE(stats.solves, 1);
  ASSERT_GE(stats.failed_solves, 1);
  for (int s = 1; s <= stats.solves; ++s) {
    const Csv result = read_csv(dir / solve_file(s, "result"));
    ASSERT_EQ(result.rows.size(), 1u);
    const Csv examples = read_csv(dir / solve_file(s, "examples"));
    ASSERT_EQ(examples.rows.size(), size_t(kN));
    double sum = 0;
    for (size_t i = 0; i < examples.rows.size(); ++i) {
      EXPECT_EQ(examples.number(i, "p"), 1.0 / double(kN));
      sum += examples.number(i, "p");
    }
    EXPECT_NEAR(sum, 1.0, 1e-12);
    EXPECT_EQ(result.number(0, "ok"), 0.0);
    EXPECT_NE(result.rows[0][result.column("message")], "");
  }
  fs::remove_all(dir);
}

TEST(RaisTrace, UnwritableFolderThrowsNamingThePath) {
  const fs::path dir = fresh_dir("bad");
  fs::create_directories(dir);
  const fs::path file = dir / "a_file";
  std::ofstream(file) << "x";
  RaisOptions options;
  options.trace_dir = (file / "sub").string();
  try {
    RaisSampler rais(kN, 1, options);
    FAIL() << "expected raisin::Error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find((file / "sub").string()), std::string::npos) << message;
    EXPECT_NE(message.find("Not a directory"), std::string::npos) << message;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace raisin::rais
