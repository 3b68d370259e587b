// Progress bar and log lines.
#include "tools/cli/progress.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>

namespace raisin::cli {

namespace {
double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string status_text(const ProgressState& s) {
  char text[200];
  std::snprintf(text, sizeof text, "epoch %.2f/%g  step %lld/%lld  loss %.4f  acc %.2f%%  %.0f img/s  ETA %s",
                s.epoch, s.total_epochs, (long long)s.step, (long long)s.total_steps, s.loss, 100 * s.accuracy,
                s.images_per_second, format_duration(s.eta_seconds).c_str());
  return text;
}
}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long long total = (long long)std::llround(seconds);
  char text[32];
  if (total >= 3600) std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", total / 3600, total / 60 % 60, total % 60);
  else std::snprintf(text, sizeof text, "%lld:%02lld", total / 60, total % 60);
  return text;
}

Progress::Progress(FILE* log_file, int64_t log_every)
    : log_file_(log_file), log_every_(log_every > 0 ? log_every : 100), terminal_(isatty(STDERR_FILENO)) {}

void Progress::update(const ProgressState& s) {
  if (terminal_) {
    const double now = now_seconds();
    if (now - last_draw_ < 0.1 && s.step != s.total_steps) return;
    last_draw_ = now;
    constexpr int kWidth = 24;
    const double fraction = s.total_steps ? double(s.step) / double(s.total_steps) : 0;
    const int filled = int(fraction * kWidth);
    std::string bar(kWidth + 2, '.');
    bar.front() = '[', bar.back() = ']';
    std::fill_n(bar.begin() + 1, filled, '#');
    std::fprintf(stderr, "\r\033[K%s %3.0f%%  %s", bar.c_str(), 100 * fraction, status_text(s).c_str());
    std::fflush(stderr);
    bar_shown_ = true;
  } else if (s.step % log_every_ == 0 || s.step == s.total_steps) {
    line(status_text(s));
  }
}

void Progress::line(const std::string& text) {
  if (terminal_ && bar_shown_) std::fputs("\r\033[K", stderr), bar_shown_ = false;
  std::fprintf(stderr, "%s\n", text.c_str());
  if (log_file_) std::fprintf(log_file_, "%s\n", text.c_str()), std::fflush(log_file_);
}

void Progress::finish() {
  if (terminal_ && bar_shown_) std::fputs("\n", stderr), bar_shown_ = false;
}

}  // namespace raisin::cli
