// Tensor-parallel region operators as autograd functions (see tp_ops.h).
#include "parallel/tp_ops.h"

#include <torch/csrc/autograd/custom_function.h>

#include "core/base/error.h"

namespace ls::parallel {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// AutogradContext keeps IValues only. The tp group outlives every graph built on it (it lives as
// long as the Topology), so its address is what the backward pass needs.
void remember_group(AutogradContext* ctx, Communicator& tp) {
  ctx->saved_data["tp"] = reinterpret_cast<int64_t>(&tp);
}
Communicator& group(AutogradContext* ctx) {
  return *reinterpret_cast<Communicator*>(ctx->saved_data["tp"].toInt());
}

at::Tensor all_reduced(const at::Tensor& x, Communicator& tp) {
  at::Tensor sum = x.clone(at::MemoryFormat::Contiguous);
  tp.all_reduce(sum, ReduceOp::kSum);
  return sum;
}

at::Tensor own_slice(const at::Tensor& x, Communicator& tp) {
  LS_ASSERT(x.size(-1) % tp.size() == 0, "last dimension {} does not split over tp = {}",
            x.size(-1), tp.size());
  return x.chunk(tp.size(), -1)[tp.rank()].contiguous();
}

struct CopyToTpRegion : torch::autograd::Function<CopyToTpRegion> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, Communicator* tp) {
    remember_group(ctx, *tp);
    return x;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {all_reduced(grads[0], group(ctx)), at::Tensor()};
  }
};

struct ReduceFromTpRegion : torch::autograd::Function<ReduceFromTpRegion> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, Communicator* tp) {
    return all_reduced(x, *tp);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {grads[0], at::Tensor()};
  }
};

struct ScatterToTpRegion : torch::autograd::Function<ScatterToTpRegion> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, Communicator* tp) {
    remember_group(ctx, *tp);
    return own_slice(x, *tp);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {all_gather_along(group(ctx), grads[0], -1), at::Tensor()};
  }
};

struct GatherFromTpRegion : torch::autograd::Function<GatherFromTpRegion> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, Communicator* tp) {
    remember_group(ctx, *tp);
    return all_gather_along(*tp, x, -1);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    return {own_slice(grads[0], group(ctx)), at::Tensor()};
  }
};

struct SumGradOverSharedRows : torch::autograd::Function<SumGradOverSharedRows> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& shard, Communicator* tp,
                            int64_t begin, int64_t full_rows) {
    remember_group(ctx, *tp);
    ctx->saved_data["begin"] = begin;
    ctx->saved_data["full_rows"] = full_rows;
    return shard;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor& grad = grads[0];
    std::vector<int64_t> full_shape(grad.sizes().begin(), grad.sizes().end());
    full_shape[0] = ctx->saved_data["full_rows"].toInt();
    at::Tensor full = at::zeros(full_shape, grad.options());
    at::Tensor mine = full.narrow(0, ctx->saved_data["begin"].toInt(), grad.size(0));
    mine.copy_(grad);
    group(ctx).all_reduce(full, ReduceOp::kSum);
    return {mine, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor copy_to_tp_region(const at::Tensor& x, Communicator& tp) {
  return tp.size() == 1 ? x : CopyToTpRegion::apply(x, &tp);
}

at::Tensor reduce_from_tp_region(const at::Tensor& x, Communicator& tp) {
  return tp.size() == 1 ? x : ReduceFromTpRegion::apply(x, &tp);
}

at::Tensor scatter_to_tp_region(const at::Tensor& x, Communicator& tp) {
  return tp.size() == 1 ? x : ScatterToTpRegion::apply(x, &tp);
}

at::Tensor gather_from_tp_region(const at::Tensor& x, Communicator& tp) {
  return tp.size() == 1 ? x : GatherFromTpRegion::apply(x, &tp);
}

at::Tensor sum_grad_over_shared_rows(const at::Tensor& shard, Communicator& tp,
                                     const std::vector<ShardRange>& shards, int64_t full_rows) {
  LS_ASSERT(static_cast<int>(shards.size()) == tp.size(), "{} shards for a tp group of {}",
            shards.size(), tp.size());
  if (tp.size() == 1) return shard;
  return SumGradOverSharedRows::apply(shard, &tp, shards[tp.rank()].begin, full_rows);
}

}  // namespace ls::parallel
