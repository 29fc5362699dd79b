// MPI backend (see mpi_communicator.h).
#include "parallel/mpi_communicator.h"

#include <ATen/ATen.h>

#include "core/base/error.h"
#include "parallel/mpi.h"

namespace ls::parallel {
namespace {

// MPI has no 16-bit floats: reductions on them run on a float32 copy.
bool is_half_precision(at::ScalarType type) {
  return type == at::kHalf || type == at::kBFloat16;
}

MPI_Datatype mpi_type(at::ScalarType type) {
  switch (type) {
    case at::kFloat:
      return MPI_FLOAT;
    case at::kDouble:
      return MPI_DOUBLE;
    case at::kInt:
      return MPI_INT32_T;
    case at::kLong:
      return MPI_INT64_T;
    case at::kShort:
      return MPI_INT16_T;
    case at::kChar:
      return MPI_INT8_T;
    case at::kByte:
      return MPI_UINT8_T;
    case at::kBool:
      return MPI_C_BOOL;
    case at::kHalf:
    case at::kBFloat16:
      return MPI_UINT16_T;  // moved, never reduced, as raw 16-bit words
    default:
      LS_ASSERT(false, "no MPI datatype for tensors of {}", c10::toString(type));
  }
}

MPI_Op mpi_op(ReduceOp op) {
  return op == ReduceOp::kMax ? MPI_MAX : MPI_SUM;  // kAvg = sum, then divide
}

void check_tensor(const at::Tensor& tensor, const char* what) {
  LS_ASSERT(tensor.defined() && tensor.device().is_cpu() && tensor.is_contiguous(),
            "MPI {} needs a defined contiguous CPU tensor, got {}", what,
            tensor.defined() ? tensor.toString() : std::string("an undefined tensor"));
  LS_ASSERT(tensor.numel() <= INT32_MAX, "MPI {} of {} elements exceeds MPI's int count", what,
            tensor.numel());
}

int count(const at::Tensor& tensor) {
  return static_cast<int>(tensor.numel());
}

MPI_Comm duplicate(MPI_Comm comm) {
  MPI_Comm copy = MPI_COMM_NULL;
  LS_MPI_CHECK(MPI_Comm_dup(comm, &copy));
  LS_MPI_CHECK(MPI_Comm_set_errhandler(copy, MPI_ERRORS_RETURN));
  return copy;
}

int comm_rank(MPI_Comm comm) {
  int rank = 0;
  LS_MPI_CHECK(MPI_Comm_rank(comm, &rank));
  return rank;
}

int comm_size(MPI_Comm comm) {
  int size = 0;
  LS_MPI_CHECK(MPI_Comm_size(comm, &size));
  return size;
}

// A nonblocking all-reduce: MPI_Iallreduce on `buffer` (the tensor itself, or its float32 copy).
class MpiWork final : public Work {
 public:
  MpiWork(at::Tensor tensor, at::Tensor buffer, ReduceOp op, int size, MPI_Request request)
      : tensor_(std::move(tensor)),
        buffer_(std::move(buffer)),
        op_(op),
        size_(size),
        request_(request) {}
  ~MpiWork() override {
    if (request_ != MPI_REQUEST_NULL) MPI_Wait(&request_, MPI_STATUS_IGNORE);
  }
  void wait() override {
    if (request_ == MPI_REQUEST_NULL) return;
    LS_MPI_CHECK(MPI_Wait(&request_, MPI_STATUS_IGNORE));
    if (op_ == ReduceOp::kAvg) buffer_.div_(size_);
    if (!buffer_.is_same(tensor_)) tensor_.copy_(buffer_);
  }

 private:
  at::Tensor tensor_;
  at::Tensor buffer_;
  ReduceOp op_;
  int size_;
  MPI_Request request_;
};

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm) : MpiCommunicator(duplicate(comm), Adopt{}) {}

MpiCommunicator::MpiCommunicator(MPI_Comm owned, Adopt)
    : Communicator(comm_rank(owned), comm_size(owned)), comm_(owned) {}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

std::unique_ptr<Work> MpiCommunicator::all_reduce_async(const at::Tensor& tensor, ReduceOp op) {
  check_tensor(tensor, "all_reduce");
  at::Tensor buffer = is_half_precision(tensor.scalar_type()) ? tensor.to(at::kFloat) : tensor;
  MPI_Request request = MPI_REQUEST_NULL;
  LS_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buffer.data_ptr(), count(buffer),
                              mpi_type(buffer.scalar_type()), mpi_op(op), comm_, &request));
  return std::make_unique<MpiWork>(tensor, buffer, op, size(), request);
}

void MpiCommunicator::all_gather(const at::Tensor& input, const at::Tensor& output) {
  check_tensor(input, "all_gather");
  check_tensor(output, "all_gather");
  LS_ASSERT(output.numel() == input.numel() * size() && output.scalar_type() == input.scalar_type(),
            "all_gather output {} does not hold {} inputs {}", output.toString(), size(),
            input.toString());
  MPI_Datatype type = mpi_type(input.scalar_type());
  LS_MPI_CHECK(MPI_Allgather(input.data_ptr(), count(input), type, output.data_ptr(), count(input),
                             type, comm_));
}

void MpiCommunicator::reduce_scatter(const at::Tensor& input, const at::Tensor& output,
                                     ReduceOp op) {
  check_tensor(input, "reduce_scatter");
  check_tensor(output, "reduce_scatter");
  LS_ASSERT(input.numel() == output.numel() * size() && output.scalar_type() == input.scalar_type(),
            "reduce_scatter input {} is not {} chunks of output {}", input.toString(), size(),
            output.toString());
  const bool half = is_half_precision(input.scalar_type());
  at::Tensor in = half ? input.to(at::kFloat) : input;
  at::Tensor out = half ? at::empty(output.sizes(), output.options().dtype(at::kFloat)) : output;
  LS_MPI_CHECK(MPI_Reduce_scatter_block(in.data_ptr(), out.data_ptr(), count(out),
                                        mpi_type(in.scalar_type()), mpi_op(op), comm_));
  if (op == ReduceOp::kAvg) out.div_(size());
  if (half) output.copy_(out);
}

void MpiCommunicator::broadcast(const at::Tensor& tensor, int root) {
  check_tensor(tensor, "broadcast");
  LS_MPI_CHECK(
      MPI_Bcast(tensor.data_ptr(), count(tensor), mpi_type(tensor.scalar_type()), root, comm_));
}

void MpiCommunicator::barrier() {
  LS_MPI_CHECK(MPI_Barrier(comm_));
}

std::unique_ptr<Communicator> MpiCommunicator::split(int color, int key) {
  MPI_Comm part = MPI_COMM_NULL;
  LS_MPI_CHECK(MPI_Comm_split(comm_, color, key, &part));
  LS_MPI_CHECK(MPI_Comm_set_errhandler(part, MPI_ERRORS_RETURN));
  return std::unique_ptr<Communicator>(new MpiCommunicator(part, Adopt{}));
}

}  // namespace ls::parallel
