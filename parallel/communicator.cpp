// Shape-aware collectives and the world communicator (see communicator.h).
#include "parallel/communicator.h"

#include <ATen/ATen.h>

#include "core/base/error.h"
#include "parallel/mpi_communicator.h"
#ifdef LS_WITH_CUDA
#include "parallel/nccl_communicator.h"
#endif

namespace ls::parallel {

at::Tensor all_gather_along(Communicator& comm, const at::Tensor& tensor, int64_t dim) {
  if (comm.size() == 1) return tensor;
  dim = at::maybe_wrap_dim(dim, tensor.dim());
  at::Tensor input = tensor.contiguous();
  std::vector<int64_t> stacked_shape = {comm.size()};
  stacked_shape.insert(stacked_shape.end(), input.sizes().begin(), input.sizes().end());
  at::Tensor stacked = at::empty(stacked_shape, input.options());
  comm.all_gather(input, stacked);
  // [size, ..., d, ...] -> [..., size * d, ...]: rank r's block lands at offset r * d along dim.
  return at::cat(stacked.unbind(0), dim);
}

at::Tensor reduce_scatter_along(Communicator& comm, const at::Tensor& tensor, int64_t dim,
                                ReduceOp op) {
  if (comm.size() == 1) return tensor;
  dim = at::maybe_wrap_dim(dim, tensor.dim());
  LS_ASSERT(tensor.size(dim) % comm.size() == 0,
            "reduce_scatter of size {} along dim {} over {} ranks", tensor.size(dim), dim,
            comm.size());
  // Rank-major chunks: chunk r is the r-th slice along dim, made contiguous.
  at::Tensor input = at::stack(tensor.chunk(comm.size(), dim), 0).contiguous();
  std::vector<int64_t> chunk_shape(tensor.sizes().begin(), tensor.sizes().end());
  chunk_shape[dim] /= comm.size();
  at::Tensor output = at::empty(chunk_shape, tensor.options());
  comm.reduce_scatter(input, output, op);
  return output;
}

double all_reduce_value(Communicator& comm, double value, ReduceOp op) {
  at::Tensor buffer =
      at::full({1}, value, at::TensorOptions().dtype(at::kDouble).device(comm.device()));
  comm.all_reduce(buffer, op);
  return buffer.item<double>();
}

at::Device pick_device(bool use_cuda, int local_rank, int local_size) {
  if (!use_cuda) return at::Device(at::kCPU);
#ifdef LS_WITH_CUDA
  return pick_cuda_device(local_rank, local_size);
#else
  fail("CUDA was asked for, but ls-train was built without CUDA (LS_WITH_CUDA=OFF)");
#endif
}

std::shared_ptr<Communicator> make_world_communicator(const at::Device& device) {
  if (device.is_cpu()) return std::make_shared<MpiCommunicator>(MPI_COMM_WORLD);
#ifdef LS_WITH_CUDA
  if (device.is_cuda()) return std::make_shared<NcclCommunicator>(MPI_COMM_WORLD, device.index());
#endif
  fail("no communicator for device {} in this build", device.str());
}

}  // namespace ls::parallel
