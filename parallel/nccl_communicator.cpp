// NCCL backend (see nccl_communicator.h).
#include "parallel/nccl_communicator.h"

#include <ATen/ATen.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>

#include <chrono>
#include <string>

#include "core/base/error.h"
#include "parallel/mpi.h"

namespace ls::parallel {
namespace {

ncclDataType_t nccl_type(at::ScalarType type) {
  switch (type) {
    case at::kFloat:
      return ncclFloat32;
    case at::kDouble:
      return ncclFloat64;
    case at::kHalf:
      return ncclFloat16;
    case at::kBFloat16:
      return ncclBfloat16;
    case at::kInt:
      return ncclInt32;
    case at::kLong:
      return ncclInt64;
    case at::kChar:
      return ncclInt8;
    case at::kByte:
    case at::kBool:
      return ncclUint8;
    default:
      LS_ASSERT(false, "no NCCL datatype for tensors of {}", c10::toString(type));
  }
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return ncclSum;
    case ReduceOp::kAvg:
      return ncclAvg;
    case ReduceOp::kMax:
      return ncclMax;
  }
  LS_ASSERT(false, "unknown ReduceOp {}", static_cast<int>(op));
}

void check_tensor(const at::Tensor& tensor, c10::DeviceIndex device, const char* what) {
  LS_ASSERT(tensor.defined() && tensor.is_cuda() && tensor.get_device() == device &&
                tensor.is_contiguous(),
            "NCCL {} needs a defined contiguous tensor on cuda:{}, got {}", what, device,
            tensor.defined() ? tensor.toString() + " on " + tensor.device().str()
                             : std::string("an undefined tensor"));
}

// Makes the current stream wait for the collective before it touches the result.
class NcclWork final : public Work {
 public:
  NcclWork(c10::cuda::CUDAEvent done, c10::DeviceIndex device)
      : done_(std::move(done)), device_(device) {}
  void wait() override { done_.block(c10::cuda::getCurrentCUDAStream(device_)); }

 private:
  c10::cuda::CUDAEvent done_;
  c10::DeviceIndex device_;
};

}  // namespace

void nccl_fail(const char* call, ncclResult_t result, const char* file, int line) {
  std::string detail = ncclGetErrorString(result);
  if (const char* last = ncclGetLastError(nullptr); last != nullptr && *last != '\0')
    detail += std::string(" (") + last + ")";
  throw std::runtime_error(std::string(call) + " failed at " + file + ":" + std::to_string(line) +
                           ": " + detail);
}

NcclCommunicator::NcclCommunicator(MPI_Comm bootstrap, c10::DeviceIndex device)
    : NcclCommunicator(
          [&] {
            int rank = 0, size = 1;
            LS_MPI_CHECK(MPI_Comm_rank(bootstrap, &rank));
            LS_MPI_CHECK(MPI_Comm_size(bootstrap, &size));
            ncclUniqueId id;
            if (rank == 0) LS_NCCL_CHECK(ncclGetUniqueId(&id));
            LS_MPI_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, bootstrap));
            c10::cuda::CUDAGuard guard(device);
            ncclComm_t comm = nullptr;
            LS_NCCL_CHECK(ncclCommInitRank(&comm, size, id, rank));
            return comm;
          }(),
          device) {}

NcclCommunicator::NcclCommunicator(ncclComm_t comm, c10::DeviceIndex device)
    : Communicator(
          [comm] {
            int r = 0;
            LS_NCCL_CHECK(ncclCommUserRank(comm, &r));
            return r;
          }(),
          [comm] {
            int n = 0;
            LS_NCCL_CHECK(ncclCommCount(comm, &n));
            return n;
          }()),
      comm_(comm),
      device_(device),
      stream_(c10::cuda::getStreamFromPool(/*isHighPriority=*/true, device)),
      watchdog_([this] { watch(); }) {}

NcclCommunicator::~NcclCommunicator() {
  {
    std::lock_guard<std::mutex> lock(watchdog_mutex_);
    stopping_ = true;
  }
  watchdog_wake_.notify_all();
  watchdog_.join();
  c10::cuda::CUDAGuard guard(device_);
  ncclCommDestroy(comm_);  // destructors do not throw; a failure here changes nothing for anyone
}

