// Communicator: the one interface every collective in ls-train goes through (PyTorch c10d style).
// Two thin backends sit behind it: MpiCommunicator for CPU tensors and NcclCommunicator for CUDA
// tensors (NCCL bootstrapped over MPI). Layers and the trainer never branch on the backend.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <memory>
#include <string>

namespace ls::parallel {

enum class ReduceOp { kSum, kAvg, kMax };

// A collective in flight. wait() returns once the result may be used: on the calling thread for
// CPU tensors, by work queued afterwards on torch's current stream for CUDA tensors. The tensors
// it was given must not be touched before then. Waiting twice is harmless.
class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;
};

// A group of ranks. Every member calls every collective, in the same order, with tensors of the
// same shape and dtype. Tensors must be contiguous and on device(); collectives write in place
// (tensor handles are const, their data is not).
class Communicator {
 public:
  virtual ~Communicator() = default;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  virtual at::Device device() const = 0;
  virtual std::string backend() const = 0;

  // tensor <- op over ranks of tensor.
  virtual std::unique_ptr<Work> all_reduce_async(const at::Tensor& tensor, ReduceOp op) = 0;
  void all_reduce(const at::Tensor& tensor, ReduceOp op = ReduceOp::kSum) {
    all_reduce_async(tensor, op)->wait();
  }
  // output (size() * input.numel() elements) <- the inputs of ranks 0..size()-1, rank-major.
  virtual void all_gather(const at::Tensor& input, const at::Tensor& output) = 0;
  // output <- op over ranks of chunk rank() of input, input being size() chunks of output's size.
  virtual void reduce_scatter(const at::Tensor& input, const at::Tensor& output, ReduceOp op) = 0;
  // tensor <- root's tensor.
  virtual void broadcast(const at::Tensor& tensor, int root) = 0;
  virtual void barrier() = 0;
  // Collective: ranks passing the same color form a new communicator, ranked by key
  // (MPI_Comm_split semantics).
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;

 protected:
  Communicator(int rank, int size) : rank_(rank), size_(size) {}

 private:
  int rank_;
  int size_;
};

// Shape-aware helpers on top of the primitives; any layout, any device the communicator serves.
// The concatenation along `dim` of every rank's tensor (all ranks pass the same shape).
at::Tensor all_gather_along(Communicator& comm, const at::Tensor& tensor, int64_t dim);
// Chunk rank() along `dim` of the reduction over ranks (tensor.size(dim) divisible by size()).
at::Tensor reduce_scatter_along(Communicator& comm, const at::Tensor& tensor, int64_t dim,
                                ReduceOp op);
// One number reduced across ranks (losses, token counts, metric sums).
double all_reduce_value(Communicator& comm, double value, ReduceOp op = ReduceOp::kSum);

// The device this rank computes on: CPU, or CUDA device local_rank (one GPU per rank on a node).
// Throws UserError when CUDA is asked for but missing or when a node has more ranks than GPUs.
at::Device pick_device(bool use_cuda, int local_rank, int local_size);

// Every rank of MPI_COMM_WORLD, on `device`: MPI for CPU, NCCL for CUDA (rank 0 makes the NCCL id
// and broadcasts it over MPI). MPI must be initialised (MpiRuntime).
std::shared_ptr<Communicator> make_world_communicator(const at::Device& device);

}  // namespace ls::parallel
