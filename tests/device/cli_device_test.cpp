// `raisin train --device cuda` end to end through the CLI (over the CUDA emulator in CI, on a GPU in the
// real build): the RAIS sampler on the device, steps queued in runs and drained, evaluations at the
// steps where progress crosses each boundary, and a run stopped and resumed equal to an uninterrupted one.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "tests/device/cuda_backend_test.h"
#include "tests/tools/run_cli.h"

namespace raisin {
namespace {

class DeviceCli : public test::CudaBackendTest {};

const std::vector<std::string> kRaisRun = {"--device", "cuda", "--data", "synthetic", "--model", "mlp",
                                           "--epochs", "4.5", "--train-subset", "512", "--test-subset", "64",
                                           "--batch", "32", "--sampler", "rais", "--rais-records", "5",
                                           "--rais-refresh", "3", "--lr", "0.005", "--eval-train-every", "0.75",
                                           "--seed", "3"};

TEST_F(DeviceCli, RaisRunStoppedAndResumedEqualsUninterrupted) {
  test::expect_resume_is_exact("device_rais", kRaisRun, {"1", "3"});
}

// --cuda-graphs off launches every kernel of every step; the default replays a captured step. Same run.
TEST_F(DeviceCli, CudaGraphsOnAndOffTrainTheSame) {
  const test::ScratchDir on("device_graphs_on"), off("device_graphs_off");
  std::vector<std::string> args = {"train"};
  args.insert(args.end(), kRaisRun.begin(), kRaisRun.end());
  std::vector<std::string> with_graphs = args, without = args;
  with_graphs.insert(with_graphs.end(), {"--out", on.path.string()});
  without.insert(without.end(), {"--out", off.path.string(), "--cuda-graphs", "off"});
  ASSERT_EQ(test::run(with_graphs), 0);
  ASSERT_EQ(test::run(without), 0);
  EXPECT_TRUE(test::file_bytes(on.path / "model.safetensors") == test::file_bytes(off.path / "model.safetensors"))
      << "the final models differ";
  const auto a = test::read_csv(on.path / "steps.csv"), b = test::read_csv(off.path / "steps.csv");
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)  // step, epoch, loss, accuracy, lr, multiplier (not the timings)
    for (size_t c = 0; c < 6; ++c) ASSERT_EQ(a[i][c], b[i][c]) << "steps.csv row " << i << " column " << c;
}

// Each epochs.csv and train_eval.csv row is written at the first step whose progress reaches its
// boundary, as with one step at a time, although the steps were queued in runs.
TEST_F(DeviceCli, EvaluatesAtTheStepThatCrossesEachBoundary) {
  const test::ScratchDir scratch("device_boundaries");
  std::vector<std::string> args = {"train", "--out", scratch.path.string()};
  args.insert(args.end(), kRaisRun.begin(), kRaisRun.end());
  ASSERT_EQ(test::run(args), 0);
  const auto steps = test::read_csv(scratch.path / "steps.csv");
  ASSERT_GT(steps.size(), 2u);
  std::vector<double> progress(steps.size() - 1);  // after step i
  for (size_t i = 1; i < steps.size(); ++i) progress[i - 1] = std::stod(steps[i][1]);
  EXPECT_NE(std::stod(steps.back()[5]), 1.0) << "r̂ should have left 1 after the warm-up";
  auto check = [&](const char* file, double every) {
    const auto rows = test::read_csv(scratch.path / file);
    ASSERT_GT(rows.size(), 1u) << file;
    for (size_t r = 1; r < rows.size(); ++r) {
      const int64_t step = std::stoll(rows[r][0]);  // steps taken when the row was written
      ASSERT_GE(step, 1);
      ASSERT_LE(step, int64_t(progress.size()));
      const double after = progress[size_t(step - 1)], before = step >= 2 ? progress[size_t(step - 2)] : 0.0;
      const bool last = step == int64_t(progress.size());
      EXPECT_TRUE(last || std::floor((after + 1e-9) / every) > std::floor((before + 1e-9) / every))
          << file << " row " << r << " at step " << step << " (progress " << before << " -> " << after << ")";
    }
  };
  check("epochs.csv", 1.0);
  check("train_eval.csv", 0.75);
}

// A loss that stops being finite inside a queued run: the run stops with one line naming the step,
// and steps.csv keeps every step before it.
TEST_F(DeviceCli, NonFiniteLossStopsAtItsStepAndKeepsTheRowsBefore) {
  const test::ScratchDir scratch("device_nan");
  ::testing::internal::CaptureStderr();
  const int status = test::run({"train", "--device", "cuda", "--data", "synthetic", "--model", "mlp", "--epochs", "3",
                                "--train-subset", "512", "--test-subset", "64", "--batch", "32", "--schedule",
                                "constant", "--lr", "1000", "--out", scratch.path.string()});
  const std::string errors = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(status, 1);
  const size_t at = errors.find("error: step ");
  ASSERT_NE(at, std::string::npos) << errors;
  const int64_t bad_step = std::stoll(errors.substr(at + 12));
  EXPECT_NE(errors.find("training stopped without applying that step", at), std::string::npos) << errors;
  ASSERT_GE(bad_step, 2) << "the failure should fall inside a queued run, after the first step (run alone)";
  const auto steps = test::read_csv(scratch.path / "steps.csv");
  ASSERT_EQ(int64_t(steps.size()), 1 + bad_step) << "a header and every step before step " << bad_step;
  for (size_t i = 1; i < steps.size(); ++i) EXPECT_TRUE(std::isfinite(std::stod(steps[i][2]))) << "row " << i;
}

// raisin compare on the device with every sampler, the oracle's passes over the training set included.
TEST_F(DeviceCli, CompareRunsEverySamplerOnTheDevice) {
  const test::ScratchDir scratch("device_compare");
  ASSERT_EQ(test::run({"compare", "--device", "cuda", "--data", "synthetic", "--model", "mlp", "--epochs", "3",
                       "--train-subset", "512", "--test-subset", "64", "--batch", "32", "--rais-records", "4",
                       "--samplers", "uniform,uniform-iid,rais,oracle", "--out", scratch.path.string()}),
            0);
  const auto summary = test::read_csv(scratch.path / "summary.csv");
  ASSERT_EQ(summary.size(), 6u) << "header, four samplers and the fair baseline";
  for (const char* name : {"uniform", "uniform-iid", "rais", "oracle", "uniform-short"}) {
    const auto epochs = test::read_csv(scratch.path / name / "epochs.csv");
    EXPECT_GE(epochs.size(), 4u) << name << ": a header and at least three epochs";
  }
}

}  // namespace
}  // namespace raisin