void NcclCommunicator::watch() {
  std::unique_lock<std::mutex> lock(watchdog_mutex_);
  while (!watchdog_wake_.wait_for(lock, std::chrono::milliseconds(100),
                                  [this] { return stopping_; })) {
    ncclResult_t async_error = ncclSuccess;
    ncclResult_t polled = ncclCommGetAsyncError(comm_, &async_error);
    if (polled == ncclSuccess && async_error == ncclSuccess) continue;
    if (async_error == ncclInProgress) continue;
    std::string reason = ncclGetErrorString(polled != ncclSuccess ? polled : async_error);
    if (const char* last = ncclGetLastError(comm_); last != nullptr && *last != '\0')
      reason += std::string(" (") + last + ")";
    ncclCommAbort(comm_);
    MpiRuntime::abort_world("NCCL asynchronous error on cuda:" + std::to_string(device_) +
                            " (rank " + std::to_string(rank()) + " of " + std::to_string(size()) +
                            "): " + reason);
  }
}

template <typename Launch>
std::unique_ptr<Work> NcclCommunicator::enqueue(std::initializer_list<at::Tensor> tensors,
                                                Launch&& launch) {
  c10::cuda::CUDAGuard guard(device_);
  c10::cuda::CUDAEvent inputs_ready;
  inputs_ready.record(c10::cuda::getCurrentCUDAStream(device_));
  inputs_ready.block(stream_);
  launch(stream_.stream());
  for (const at::Tensor& tensor : tensors)
    c10::cuda::CUDACachingAllocator::recordStream(tensor.storage().data_ptr(), stream_);
  c10::cuda::CUDAEvent done;
  done.record(stream_);
  return std::make_unique<NcclWork>(std::move(done), device_);
}

std::unique_ptr<Work> NcclCommunicator::all_reduce_async(const at::Tensor& tensor, ReduceOp op) {
  check_tensor(tensor, device_, "all_reduce");
  return enqueue({tensor}, [&](cudaStream_t stream) {
    LS_NCCL_CHECK(ncclAllReduce(tensor.data_ptr(), tensor.data_ptr(), tensor.numel(),
                                nccl_type(tensor.scalar_type()), nccl_op(op), comm_, stream));
  });
}

void NcclCommunicator::all_gather(const at::Tensor& input, const at::Tensor& output) {
  check_tensor(input, device_, "all_gather");
  check_tensor(output, device_, "all_gather");
  LS_ASSERT(output.numel() == input.numel() * size() && output.scalar_type() == input.scalar_type(),
            "all_gather output {} does not hold {} inputs {}", output.toString(), size(),
            input.toString());
  enqueue({input, output}, [&](cudaStream_t stream) {
    LS_NCCL_CHECK(ncclAllGather(input.data_ptr(), output.data_ptr(), input.numel(),
                                nccl_type(input.scalar_type()), comm_, stream));
  })->wait();
}

void NcclCommunicator::reduce_scatter(const at::Tensor& input, const at::Tensor& output,
                                      ReduceOp op) {
  check_tensor(input, device_, "reduce_scatter");
  check_tensor(output, device_, "reduce_scatter");
  LS_ASSERT(input.numel() == output.numel() * size() && output.scalar_type() == input.scalar_type(),
            "reduce_scatter input {} is not {} chunks of output {}", input.toString(), size(),
            output.toString());
  enqueue({input, output}, [&](cudaStream_t stream) {
    LS_NCCL_CHECK(ncclReduceScatter(input.data_ptr(), output.data_ptr(), output.numel(),
                                    nccl_type(input.scalar_type()), nccl_op(op), comm_, stream));
  })->wait();
}

void NcclCommunicator::broadcast(const at::Tensor& tensor, int root) {
  check_tensor(tensor, device_, "broadcast");
  enqueue({tensor}, [&](cudaStream_t stream) {
    LS_NCCL_CHECK(ncclBroadcast(tensor.data_ptr(), tensor.data_ptr(), tensor.numel(),
                                nccl_type(tensor.scalar_type()), root, comm_, stream));
  })->wait();
}

void NcclCommunicator::barrier() {
  c10::cuda::CUDAGuard guard(device_);
  at::Tensor token = at::zeros({1}, at::TensorOptions().dtype(at::kInt).device(device()));
  all_reduce(token, ReduceOp::kSum);
  c10::cuda::getCurrentCUDAStream(device_).synchronize();
}

std::unique_ptr<Communicator> NcclCommunicator::split(int color, int key) {
  c10::cuda::CUDAGuard guard(device_);
  ncclComm_t part = nullptr;
  LS_NCCL_CHECK(ncclCommSplit(comm_, color, key, &part, nullptr));
  return std::unique_ptr<Communicator>(new NcclCommunicator(part, device_));
}

at::Device pick_cuda_device(int local_rank, int local_size) {
  const int gpus = c10::cuda::device_count();
  if (gpus == 0) fail("CUDA was asked for but no GPU is visible to this process");
  if (local_size > gpus)
    fail("{} ranks run on this node but it has {} GPU(s): start at most one rank per GPU",
         local_size, gpus);
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(local_rank));
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(local_rank));
}

}  // namespace ls::parallel
