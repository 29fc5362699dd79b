// The four tensor-parallel region operators (Megatron-LM), autograd functions whose backward is
// the conjugate collective over the tp group. All communication of the tensor-parallel layers
// goes through them; the layers themselves only do math.
//
//   copy_to_tp_region      (f)  forward: identity            backward: all-reduce (sum)
//   reduce_from_tp_region  (g)  forward: all-reduce (sum)    backward: identity
//   scatter_to_tp_region        forward: keep own slice      backward: all-gather
//   gather_from_tp_region       forward: all-gather          backward: keep own slice
//
// Slices are along the last dimension, equal-sized, in tp rank order. With a tp group of one
// every operator is the identity and costs nothing.
#pragma once

#include <ATen/core/Tensor.h>

#include "parallel/communicator.h"
#include "parallel/topology.h"

namespace ls::parallel {

at::Tensor copy_to_tp_region(const at::Tensor& x, Communicator& tp);
at::Tensor reduce_from_tp_region(const at::Tensor& x, Communicator& tp);
at::Tensor scatter_to_tp_region(const at::Tensor& x, Communicator& tp);
at::Tensor gather_from_tp_region(const at::Tensor& x, Communicator& tp);

// For a weight whose rows `shards[rank]` overlap between ranks (kv heads replicated under GQA):
// forward identity; backward sums the gradient of each full-weight row over the ranks that hold
// it, so every copy of a shared row receives the gradient of all its uses.
at::Tensor sum_grad_over_shared_rows(const at::Tensor& shard, Communicator& tp,
                                     const std::vector<ShardRange>& shards, int64_t full_rows);

}  // namespace ls::parallel
