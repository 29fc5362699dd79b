// Bucketed, overlapped data-parallel gradient averaging (see grad_sync.h).
#include "parallel/grad_sync.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <functional>

#include "core/base/error.h"

namespace ls::parallel {
namespace {

class GradientReadyHook final : public torch::autograd::PostAccumulateGradHook {
 public:
  explicit GradientReadyHook(std::function<void()> ready) : ready_(std::move(ready)) {}
  void operator()(const torch::autograd::Variable&) override { ready_(); }

 private:
  std::function<void()> ready_;
};

}  // namespace

DataParallelGradSync::DataParallelGradSync(std::shared_ptr<Communicator> dp,
                                           std::vector<at::Tensor> params, int64_t bucket_bytes)
    : dp_(std::move(dp)), params_(std::move(params)), bucket_of_(params_.size()) {
  // Reverse registration order ~ the order backward finishes the gradients.
  for (size_t n = params_.size(); n-- > 0;) {
    const at::Tensor& p = params_[n];
    LS_ASSERT(p.requires_grad() && p.is_leaf(),
              "parameter {} of the gradient sync is not a "
              "trainable leaf tensor",
              n);
    const int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
    bool fits = !buckets_.empty();
    if (fits) {
      const at::Tensor& first = params_[buckets_.back().params.front()];
      const int64_t used =
          buckets_.back().offsets.back() + params_[buckets_.back().params.back()].numel();
      fits = first.scalar_type() == p.scalar_type() && first.device() == p.device() &&
             (used * static_cast<int64_t>(p.element_size()) + bytes <= bucket_bytes);
    }
    if (!fits) buckets_.emplace_back();
    Bucket& bucket = buckets_.back();
    bucket.offsets.push_back(
        bucket.params.empty() ? 0 : bucket.offsets.back() + params_[bucket.params.back()].numel());
    bucket.params.push_back(n);
    bucket_of_[n] = buckets_.size() - 1;
  }
  for (Bucket& bucket : buckets_) {
    const at::Tensor& last = params_[bucket.params.back()];
    bucket.flat = at::zeros({bucket.offsets.back() + last.numel()}, last.options());
  }
  if (dp_->size() == 1) return;  // nothing to average
  for (size_t n = 0; n < params_.size(); ++n)
    torch::autograd::impl::set_post_acc_grad_hooks(
        params_[n], std::make_unique<GradientReadyHook>([this, n] { on_gradient_ready(n); }));
}

DataParallelGradSync::~DataParallelGradSync() {
  if (dp_->size() == 1) return;
  for (const at::Tensor& p : params_) torch::autograd::impl::set_post_acc_grad_hooks(p, nullptr);
  for (Bucket& bucket : buckets_)
    if (bucket.work) bucket.work->wait();
}

void DataParallelGradSync::on_gradient_ready(size_t param) {
  if (!overlap_) return;
  std::lock_guard<std::mutex> lock(mutex_);
  Bucket& bucket = buckets_[bucket_of_[param]];
  LS_ASSERT(bucket.ready < bucket.params.size(),
            "a second backward before finish(): call set_overlap(false) for micro-batches that "
            "only accumulate");
  ++bucket.ready;
  // Start every bucket that is complete, in bucket order only.
  while (next_to_start_ < buckets_.size() &&
         buckets_[next_to_start_].ready == buckets_[next_to_start_].params.size())
    start(buckets_[next_to_start_++]);
}

void DataParallelGradSync::start(Bucket& bucket) {
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < bucket.params.size(); ++i) {
    const at::Tensor& p = params_[bucket.params[i]];
    at::Tensor slot = bucket.flat.narrow(0, bucket.offsets[i], p.numel());
    if (p.grad().defined())
      slot.copy_(p.grad().reshape(-1));
    else
      slot.zero_();
  }
  bucket.work = dp_->all_reduce_async(bucket.flat, ReduceOp::kAvg);
}

void DataParallelGradSync::finish() {
  if (dp_->size() == 1) return;
  std::lock_guard<std::mutex> lock(mutex_);
  while (next_to_start_ < buckets_.size()) start(buckets_[next_to_start_++]);
  at::NoGradGuard no_grad;
  for (Bucket& bucket : buckets_) {
    bucket.work->wait();
    bucket.work.reset();
    bucket.ready = 0;
    for (size_t i = 0; i < bucket.params.size(); ++i) {
      at::Tensor& p = params_[bucket.params[i]];
      at::Tensor average = bucket.flat.narrow(0, bucket.offsets[i], p.numel()).view(p.sizes());
      if (p.grad().defined())
        p.mutable_grad().copy_(average);
      else
        p.mutable_grad() = average.clone();
    }
  }
  next_to_start_ = 0;
}

}  // namespace ls::parallel
