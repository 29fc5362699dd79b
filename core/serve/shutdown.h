// SIGTERM and SIGINT as a graceful stop: they are blocked in every thread and awaited by one
// watcher thread, which announces the signal on stderr and drains the server once it listens
// (it answers every request already received, then the program exits 0). A second SIGTERM or
// SIGINT exits at once (status 128 + the signal).
#pragma once

#include <functional>
#include <string>

namespace ls::serve {

// Blocks SIGTERM and SIGINT in the calling thread, and so in every thread it starts later, and
// starts the watcher thread. Call before any other thread starts.
void watch_stop_signals(const std::string& program);

// True once SIGTERM or SIGINT arrived (e.g. while the model was loading).
bool stop_requested();

// While alive, a stop signal calls `try_stop` (every 10 ms until it returns true: the server may
// not listen yet). Once destroyed, the watcher never calls it again.
class StopOnSignal {
 public:
  explicit StopOnSignal(std::function<bool()> try_stop);
  ~StopOnSignal();
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;
};

}  // namespace ls::serve
