// Drives the raisin command line in-process for the CLI tests: run({"train", "--epochs", "1"}); ScratchDir,
// an empty folder for a test's runs; readers of its CSVs; and the check that a run stopped and resumed
// equals an uninterrupted one.
#pragma once
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "tools/cli/cli.h"

namespace raisin::test {

inline int run(std::vector<std::string> args) {
  args.insert(args.begin(), "raisin");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return cli::main(int(argv.size()), argv.data());
}

// An empty temporary folder for a test's runs, named after the test and this process (test binaries of
// several builds may run at once), removed when it goes out of scope.
struct ScratchDir {
  explicit ScratchDir(const std::string& name)
      : path(std::filesystem::temp_directory_path() / ("raisin_cli_test_" + std::to_string(::getpid()) + "_" + name)) {
    std::filesystem::remove_all(path);
  }
  ~ScratchDir() { std::filesystem::remove_all(path); }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path path;
};

inline std::vector<std::vector<std::string>> read_csv(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

inline std::string file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The finished runs in folders `straight` and `split` trained the same: the final models bit for bit, and every
// step's and evaluation's numbers (not the timings) in steps.csv, epochs.csv and train_eval.csv.
inline void expect_same_runs(const std::filesystem::path& straight, const std::filesystem::path& split) {
  EXPECT_TRUE(file_bytes(straight / "model.safetensors") == file_bytes(split / "model.safetensors"))
      << "the final models differ";
  const auto a = read_csv(straight / "steps.csv"), b = read_csv(split / "steps.csv");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)  // step, epoch, loss, accuracy, lr, multiplier (not the timings)
    for (size_t c = 0; c < 6; ++c) ASSERT_EQ(a[i][c], b[i][c]) << "steps.csv row " << i << " column " << c;
  const auto ea = read_csv(straight / "epochs.csv"), eb = read_csv(split / "epochs.csv");
  ASSERT_EQ(ea.size(), eb.size());
  for (size_t i = 0; i < ea.size(); ++i)  // step, epoch, train and test loss and accuracy
    for (size_t c = 0; c < 6; ++c) ASSERT_EQ(ea[i][c], eb[i][c]) << "epochs.csv row " << i << " column " << c;
  const auto ta = read_csv(straight / "train_eval.csv"), tb = read_csv(split / "train_eval.csv");
  ASSERT_EQ(ta.size(), tb.size());
  for (size_t i = 0; i < ta.size(); ++i)  // step, epoch, loss, accuracy
    for (size_t c = 0; c < 4; ++c) ASSERT_EQ(ta[i][c], tb[i][c]) << "train_eval.csv row " << i << " column " << c;
}

// Trains `common` straight through, and again stopped after each epoch in `stops` and resumed; the
// final model and every step's loss, learning rate and multiplier must be the same bit for bit.
inline void expect_resume_is_exact(const std::string& name, const std::vector<std::string>& common,
                                   const std::vector<std::string>& stops) {
  const ScratchDir straight_dir(name + "_straight"), split_dir(name + "_split");
  const std::filesystem::path &straight = straight_dir.path, &split = split_dir.path;
  auto with = [&](std::vector<std::string> args, std::vector<std::string> extra) {
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  std::vector<std::string> train = {"train"};
  train.insert(train.end(), common.begin(), common.end());
  ASSERT_EQ(run(with(train, {"--out", straight.string()})), 0);
  ASSERT_EQ(run(with(train, {"--out", split.string(), "--stop-after", stops.front()})), 0);
  EXPECT_FALSE(std::filesystem::exists(split / "model.safetensors")) << "a stopped run has only its checkpoint";
  for (size_t i = 1; i < stops.size(); ++i)
    ASSERT_EQ(run({"train", "--resume", split.string(), "--stop-after", stops[i]}), 0);
  ASSERT_EQ(run({"train", "--resume", split.string()}), 0);

  expect_same_runs(straight, split);
  EXPECT_NE(run({"train", "--resume", split.string()}), 0) << "a finished run cannot be resumed";
}

}  // namespace raisin::test
