// `raisin train` and `raisin eval` end to end, driven through the CLI entry point: a short real-data
// run must learn, a run stopped and resumed must equal an uninterrupted one bit for bit, and bad
// flags must fail with one clear line.
#include <gtest/gtest.h>

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

using test::run;

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("raisin_train_test_" + name);
  fs::remove_all(dir);
  return dir;
}

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
  const fs::path out = fresh_dir("mnist");
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
  const std::vector<std::string> common = {"--data", "synthetic", "--model", "resnet20", "--epochs", "2",
                                           "--train-subset", "192", "--test-subset", "64", "--batch", "32",
                                           "--crop-padding", "2", "--flip", "--seed", "7"};
  const fs::path straight = fresh_dir("straight"), split = fresh_dir("split");
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"train"};
    args.insert(args.end(), common.begin(), common.end());
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  ASSERT_EQ(run(with({"--out", straight.string()})), 0);
  ASSERT_EQ(run(with({"--out", split.string(), "--stop-after", "1"})), 0);
  EXPECT_FALSE(fs::exists(split / "model.safetensors")) << "a stopped run has only its checkpoint";
  ASSERT_EQ(run({"train", "--resume", split.string()}), 0);

  EXPECT_EQ(file_bytes(straight / "model.safetensors"), file_bytes(split / "model.safetensors"));
  const auto a = read_csv(straight / "steps.csv"), b = read_csv(split / "steps.csv");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)  // step, epoch, loss, accuracy, lr, multiplier (not the timings)
    for (size_t c = 0; c < 6; ++c) ASSERT_EQ(a[i][c], b[i][c]) << "steps.csv row " << i << " column " << c;
  EXPECT_EQ(read_csv(split / "epochs.csv").size(), 3u);
  EXPECT_NE(run({"train", "--resume", split.string()}), 0) << "a finished run cannot be resumed";
}

TEST(TrainCli, BadFlagsFailWithOneClearLine) {
  const fs::path out = fresh_dir("flags");
  EXPECT_EQ(run({"train", "--learning-rate", "0.1"}), 1);
  EXPECT_EQ(run({"train", "--data", "synthetic", "--batch", "many"}), 1);
  EXPECT_EQ(run({"train", "--data", "synthetic", "--model", "alexnet", "--out", out.string()}), 1);
  EXPECT_EQ(run({"train", "--data", "synthetic", "--batch", "100000", "--out", out.string()}), 1);
  EXPECT_EQ(run({"train", "--data", "imagenet"}), 1);
  EXPECT_EQ(run({"train", "--device", "cuda", "--data", "synthetic"}), 1);
  EXPECT_EQ(run({"train", "--resume", (out / "nothing").string()}), 1);
  EXPECT_EQ(run({"eval"}), 1);
  EXPECT_EQ(run({"frobnicate"}), 2);
  EXPECT_EQ(run({"train", "--help"}), 0);
}

}  // namespace
}  // namespace raisin
