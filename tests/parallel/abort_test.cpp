// A rank that fails must end the whole job within seconds, with its message, instead of leaving
// the other ranks waiting in a collective: mpirun runs a helper whose last rank fails while the
// others block in an all-reduce, under a hard timeout that would reveal a hang.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <string>

namespace {

struct Run {
  int status = -1;  // exit status of the timeout-wrapped mpirun
  std::string output;
  double seconds = 0;
};

Run run_helper(const std::string& mode, int ranks) {
  const std::string command = "timeout -s KILL 60 " LS_MPIEXEC " -np " + std::to_string(ranks) +
                              " " LS_ABORT_HELPER " " + mode + " 2>&1";
  const auto start = std::chrono::steady_clock::now();
  Run run;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  std::array<char, 4096> buffer;
  size_t n = 0;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    run.output.append(buffer.data(), n);
  const int raw = pclose(pipe);
  run.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return run;
}

void expect_prompt_abort(const Run& run, const std::string& message) {
  EXPECT_NE(run.status, 0) << run.output;
  EXPECT_NE(run.status, 137) << "mpirun hung until the 60 s timeout killed it:\n" << run.output;
  EXPECT_LT(run.seconds, 30.0) << run.output;
  EXPECT_NE(run.output.find(message), std::string::npos) << run.output;
}

TEST(WorldAbort, UserErrorOnOneRankEndsTheJobWithItsMessage) {
  expect_prompt_abort(run_helper("user-error", 2),
                      "parallel_abort_helper: error (rank 1 of 2): rank 1 gives up on purpose");
}

TEST(WorldAbort, InternalErrorEndsTheJobAtFourRanks) {
  expect_prompt_abort(run_helper("internal-error", 4),
                      "parallel_abort_helper: internal error (rank 3 of 4): an internal check "
                      "failed on purpose");
}

TEST(WorldAbort, ExceptionEscapingAThreadEndsTheJob) {
  expect_prompt_abort(run_helper("thread", 2), "a worker thread failed on purpose");
}

}  // namespace
