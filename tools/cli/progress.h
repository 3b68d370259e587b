// Training progress for people: on a terminal a one-line bar redrawn in place (epoch, loss, accuracy,
// images/s, ETA); otherwise plain log lines at a fixed step interval. Every line also goes to the run's
// log file.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

namespace raisin::cli {

struct ProgressState {
  int64_t step = 0, total_steps = 0;
  double epoch = 0, total_epochs = 0;
  double loss = 0, accuracy = 0;  // running means over the current epoch
  double images_per_second = 0;
  double eta_seconds = 0;
};

class Progress {
 public:
  // log_every: steps between plain lines when not on a terminal.
  Progress(FILE* log_file, int64_t log_every);
  void update(const ProgressState& state);
  // A permanent line (epoch summaries, messages): clears the bar first on a terminal.
  void line(const std::string& text);
  void finish();

 private:
  FILE* log_file_;
  int64_t log_every_;
  bool terminal_;
  bool bar_shown_ = false;
  double last_draw_ = -1;
};

std::string format_duration(double seconds);  // "1:05:09", "3:07"

}  // namespace raisin::cli
