// `raisin train` and `raisin eval` end to end, driven through the CLI entry point: a short real-data
// run must learn, a run stopped and resumed (with the uniform, rais and oracle samplers) must equal an
// uninterrupted one bit for bit, and bad
// flags must fail with one clear line.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/dataset.h"
#include "tests/tools/run_cli.h"

namespace raisin {
namespace {

namespace fs = std::filesystem;

using test::ScratchDir;
using test::run;

std::vector<std::vector<std::string>> read_csv(const fs::path& path) {
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

std::string file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool mnist_available() {
  try {
    load_dataset("mnist");
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

TEST(TrainCli, ShortMnistRunLearns) {
  if (!mnist_available()) GTEST_SKIP() << "MNIST not found (shared/data/mnist); this test needs real data";
  const ScratchDir scratch("mnist");
  const fs::path& out = scratch.path;
  ASSERT_EQ(run({"train", "--data", "mnist", "--model", "lenet5", "--epochs", "2", "--train-subset", "4096",
                 "--test-subset", "2000", "--batch", "64", "--out", out.string()}),
            0);
  const auto epochs = read_csv(out / "epochs.csv");
  ASSERT_EQ(epochs.size(), 3u) << "header and one row per epoch";
  EXPECT_EQ(epochs[0][2], "train_loss");
  const double first_loss = std::stod(epochs[1][2]), last_loss = std::stod(epochs[2][2]);
  const double test_error = std::stod(epochs[2][5]);
  EXPECT_LT(last_loss, 0.6) << "train loss after 2 epochs on 4096 MNIST images (from ln 10 = 2.3)";
  EXPECT_LT(last_loss, first_loss);
  EXPECT_LT(test_error, 0.2) << "PyTorch gets 8-14% in this setting, depending on the seed";
  EXPECT_EQ(read_csv(out / "steps.csv").size(), 1u + 128u);
  EXPECT_TRUE(fs::exists(out / "model.safetensors"));
  EXPECT_TRUE(fs::exists(out / "checkpoint.safetensors"));
  EXPECT_TRUE(fs::exists(out / "log.txt"));

  EXPECT_EQ(run({"eval", "--checkpoint", (out / "model.safetensors").string()}), 0);
}

// Trains `common` straight through, and again stopped after each epoch in `stops` and resumed; the
// final model and every step's loss, learning rate and multiplier must be the same bit for bit.
void expect_resume_is_exact(const std::string& name, const std::vector<std::string>& common,
                            const std::vector<std::string>& stops) {
  const ScratchDir straight_dir(name + "_straight"), split_dir(name + "_split");
  const fs::path &straight = straight_dir.path, &split = split_dir.path;
  auto with = [&](std::vector<std::string> args, std::vector<std::string> extra) {
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  std::vector<std::string> train = {"train"};
  train.insert(train.end(), common.begin(), common.end());
  ASSERT_EQ(run(with(train, {"--out", straight.string()})), 0);
  ASSERT_EQ(run(with(train, {"--out", split.string(), "--stop-after", stops.front()})), 0);
  EXPECT_FALSE(fs::exists(split / "model.safetensors")) << "a stopped run has only its checkpoint";
  for (size_t i = 1; i < stops.size(); ++i)
    ASSERT_EQ(run({"train", "--resume", split.string(), "--stop-after", stops[i]}), 0);
  ASSERT_EQ(run({"train", "--resume", split.string()}), 0);

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
  EXPECT_NE(run({"train", "--resume", split.string()}), 0) << "a finished run cannot be resumed";
}

TEST(TrainCli, ResumedRunEqualsUninterruptedRun) {
  expect_resume_is_exact("uniform", {"--data", "synthetic", "--model", "resnet20", "--epochs", "2", "--train-subset",
                                     "192", "--test-subset", "64", "--batch", "32", "--crop-padding", "2", "--flip",
                                     "--seed", "7"},
                         {"1"});
}

// rais: stopped once in the shuffled warm-up epoch and twice while importance sampling, each time
// with a PT solve in flight and between rebuilds of p.
TEST(TrainCli, ResumedRaisRunEqualsUninterruptedRun) {
  expect_resume_is_exact("rais", {"--data", "synthetic", "--model", "mlp", "--epochs", "6", "--train-subset", "512",
                                  "--test-subset", "64", "--batch", "32", "--sampler", "rais", "--rais-records", "5",
                                  "--rais-refresh", "3", "--lr", "0.005", "--eval-train-every", "0.5", "--seed", "3"},
                         {"1", "3", "4"});
}

TEST(TrainCli, ResumedOracleRunEqualsUninterruptedRun) {
  expect_resume_is_exact("oracle", {"--data", "synthetic", "--model", "mlp", "--epochs", "4", "--train-subset", "256",
                                    "--test-subset", "64", "--batch", "32", "--sampler", "oracle",
                                    "--oracle-refresh", "3", "--lr", "0.005", "--seed", "3"},
                         {"2"});
}

// train_eval.csv holds the whole training set's loss at every --eval-train-every epochs and at the end;
// evaluations are off the training clock: the final training time and the evaluations' own times add
// up to no more than the run's wall-clock time.
TEST(TrainCli, TrainingSetEvaluationsAreOffTheClock) {
  const ScratchDir scratch("train_eval");
  const auto begin = std::chrono::steady_clock::now();
  ASSERT_EQ(run({"train", "--data", "synthetic", "--model", "mlp", "--epochs", "2", "--train-subset", "2048",
                 "--test-subset", "64", "--batch", "64", "--eval-train-every", "0.125", "--out", scratch.path.string()}),
            0);
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  const auto evals = read_csv(scratch.path / "train_eval.csv");
  ASSERT_EQ(evals.size(), 1u + 16u) << "header and one row per 1/8 epoch";
  EXPECT_EQ(evals[0], (std::vector<std::string>{"step", "epoch", "loss", "accuracy", "wall_seconds", "eval_seconds"}));
  EXPECT_EQ(evals[1][0], "4");
  EXPECT_EQ(evals[16][0], "64");
  EXPECT_LT(std::stod(evals[16][2]), std::stod(evals[1][2])) << "the training loss falls";
  double eval_seconds = 0;
  for (size_t i = 1; i < evals.size(); ++i) eval_seconds += std::stod(evals[i][5]);
  const double training_seconds = std::stod(read_csv(scratch.path / "epochs.csv").back()[6]);
  EXPECT_EQ(evals.back()[4], read_csv(scratch.path / "epochs.csv").back()[6]);
  EXPECT_GT(eval_seconds, 0);
  EXPECT_LE(training_seconds + eval_seconds, elapsed);
}

TEST(TrainCli, BadFlagsFailWithOneClearLine) {
  const ScratchDir scratch("flags");
  const fs::path& out = scratch.path;
  EXPECT_EQ(run({"train", "--learning-rate", "0.1"}), 1);
  EXPECT_EQ(run({"train", "--data", "synthetic", "--batch", "many"}), 1);
  EXPECT_EQ(run({"train", "--data", "synthetic", "--model", "alexnet", "--out", out.string()}), 1);
  EXPECT_EQ(run({"train", "--data", "synthetic", "--batch", "100000", "--out", out.string()}), 1);
  EXPECT_EQ(run({"train", "--data", "imagenet"}), 1);
  EXPECT_EQ(run({"train", "--data", "synthetic", "--sampler", "rais", "--rais-pt-thread", "maybe", "--out",
                 out.string()}),
            1);
  EXPECT_EQ(run({"train", "--device", "cuda", "--data", "synthetic"}), 1);  // no CUDA backend in this binary
  EXPECT_EQ(run({"train", "--device", "gpu", "--data", "synthetic"}), 1);
  EXPECT_EQ(run({"train", "--device", "cpu", "--tf32", "--data", "synthetic", "--out", out.string()}), 1);
  EXPECT_EQ(run({"train", "--resume", (out / "nothing").string()}), 1);
  EXPECT_EQ(run({"eval"}), 1);
  EXPECT_EQ(run({"frobnicate"}), 2);
  EXPECT_EQ(run({"train", "--help"}), 0);
}

}  // namespace
}  // namespace raisin
