// MPI process runtime (see mpi.h).
#include "parallel/mpi.h"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

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
  LS_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
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

}  // namespace ls::parallel
