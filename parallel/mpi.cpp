// MPI process runtime (see mpi.h).
#include "parallel/mpi.h"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>

#include "core/base/error.h"

namespace ls::parallel {

void mpi_fail(const char* call, int code, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING] = {0};
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw std::runtime_error(std::string(call) + " failed at " + file + ":" + std::to_string(line) +
                           ": " + std::string(text, length));
}

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
  int initialized = 0;
  LS_MPI_CHECK(MPI_Initialized(&initialized));
  if (!initialized) {
    // Only the main thread talks to MPI; the data loader thread never does.
    int provided = 0;
    LS_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
    owns_init_ = true;
  }
  // Errors come back as codes so LS_MPI_CHECK can name the call.
  LS_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  LS_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
  LS_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size_));

  MPI_Comm node = MPI_COMM_NULL;
  LS_MPI_CHECK(
      MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
  LS_MPI_CHECK(MPI_Comm_rank(node, &local_rank_));
  LS_MPI_CHECK(MPI_Comm_size(node, &local_size_));
  LS_MPI_CHECK(MPI_Comm_free(&node));
}

MpiRuntime::~MpiRuntime() {
  if (owns_init_) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
}

void MpiRuntime::abort_world(const std::string& message, int code) {
  std::fprintf(stderr, "%s\n", message.c_str());
  std::fflush(stderr);
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

int world_rank() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return 0;
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

namespace {

const char* g_program = "ls-train";

int env_int(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return -1;
  char* end = nullptr;
  const long parsed = std::strtol(value, &end, 10);
  return *end == '\0' && parsed >= 0 ? static_cast<int>(parsed) : -1;
}

}  // namespace

void check_launcher(int mpi_size) {
  // OpenMPI's mpirun: its own count is authoritative (its daemons may run inside Slurm steps).
  if (const int ompi = env_int("OMPI_COMM_WORLD_SIZE"); ompi >= 0) {
    if (ompi != mpi_size)
      fail(
          "mpirun started {} processes (OMPI_COMM_WORLD_SIZE) but MPI sees a world of {}: this "
          "binary is linked against another MPI than the mpirun that started it",
          ompi, mpi_size);
    return;
  }
  struct Launcher {
    const char* variable;
    const char* name;
  };
  for (const Launcher& launcher :
       {Launcher{"WORLD_SIZE", "torchrun (WORLD_SIZE)"},
        Launcher{"SLURM_STEP_NUM_TASKS", "srun (SLURM_STEP_NUM_TASKS)"}}) {
    const int size = env_int(launcher.variable);
    if (size > 1 && size != mpi_size)
      fail(
          "started as one of {} processes by {} but MPI sees a world of {}: every process would "
          "train alone on the first GPU and write the same run directory. Launch with "
          "`mpirun -np {} ...` (or `srun --mpi=pmix ...` under Slurm)",
          size, launcher.name, mpi_size, size);
  }
}

namespace {

std::string where() {
  int initialized = 0, finalized = 0, size = 1;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Comm_size(MPI_COMM_WORLD, &size);
  return "rank " + std::to_string(world_rank()) + " of " + std::to_string(size);
}

// Exceptions that escape a thread other than main's (data loader, NCCL watchdog) land here.
[[noreturn]] void abort_on_terminate() {
  std::string message = "terminate called without an active exception";
  if (std::exception_ptr current = std::current_exception()) {
    try {
      std::rethrow_exception(current);
    } catch (const std::exception& e) {
      message = e.what();
    } catch (...) {
      message = "unknown exception";
    }
  }
  MpiRuntime::abort_world(std::string(g_program) + ": internal error (" + where() + "): " + message,
                          1);
}

}  // namespace

int run_mpi_main(const char* program, int (*body)(MpiRuntime& mpi, int argc, char** argv), int argc,
                 char** argv) {
  g_program = program;
  std::set_terminate(abort_on_terminate);
  std::string message;
  int code = 0;
  try {
    MpiRuntime mpi(&argc, &argv);
    const std::string who = mpi.size() == 1 ? "" : " (" + where() + ")";
    try {
      check_launcher(mpi.size());
      return body(mpi, argc, argv);
    } catch (const UserError& e) {
      message = std::string(program) + ": error" + who + ": " + e.what();
      code = 2;
    } catch (const std::exception& e) {
      message = std::string(program) + ": internal error" + who + ": " + e.what();
      code = 1;
    }
    // Peers may be blocked in a collective this rank will never join: end them all, now.
    if (mpi.size() > 1) MpiRuntime::abort_world(message, code);
  } catch (const std::exception& e) {  // MPI itself failed to start
    message = std::string(program) + ": internal error: " + e.what();
    code = 1;
  }
  std::fprintf(stderr, "%s\n", message.c_str());
  return code;
}

}  // namespace ls::parallel
