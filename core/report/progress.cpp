// Progress output (see progress.h).
#include "core/report/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace ls {

Progress::Progress(bool enabled, int64_t total_steps, int64_t steps_per_epoch, int64_t log_every)
    : enabled_(enabled),
      terminal_(enabled && isatty(fileno(stderr))),
      total_steps_(total_steps),
      steps_per_epoch_(std::max<int64_t>(steps_per_epoch, 1)),
      log_every_(log_every),
      start_(std::chrono::steady_clock::now()) {}

std::string Progress::eta(int64_t step) const {
  if (first_step_ < 0 || step <= first_step_) return "--:--";
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double seconds = elapsed / (step - first_step_) * (total_steps_ - step);
  long s = static_cast<long>(seconds);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
                   : fmt::format("{:02}:{:02}", s / 60, s % 60);
}

void Progress::step(int64_t step, double loss, double lr, double tokens_per_second) {
  if (!enabled_) return;
  if (first_step_ < 0) first_step_ = step - 1, start_ = std::chrono::steady_clock::now();
  const int64_t epoch = (step - 1) / steps_per_epoch_ + 1;
  const int64_t epochs = (total_steps_ + steps_per_epoch_ - 1) / steps_per_epoch_;
  const std::string fields =
      fmt::format("epoch {}/{} step {}/{} loss {:.4f} lr {:.2e} {:.0f} tok/s ETA {}", epoch, epochs,
                  step, total_steps_, loss, lr, tokens_per_second, eta(step));
  if (terminal_) {
    const int width = 24;
    int filled = static_cast<int>(width * step / std::max<int64_t>(total_steps_, 1));
    std::string bar(filled, '=');
    if (filled < width) bar += '>' + std::string(width - filled - 1, ' ');
    std::fprintf(stderr, "\r\033[K[%s] %s", bar.c_str(), fields.c_str());
    std::fflush(stderr);
    bar_shown_ = true;
  } else if (step % log_every_ == 0 || step == total_steps_) {
    std::fprintf(stdout, "%s\n", fields.c_str());
    std::fflush(stdout);
  }
}

void Progress::clear_bar() {
  if (bar_shown_) std::fprintf(stderr, "\r\033[K");
  bar_shown_ = false;
}

void Progress::message(const std::string& line) {
  if (!enabled_) return;
  clear_bar();
  std::fprintf(stdout, "%s\n", line.c_str());
  std::fflush(stdout);
}

void Progress::finish() {
  if (enabled_ && bar_shown_) std::fprintf(stderr, "\n");
  bar_shown_ = false;
}

}  // namespace ls
