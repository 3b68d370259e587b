// SIGINT and SIGTERM during `raisin train` (tools/cli/interrupt.h): the run writes a checkpoint at the
// step it reached, exits with 128 + the signal, says how to continue, and `--resume` finishes it exactly
// as an uninterrupted run would have. The signal is sent once the run has logged a few steps (the log
// is flushed line by line), so it lands in the middle of an epoch.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/tools/run_cli.h"

namespace raisin {
namespace {

using test::run;
using test::ScratchDir;

int status_lines(const std::filesystem::path& log) {
  std::ifstream in(log);
  int count = 0;
  for (std::string line; std::getline(in, line);) count += line.find(" ETA ") != std::string::npos;  // per step
  return count;
}

// Runs `args` and sends `signal` to this process once the run's log has `after` step lines.
int run_and_signal(const std::vector<std::string>& args, const std::filesystem::path& log, int after, int signal) {
  std::atomic<bool> done{false};
  std::thread sender([&] {
    while (!done.load() && status_lines(log) < after) std::this_thread::sleep_for(std::chrono::microseconds(200));
    if (!done.load()) ::kill(::getpid(), signal);
  });
  const int code = run(args);
  done.store(true);
  sender.join();
  return code;
}

void expect_interrupted_run_resumes_exactly(const std::string& name, const std::vector<std::string>& common,
                                            int signal) {
  const ScratchDir straight_dir(name + "_straight"), split_dir(name + "_split");
  const std::filesystem::path &straight = straight_dir.path, &split = split_dir.path;
  std::vector<std::string> train = {"train", "--log-every", "1"};
  train.insert(train.end(), common.begin(), common.end());
  std::vector<std::string> a = train, b = train;
  a.insert(a.end(), {"--out", straight.string()});
  b.insert(b.end(), {"--out", split.string()});
  ASSERT_EQ(run(a), 0);

  ::testing::internal::CaptureStderr();
  const int code = run_and_signal(b, split / "log.txt", 5, signal);
  const std::string said = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(code, 128 + signal) << said;
  EXPECT_TRUE(std::filesystem::exists(split / "checkpoint.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(split / "model.safetensors")) << "an interrupted run has only its checkpoint";
  const std::string signal_text = signal == SIGINT ? "SIGINT" : "SIGTERM";
  EXPECT_NE(said.find("interrupted by " + signal_text), std::string::npos) << said;
  EXPECT_NE(said.find("raisin train --resume " + split.string()), std::string::npos) << said;
  EXPECT_NE(test::file_bytes(split / "log.txt").find("interrupted by " + signal_text), std::string::npos);
  const auto rows = test::read_csv(split / "steps.csv");
  const auto all = test::read_csv(straight / "steps.csv");
  EXPECT_GT(rows.size(), 5u);
  EXPECT_LT(rows.size(), all.size()) << "the signal came after the last step";

  ASSERT_EQ(run({"train", "--resume", split.string()}), 0);
  test::expect_same_runs(straight, split);
}

// RAIS on the cpu, interrupted inside an epoch: its per-example state, records, pending PT solve and
// gain ratio are in the checkpoint.
TEST(InterruptCli, SigintWritesACheckpointAndResumeFinishesExactly) {
  expect_interrupted_run_resumes_exactly("interrupt_int",
                                         {"--data", "synthetic", "--model", "mlp", "--epochs", "3", "--train-subset",
                                          "512", "--test-subset", "64", "--batch", "16", "--sampler", "rais",
                                          "--rais-records", "4", "--rais-refresh", "3", "--lr", "0.01",
                                          "--eval-train-every", "1", "--seed", "4"},
                                         SIGINT);
}

TEST(InterruptCli, SigtermWritesACheckpointAndResumeFinishesExactly) {
  expect_interrupted_run_resumes_exactly("interrupt_term",
                                         {"--data", "synthetic", "--model", "lenet5", "--epochs", "2", "--train-subset",
                                          "256", "--test-subset", "64", "--batch", "16", "--lr", "0.02", "--seed", "2"},
                                         SIGTERM);
}

// After the run the signals act as before it (the guard restores the previous handlers).
TEST(InterruptCli, HandlersAreRestoredAfterTheRun) {
  struct sigaction before {};
  ::sigaction(SIGINT, nullptr, &before);
  const ScratchDir dir("interrupt_restore");
  ASSERT_EQ(run({"train", "--data", "synthetic", "--model", "mlp", "--epochs", "0.25", "--train-subset", "256",
                 "--test-subset", "32", "--eval-train-every", "0", "--out", dir.path.string()}),
            0);
  struct sigaction after {};
  ::sigaction(SIGINT, nullptr, &after);
  EXPECT_EQ(after.sa_handler, before.sa_handler);
}

}  // namespace
}  // namespace raisin
