// What a user watches during training, from rank 0 only: on a terminal a live progress bar
// (epoch, step, loss, lr, tokens/s, ETA), otherwise one plain line every `log_every` steps.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace ls {

class Progress {
 public:
  Progress(bool enabled, int64_t total_steps, int64_t steps_per_epoch, int64_t log_every);

  void step(int64_t step, double loss, double lr, double tokens_per_second);
  // A line of its own (evaluation results, saves), printed above the bar.
  void message(const std::string& line);
  void finish();

 private:
  void clear_bar();
  std::string eta(int64_t step) const;

  bool enabled_, terminal_;
  int64_t total_steps_, steps_per_epoch_, log_every_;
  int64_t first_step_ = -1;
  std::chrono::steady_clock::time_point start_;
  bool bar_shown_ = false;
};

}  // namespace ls
