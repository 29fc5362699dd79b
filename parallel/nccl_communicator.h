// NCCL backend of Communicator: CUDA tensors, one GPU per rank. Collectives run on the
// communicator's own stream, ordered against torch's current stream with events (the current
// stream waits for the collective only where the result is used: Work::wait). NCCL is
// bootstrapped over MPI, and a watchdog thread turns NCCL's asynchronous errors (a peer died, a
// network failure) into an abort of the whole job instead of a hang.
#pragma once

#include <c10/cuda/CUDAStream.h>
#include <mpi.h>
#include <nccl.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "parallel/communicator.h"

namespace ls::parallel {

[[noreturn]] void nccl_fail(const char* call, ncclResult_t result, const char* file, int line);

#define LS_NCCL_CHECK(call)                                              \
  do {                                                                   \
    ncclResult_t ls_nccl_rc_ = (call);                                   \
    if (ls_nccl_rc_ != ncclSuccess)                                      \
      ::ls::parallel::nccl_fail(#call, ls_nccl_rc_, __FILE__, __LINE__); \
  } while (0)

// CUDA device local_rank, made current: one GPU per rank on a node. Throws UserError when no GPU
// is visible or the node runs more ranks than it has GPUs.
at::Device pick_cuda_device(int local_rank, int local_size);

class NcclCommunicator final : public Communicator {
 public:
  // Collective over the ranks of `bootstrap`: its rank 0 makes the unique id and broadcasts it
  // over MPI; every rank joins on CUDA device `device`.
  NcclCommunicator(MPI_Comm bootstrap, c10::DeviceIndex device);
  ~NcclCommunicator() override;

  at::Device device() const override { return at::Device(at::kCUDA, device_); }
  std::string backend() const override { return "nccl"; }

  std::unique_ptr<Work> all_reduce_async(const at::Tensor& tensor, ReduceOp op) override;
  void all_gather(const at::Tensor& input, const at::Tensor& output) override;
  void reduce_scatter(const at::Tensor& input, const at::Tensor& output, ReduceOp op) override;
  void broadcast(const at::Tensor& tensor, int root) override;
  void barrier() override;
  std::unique_ptr<Communicator> split(int color, int key) override;

 private:
  NcclCommunicator(ncclComm_t comm, c10::DeviceIndex device);
  // Orders `launch` (which enqueues NCCL calls on `stream`) after the work already queued on the
  // current stream, and keeps `tensors`' memory from being reused before the collective ends.
  template <typename Launch>
  std::unique_ptr<Work> enqueue(std::initializer_list<at::Tensor> tensors, Launch&& launch);
  void watch();

  ncclComm_t comm_;
  c10::DeviceIndex device_;
  c10::cuda::CUDAStream stream_;

  std::mutex watchdog_mutex_;
  std::condition_variable watchdog_wake_;
  bool stopping_ = false;
  std::thread watchdog_;
};

}  // namespace ls::parallel
