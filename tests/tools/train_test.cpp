// `raisin train` and `raisin eval` end to end, driven through the CLI entry point: a short real-data
// run must learn, a run stopped and resumed (with the uniform, rais and oracle samplers) must equal an
// uninterrupted one bit for bit, and bad
// flags must fail with one clear line.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/dataset.h"
#include "engine/safetensors.h"
#include "tests/tools/run_cli.h"

namespace raisin {
namespace {

namespace fs = std::filesystem;

using test::ScratchDir;
using test::expect_resume_is_exact;
using test::file_bytes;
using test::read_csv;
using test::run;

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

// A bad flag or an impossible setting: exit status 1 and exactly one line on stderr, "error: ..." naming
// what is wrong (the test prints it, so the wording can be read here).
void expect_one_line_error(const std::vector<std::string>& args) {
  ::testing::internal::CaptureStderr();
  const int code = run(args);
  const std::string said = ::testing::internal::GetCapturedStderr();
  std::string command;
  for (const std::string& a : args) command += " " + a;
  EXPECT_EQ(code, 1) << "raisin" << command;
  EXPECT_EQ(said.rfind("error: ", 0), 0u) << "raisin" << command << " said: " << said;
  EXPECT_EQ(std::count(said.begin(), said.end(), '\n'), 1) << "raisin" << command << " said: " << said;
  std::printf("raisin%s\n  %s", command.c_str(), said.c_str());
}

// A checkpoint whose bookkeeping entries were damaged: resume refuses it in one line naming the entry.
TEST(TrainCli, ResumeRefusesDamagedMetadata) {
  const ScratchDir scratch("damaged");
  ASSERT_EQ(run({"train", "--data", "synthetic", "--model", "mlp", "--epochs", "2", "--train-subset", "64",
                 "--batch", "16", "--test-subset", "32", "--eval-train-every", "0", "--stop-after", "1", "--out",
                 scratch.path.string()}),
            0);
  const std::string checkpoint = (scratch.path / "checkpoint.safetensors").string();
  const safetensors::File good = safetensors::read(checkpoint);
  for (const std::string key : {"train.step", "train.progress", "train.epoch_steps"}) {
    safetensors::File damaged = good;
    for (auto& [k, v] : damaged.metadata)
      if (k == key) v = "12abc";
    safetensors::write(checkpoint, damaged);
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(run({"train", "--resume", scratch.path.string()}), 1);
    const std::string said = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(said.find("'" + key + "' = '12abc'"), std::string::npos) << said;
    EXPECT_EQ(std::count(said.begin(), said.end(), '\n'), 1) << said;
  }
}

TEST(TrainCli, BadFlagsFailWithOneClearLine) {
  const ScratchDir scratch("flags");
  const std::string out = scratch.path.string();
  expect_one_line_error({"train", "--learning-rate", "0.1"});
  expect_one_line_error({"train", "--data", "synthetic", "--batch", "many"});
  expect_one_line_error({"train", "--data", "synthetic", "--model", "alexnet", "--out", out});
  expect_one_line_error({"train", "--data", "synthetic", "--batch", "100000", "--out", out});
  expect_one_line_error({"train", "--data", "imagenet"});
  expect_one_line_error({"train", "--data", "mnist", "--data-dir", (scratch.path / "nowhere").string(), "--out", out});
  expect_one_line_error({"train", "--data", "synthetic", "--sampler", "rais", "--rais-pt-thread", "maybe", "--out", out});
  expect_one_line_error({"train", "--data", "synthetic", "--sampler", "importance", "--out", out});
  expect_one_line_error({"train", "--device", "cuda", "--data", "synthetic"});  // no CUDA backend in this binary
  expect_one_line_error({"train", "--device", "gpu", "--data", "synthetic"});
  expect_one_line_error({"train", "--device", "cpu", "--tf32", "--data", "synthetic", "--out", out});
  expect_one_line_error({"train", "--cuda-graphs", "maybe", "--data", "synthetic", "--out", out});
  expect_one_line_error({"train", "--data", "synthetic", "--epochs", "0", "--out", out});
  expect_one_line_error({"train", "--data", "synthetic", "--lr", "-1", "--out", out});
  expect_one_line_error({"train", "--resume", (scratch.path / "nothing").string()});
  expect_one_line_error({"eval"});
  EXPECT_EQ(run({"frobnicate"}), 2);  // the usage
  EXPECT_EQ(run({"train", "--help"}), 0);
}

}  // namespace
}  // namespace raisin
