// `raisin train` on a full disk: the run folder on a small tmpfs (mounted here; needs root, else the test
// skips saying so). A checkpoint that does not fit stops the run with one line naming the file and the
// reason, leaves no partial file behind, and the checkpoint written before it still loads.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

#include "engine/checkpoint.h"
#include "tests/tools/run_cli.h"

namespace raisin {
namespace {

namespace fs = std::filesystem;

// A tmpfs of `size` at a fresh folder, unmounted when done; `skip_reason` says why not when it cannot be.
class SmallDisk {
 public:
  explicit SmallDisk(const std::string& size)
      : path_(fs::temp_directory_path() / ("raisin_full_disk_" + std::to_string(::getpid()))) {
    fs::create_directories(path_);
    if (::mount("tmpfs", path_.c_str(), "tmpfs", 0, ("size=" + size).c_str()) != 0)
      skip_reason_ = "cannot mount a tmpfs (" + std::string(std::strerror(errno)) + "; needs root)";
  }
  ~SmallDisk() {
    if (skip_reason_.empty()) ::umount2(path_.c_str(), MNT_DETACH);
    fs::remove_all(path_);
  }
  const fs::path& path() const { return path_; }
  const std::string& skip_reason() const { return skip_reason_; }

 private:
  fs::path path_;
  std::string skip_reason_;
};

// lenet5's checkpoint (weights and momentum) is about 0.5 MB: the first fits in 768 KB, the second's
// temporary file next to it does not.
TEST(FullDisk, ACheckpointThatDoesNotFitFailsCleanlyAndKeepsThePreviousOne) {
  const SmallDisk disk("768k");
  if (!disk.skip_reason().empty()) GTEST_SKIP() << disk.skip_reason();
  const fs::path out = disk.path() / "run";
  ::testing::internal::CaptureStderr();
  const int code = test::run({"train", "--data", "synthetic", "--model", "lenet5", "--epochs", "3", "--train-subset",
                              "64", "--test-subset", "32", "--batch", "16", "--eval-train-every", "0", "--out",
                              out.string()});
  const std::string said = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(code, 1) << said;
  const std::string last_line = said.substr(said.rfind('\n', said.size() - 2) + 1);
  EXPECT_NE(last_line.find("No space left on device"), std::string::npos) << said;
  EXPECT_NE(last_line.find((out / "checkpoint.safetensors").string()), std::string::npos) << said;
  EXPECT_EQ(last_line.rfind("error: ", 0), 0u) << said;
  EXPECT_FALSE(fs::exists(out / "checkpoint.safetensors.tmp")) << "a partial file was left behind";
  EXPECT_FALSE(fs::exists(out / "model.safetensors"));

  // The first epoch's checkpoint is whole: 4 steps of 16 from 64 examples.
  const auto metadata = read_checkpoint_metadata((out / "checkpoint.safetensors").string());
  std::string step;
  for (const auto& [key, value] : metadata)
    if (key == "train.step") step = value;
  EXPECT_EQ(step, "4");
}

}  // namespace
}  // namespace raisin
