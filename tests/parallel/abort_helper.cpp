// Helper for abort_test: under mpirun, the last rank fails while the others wait in a collective
// that it will never join. Without the world abort the job would hang there.
//   parallel_abort_helper user-error | internal-error | thread
#include <ATen/ATen.h>

#include <string>
#include <thread>

#include "core/base/error.h"
#include "parallel/communicator.h"
#include "parallel/mpi.h"

namespace {

int body(ls::parallel::MpiRuntime& mpi, int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "user-error";
  auto world = ls::parallel::make_world_communicator(at::Device(at::kCPU));
  world->barrier();
  if (mpi.rank() == mpi.size() - 1) {
    if (mode == "user-error") ls::fail("rank {} gives up on purpose", mpi.rank());
    if (mode == "internal-error") throw std::runtime_error("an internal check failed on purpose");
    if (mode == "thread")
      std::thread([] { throw std::runtime_error("a worker thread failed on purpose"); }).join();
  }
  at::Tensor never = at::ones({1});
  world->all_reduce(never);  // the failed rank never arrives
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ls::parallel::run_mpi_main("parallel_abort_helper", body, argc, argv);
}
