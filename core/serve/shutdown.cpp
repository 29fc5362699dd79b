// SIGTERM/SIGINT as a graceful stop (shutdown.h). The watcher thread is detached and outlives
// everything else, so its state is global; the stop target is published under a mutex so the
// watcher never calls it after its owner let it go.
#include "core/serve/shutdown.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>

namespace ls::serve {
namespace {

std::atomic<bool> g_stop_requested{false};
std::mutex g_target_mutex;
std::function<bool()> g_try_stop;  // while a StopOnSignal lives
bool g_target_done = false;        // a StopOnSignal was destroyed: nothing is left to stop

const char* name(int signal) {
  return signal == SIGINT ? "SIGINT" : "SIGTERM";
}

// The first signal: a graceful stop (the target's). A second one: exit at once.
void watch(sigset_t signals, std::string program) {
  int signal = 0;
  sigwait(&signals, &signal);
  std::fprintf(stderr,
               "%s: %s: finishing the requests already received (a second signal exits at "
               "once)\n",
               program.c_str(), name(signal));
  g_stop_requested = true;
  std::thread([signals, program] {
    int second = 0;
    sigwait(&signals, &second);
    std::fprintf(stderr, "%s: %s again: exiting now\n", program.c_str(), name(second));
    std::fflush(stderr);
    _exit(128 + second);
  }).detach();
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(g_target_mutex);
      if (g_target_done) return;
      if (g_try_stop && g_try_stop()) return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

void watch_stop_signals(const std::string& program) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread(watch, signals, program).detach();
}

bool stop_requested() {
  return g_stop_requested;
}

StopOnSignal::StopOnSignal(std::function<bool()> try_stop) {
  std::lock_guard<std::mutex> lock(g_target_mutex);
  g_try_stop = std::move(try_stop);
  g_target_done = false;
}

StopOnSignal::~StopOnSignal() {
  std::lock_guard<std::mutex> lock(g_target_mutex);
  g_try_stop = nullptr;
  g_target_done = true;
}

}  // namespace ls::serve
