// `raisin compare` end to end on synthetic data: every run folder, the summary (with the fair
// baseline given rais's number of steps) and a clear error for a bad sampler list.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/tools/run_cli.h"

namespace raisin {
namespace {

namespace fs = std::filesystem;

using test::ScratchDir;
using test::run;

std::vector<std::string> lines(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(CompareCli, RunsEverySamplerAndTheFairBaseline) {
  const ScratchDir scratch("compare");
  const fs::path& out = scratch.path;
  ASSERT_EQ(run({"compare", "--data", "synthetic", "--model", "mlp", "--epochs", "4", "--train-subset", "1024",
                 "--test-subset", "256", "--batch", "32", "--rais-records", "4", "--samplers",
                 "uniform,uniform-iid,rais", "--out", out.string()}),
            0);
  for (const char* name : {"uniform", "uniform-iid", "rais", "uniform-short"})
    EXPECT_TRUE(fs::exists(out / name / "epochs.csv")) << name;
  const auto summary = lines(out / "summary.csv");
  ASSERT_EQ(summary.size(), 5u) << "header and four runs";
  EXPECT_EQ(summary[1].rfind("uniform,128,", 0), 0u) << summary[1];
  // The fair baseline takes exactly as many steps as rais.
  const std::string rais_steps = summary[3].substr(5, summary[3].find(',', 5) - 5);
  EXPECT_EQ(summary[4].rfind("uniform-short," + rais_steps + ",", 0), 0u) << summary[3] << " / " << summary[4];
  EXPECT_TRUE(fs::exists(out / "summary.md"));
  // The training-loss target is uniform's last evaluation of the whole training set.
  const auto evals = lines(out / "uniform" / "train_eval.csv");
  ASSERT_EQ(evals.size(), 1u + 8u) << "every half epoch (compare's default) over 4 epochs";
  const std::string final_loss = evals.back().substr(evals.back().find(',', evals.back().find(',') + 1) + 1);
  EXPECT_NE(summary[0].find(",final_train_loss,"), std::string::npos) << summary[0];
  const std::string loss_field = std::string(",").append(final_loss, 0, final_loss.find(',')).append(",");
  EXPECT_NE(summary[1].find(loss_field), std::string::npos) << summary[1] << " / " << evals.back();
}

TEST(CompareCli, SeveralSeedsArePairedInOneSummary) {
  const ScratchDir scratch("compare_seeds");
  const fs::path& out = scratch.path;
  ASSERT_EQ(run({"compare", "--data", "synthetic", "--model", "mlp", "--epochs", "2", "--train-subset", "512",
                 "--test-subset", "128", "--batch", "32", "--seeds", "3,4", "--out", out.string()}),
            0);
  for (const char* seed : {"seed-3", "seed-4"}) {
    EXPECT_TRUE(fs::exists(out / seed / "summary.csv")) << seed;
    EXPECT_TRUE(fs::exists(out / seed / "uniform-short" / "epochs.csv")) << seed;
  }
  const auto summary = lines(out / "summary.md");
  ASSERT_GE(summary.size(), 7u);
  EXPECT_EQ(summary[0].rfind("Over seeds 3,4", 0), 0u) << summary[0];
  EXPECT_EQ(summary[5].rfind("| rais |", 0), 0u) << summary[5];
  EXPECT_EQ(run({"compare", "--seeds", "1,2", "--seed", "3", "--data", "synthetic"}), 1);
  EXPECT_EQ(run({"compare", "--eval-train-every", "0", "--data", "synthetic"}), 1);
}

TEST(CompareCli, BadSamplerListsFail) {
  const ScratchDir scratch("compare_bad");
  EXPECT_EQ(run({"compare", "--samplers", "rais,uniform", "--data", "synthetic"}), 1);
  EXPECT_EQ(run({"compare", "--sampler", "rais", "--data", "synthetic"}), 1);
  EXPECT_EQ(run({"compare", "--samplers", "uniform,bogus", "--data", "synthetic", "--epochs", "0.1",
                 "--out", scratch.path.string()}),
            1);
}

}  // namespace
}  // namespace raisin
