// `raisin train` when a step's loss or gradient is not finite (lr 1000 makes an mlp diverge within a few
// steps): with --on-nonfinite stop (the default) the run ends with one line naming the step, what was
// not finite and its value, keeps every row before it, and leaves the checkpoint of the epoch before
// intact and finite; with skip, each skipped step is logged, and a run that only skips stops after 20.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/checkpoint.h"
#include "models/models.h"
#include "tests/tools/run_cli.h"

namespace raisin {
namespace {

using test::read_csv;
using test::run;
using test::ScratchDir;

std::vector<std::string> diverging(const std::string& out, const std::string& epochs) {
  // 2 steps per epoch; the learning rate warms up over the first epoch, so the first epoch ends (and its
  // checkpoint is written) before the steps blow up.
  return {"train", "--data", "synthetic", "--model", "mlp", "--epochs", epochs, "--train-subset", "64", "--test-subset",
          "32", "--batch", "32", "--schedule", "constant", "--warmup", "1", "--lr", "1000", "--eval-train-every", "0",
          "--out", out};
}

TEST(NonFiniteCli, StopNamesTheStepAndKeepsTheLastCheckpoint) {
  const ScratchDir scratch("nonfinite_stop");
  ::testing::internal::CaptureStderr();
  const int status = run(diverging(scratch.path.string(), "6"));
  const std::string said = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(status, 1) << said;
  const size_t at = said.find("error: step ");
  ASSERT_NE(at, std::string::npos) << said;
  const std::string line = said.substr(at, said.find('\n', at) - at);
  EXPECT_EQ(said.find('\n', at), said.size() - 1) << "one line, the last: " << said;
  const int64_t bad_step = std::stoll(line.substr(12));
  EXPECT_TRUE(line.find(": the loss is ") != std::string::npos || line.find(": the gradient of ") != std::string::npos)
      << line;
  EXPECT_NE(line.find(" is NaN") == std::string::npos ? line.find(" is inf") : line.find(" is NaN"), std::string::npos)
      << line;
  const std::string checkpoint = (scratch.path / "checkpoint.safetensors").string();
  EXPECT_NE(line.find("the last checkpoint, " + checkpoint + ", is intact"), std::string::npos) << line;
  EXPECT_NE(test::file_bytes(scratch.path / "log.txt").find(line), std::string::npos) << "the log has it too";

  const auto steps = read_csv(scratch.path / "steps.csv");
  ASSERT_EQ(int64_t(steps.size()), 1 + bad_step) << "a header and every step before step " << bad_step;
  for (size_t i = 1; i < steps.size(); ++i) EXPECT_TRUE(std::isfinite(std::stod(steps[i][2]))) << "row " << i;
  // The checkpoint loads and holds finite parameters.
  auto model = make_model("mlp", {1, 28, 28, 10}, 1);
  const auto metadata = load_checkpoint(checkpoint, *model, nullptr);
  for (const auto& [name, p] : model->named_parameters())
    for (int64_t i = 0; i < p->value.numel(); ++i) ASSERT_TRUE(std::isfinite(p->value.f32()[i])) << name;
}

TEST(NonFiniteCli, SkipLogsEachSkippedStepAndStopsAfterTwentyInARow) {
  const ScratchDir scratch("nonfinite_skip");
  std::vector<std::string> args = diverging(scratch.path.string(), "20");
  args.insert(args.end(), {"--on-nonfinite", "skip"});
  ::testing::internal::CaptureStderr();
  const int status = run(args);
  const std::string said = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(status, 1) << said;
  EXPECT_NE(said.find("error: 20 steps in a row had non-finite values"), std::string::npos) << said;
  const std::string log = test::file_bytes(scratch.path / "log.txt");
  size_t skipped = 0;
  for (size_t at = log.find("; skipped (--on-nonfinite skip)"); at != std::string::npos;
       at = log.find("; skipped (--on-nonfinite skip)", at + 1))
    ++skipped;
  EXPECT_GE(skipped, 20u) << log;
  // Every step has its row, the skipped ones included.
  const auto steps = read_csv(scratch.path / "steps.csv");
  EXPECT_GE(steps.size(), 1 + skipped);
}

}  // namespace
}  // namespace raisin
