// MPI process runtime: init/finalize, world rank/size, the node-local rank that picks a GPU,
// and LS_MPI_CHECK, which names the failed call and where it was made.
// Without mpirun the same code runs as a world of one.
#pragma once

#include <fmt/format.h>
#include <mpi.h>

#include <cstdio>
#include <string>

namespace ls::parallel {

[[noreturn]] void mpi_fail(const char* call, int code, const char* file, int line);

#define LS_MPI_CHECK(call)                                             \
  do {                                                                 \
    int ls_mpi_rc_ = (call);                                           \
    if (ls_mpi_rc_ != MPI_SUCCESS)                                     \
      ::ls::parallel::mpi_fail(#call, ls_mpi_rc_, __FILE__, __LINE__); \
  } while (0)

// One per process, created first in main(). Finalizes MPI when destroyed.
class MpiRuntime {
 public:
  MpiRuntime(int* argc, char*** argv);
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  // Rank among the processes on this node (OpenMPI's OMPI_COMM_WORLD_LOCAL_RANK, else a
  // shared-memory split): the GPU index this rank uses.
  int local_rank() const { return local_rank_; }
  int local_size() const { return local_size_; }

  // Ends every rank of the job with this message: one failing rank must never leave the others
  // waiting in a collective.
  [[noreturn]] static void abort_world(const std::string& message, int code = 1);

 private:
  int rank_ = 0;
  int size_ = 1;
  int local_rank_ = 0;
  int local_size_ = 1;
  bool owns_init_ = false;
};

// Rank in MPI_COMM_WORLD, 0 before MPI_Init and after MPI_Finalize (a world of one).
int world_rank();

// Output from rank 0 only: the one voice of a job, as llm.c's print0.
template <typename... Args>
void print0(fmt::format_string<Args...> format, Args&&... args) {
  if (world_rank() != 0) return;
  std::fputs(fmt::format(format, std::forward<Args>(args)...).c_str(), stdout);
  std::fflush(stdout);
}

// UserError when a launcher's own process count (torchrun's WORLD_SIZE, srun's
// SLURM_STEP_NUM_TASKS, mpirun's OMPI_COMM_WORLD_SIZE) disagrees with the MPI world: torchrun, or
// srun without PMIx, would start N separate one-rank jobs on the same GPU and run directory.
void check_launcher(int mpi_size);

// main() for programs that may run under mpirun (the launcher checked by check_launcher):
// initialises MPI, runs body, and turns an exception on any rank into "PROGRAM: error (rank R of
// N): message" on stderr and an abort of the whole job (exit status 2 for a UserError, 1
// otherwise), so no rank is left waiting for a peer that will never arrive. An exception escaping
// another thread aborts the same way. In a world of one it behaves as ls::run_main.
int run_mpi_main(const char* program, int (*body)(MpiRuntime& mpi, int argc, char** argv), int argc,
                 char** argv);

}  // namespace ls::parallel
