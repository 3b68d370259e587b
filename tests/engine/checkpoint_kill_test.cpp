// A process killed (SIGKILL) while it writes a checkpoint: the file at the checkpoint's path is always a
// whole checkpoint, the one before or the one being written, never a torn one (save_checkpoint writes a
// temporary file, fsyncs it and renames it over the old one). A child process writes two 8 MB
// checkpoints in turn, forever; the parent kills it at varying moments and loads what is there.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "engine/checkpoint.h"
#include "engine/init.h"
#include "engine/layers.h"

namespace raisin {
namespace {

namespace fs = std::filesystem;

// Every weight and bias element = value (written through the pointers: no kernel, no OpenMP, which
// a forked child must not start).
void set_all(Linear& layer, float value) {
  for (const auto& [name, t] : layer.state_dict()) {
    float* data = t.f32();
    for (int64_t i = 0; i < t.numel(); ++i) data[i] = value;
  }
}

// Writes the two layers' checkpoints in turn until killed; never returns.
[[noreturn]] void write_forever(const std::string& path, const Linear& ones, const Linear& twos) {
  for (;;) {
    save_checkpoint(path, ones, nullptr, {{"value", "1"}});
    save_checkpoint(path, twos, nullptr, {{"value", "2"}});
  }
}

// The file's inode (0: none), new with every completed write: the rename puts another file in place.
ino_t inode_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// Waits until the inode at `path` differs from `from`, and returns the new one.
ino_t wait_for_new_file(const std::string& path, ino_t from) {
  for (;;) {
    if (const ino_t now = inode_of(path); now != 0 && now != from) return now;
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

TEST(CheckpointKill, AKilledWriterLeavesAWholeCheckpoint) {
  const fs::path dir = fs::temp_directory_path() / ("raisin_kill_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "checkpoint.safetensors").string();
  Rng rng(1);
  Linear ones(2048, 1024, rng), twos(2048, 1024, rng), loaded(2048, 1024, rng);
  set_all(ones, 1.0f);
  set_all(twos, 2.0f);

  int kills_mid_write = 0;
  bool seen[3] = {false, false, false};  // by value
  for (int round = 0; round < 12; ++round) {
    const ino_t before = inode_of(path);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0) << "fork failed";
    if (child == 0) write_forever(path, ones, twos);
    // Each round first writes the ones. Odd rounds: kill as soon as the twos are in place too. Even
    // rounds: kill at a moment that moves across the write of the twos.
    const ino_t first = wait_for_new_file(path, before);
    if (round % 2 == 1) {
      wait_for_new_file(path, first);
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(500 + 3000 * round));
      kills_mid_write += fs::exists(path + ".tmp");
    }
    ::kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the writer died otherwise: " << status;

    std::vector<std::pair<std::string, std::string>> metadata;
    ASSERT_NO_THROW(metadata = load_checkpoint(path, loaded, nullptr)) << "round " << round;
    float expected = 0;
    for (const auto& [key, value] : metadata)
      if (key == "value") expected = std::stof(value);
    ASSERT_TRUE(expected == 1.0f || expected == 2.0f) << "round " << round;
    seen[int(expected)] = true;
    for (const auto& [name, t] : loaded.state_dict())
      for (int64_t i = 0; i < t.numel(); ++i) ASSERT_EQ(t.f32()[i], expected) << name << " element " << i;
  }
  EXPECT_GT(kills_mid_write, 0) << "no kill landed while a temporary file was being written";
  EXPECT_TRUE(seen[1] && seen[2]) << "the loaded checkpoints should include both contents";
  fs::remove_all(dir);
}

}  // namespace
}  // namespace raisin
