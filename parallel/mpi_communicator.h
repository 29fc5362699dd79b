// MPI backend of Communicator: CPU tensors. Also the backend every parallel code path is tested
// on (mpirun --oversubscribe on CPU). fp16/bf16 reductions go through float32, which MPI has.
#pragma once

#include <mpi.h>

#include "parallel/communicator.h"

namespace ls::parallel {

class MpiCommunicator final : public Communicator {
 public:
  // A private duplicate of `comm`, so our collectives never match anyone else's messages.
  explicit MpiCommunicator(MPI_Comm comm);
  ~MpiCommunicator() override;

  at::Device device() const override { return at::Device(at::kCPU); }
  std::string backend() const override { return "mpi"; }

  std::unique_ptr<Work> all_reduce_async(const at::Tensor& tensor, ReduceOp op) override;
  void all_gather(const at::Tensor& input, const at::Tensor& output) override;
  void reduce_scatter(const at::Tensor& input, const at::Tensor& output, ReduceOp op) override;
  void broadcast(const at::Tensor& tensor, int root) override;
  void barrier() override;
  std::unique_ptr<Communicator> split(int color, int key) override;

  MPI_Comm comm() const { return comm_; }

 private:
  struct Adopt {};
  MpiCommunicator(MPI_Comm owned, Adopt);
  MPI_Comm comm_;
};

}  // namespace ls::parallel
