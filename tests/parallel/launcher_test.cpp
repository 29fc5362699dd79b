// A launcher that starts N processes which MPI does not join into one world (torchrun, srun
// without PMIx) is refused before anything runs; matching counts, and plain runs, pass.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "core/base/error.h"
#include "parallel/mpi.h"

namespace {

// Sets the variables for one test and removes them after.
class LauncherEnvironment : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const char* name : {"WORLD_SIZE", "RANK", "LOCAL_RANK", "SLURM_STEP_NUM_TASKS",
                             "SLURM_PROCID", "OMPI_COMM_WORLD_SIZE"})
      unsetenv(name);
  }
  static std::string refusal(int mpi_size) {
    try {
      ls::parallel::check_launcher(mpi_size);
    } catch (const ls::UserError& e) {
      return e.what();
    }
    return "";
  }
};

TEST_F(LauncherEnvironment, TorchrunWorldOfSeparateProcessesIsRefusedNamingMpirun) {
  setenv("WORLD_SIZE", "4", 1);
  setenv("RANK", "2", 1);
  setenv("LOCAL_RANK", "2", 1);
  const std::string message = refusal(1);
  EXPECT_NE(message.find("torchrun (WORLD_SIZE)"), std::string::npos) << message;
  EXPECT_NE(message.find("mpirun -np 4"), std::string::npos) << message;
}

TEST_F(LauncherEnvironment, SrunWithoutPmixIsRefused) {
  setenv("SLURM_STEP_NUM_TASKS", "8", 1);
  setenv("SLURM_PROCID", "3", 1);
  EXPECT_NE(refusal(1).find("srun (SLURM_STEP_NUM_TASKS)"), std::string::npos);
}

TEST_F(LauncherEnvironment, MpirunCountDisagreeingWithTheMpiWorldIsRefused) {
  setenv("OMPI_COMM_WORLD_SIZE", "3", 1);
  EXPECT_NE(refusal(1).find("OMPI_COMM_WORLD_SIZE"), std::string::npos);
}

TEST_F(LauncherEnvironment, MatchingCountsAndPlainRunsPass) {
  EXPECT_EQ(refusal(1), "");  // nothing set: a world of one
  setenv("WORLD_SIZE", "1", 1);
  EXPECT_EQ(refusal(1), "");
  setenv("WORLD_SIZE", "2", 1);
  EXPECT_EQ(refusal(2), "");
  setenv("SLURM_STEP_NUM_TASKS", "2", 1);
  EXPECT_EQ(refusal(2), "");
  // Under mpirun inside a Slurm step (mpirun's daemons are srun tasks) mpirun's count decides.
  setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
  setenv("SLURM_STEP_NUM_TASKS", "2", 1);
  setenv("WORLD_SIZE", "1", 1);
  EXPECT_EQ(refusal(4), "");
}

}  // namespace
