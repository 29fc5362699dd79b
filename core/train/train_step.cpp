// One optimizer step (see train_step.h).
#include "core/train/train_step.h"

#include <ATen/ATen.h>

#include "core/model/keyed_dropout.h"
#include "parallel/communicator.h"
#include "parallel/grad_sync.h"
#include "parallel/tp_linear.h"

namespace ls {

int64_t count_labels(const data::Batch& batch) {
  const auto& labels = batch.labels;
  if (batch.size() == 0) return 0;
  if (!at::isFloatingType(labels.scalar_type()))
    return labels.ne(kIgnoreIndex).sum().item<int64_t>();
  auto real = labels.isnan().logical_not();
  if (real.dim() == 2) real = real.all(1);  // multi-label: a labelled example
  return real.sum().item<int64_t>();
}

StepRunner::StepRunner(LsLlama& model, AdamW& optimizer, std::shared_ptr<parallel::Communicator> dp,
                       parallel::DataParallelGradSync* grad_sync, double max_grad_norm,
                       c10::Device device, std::shared_ptr<parallel::Communicator> tp)
    : model_(model),
      optimizer_(optimizer),
      dp_(std::move(dp)),
      tp_(std::move(tp)),
      grad_sync_(grad_sync),
      max_grad_norm_(max_grad_norm),
      device_(device) {
  for (const auto& p : optimizer_.params()) trainable_.push_back(p.tensor);
}

StepStats StepRunner::step(const std::vector<data::Batch>& micro_batches, double lr, int64_t step) {
  const int dp_size = dp_ ? dp_->size() : 1;
  const LossFunction& loss = model_.head().loss_function();
  // The global normalizer (labelled positions, or their class weights) first, from the host
  // batches: every micro-batch's gradient is then scaled to the global mean without a device sync.
  int64_t local_labels = 0, local_tokens = 0;
  double local_normalizer = 0;
  for (const auto& b : micro_batches) {
    local_labels += count_labels(b);
    if (b.size() == 0) continue;
    local_tokens += b.attention_mask.sum().item<int64_t>();
    local_normalizer += loss.normalizer(b.labels).item<double>();
  }
  StepStats stats;
  stats.labels = local_labels;
  stats.tokens = local_tokens;
  double global_normalizer = local_normalizer;
  if (dp_ && dp_size > 1) {
    stats.labels =
        static_cast<int64_t>(parallel::all_reduce_value(*dp_, static_cast<double>(local_labels)));
    stats.tokens =
        static_cast<int64_t>(parallel::all_reduce_value(*dp_, static_cast<double>(local_tokens)));
    global_normalizer = parallel::all_reduce_value(*dp_, local_normalizer);
  }
  const double normalizer = global_normalizer > 0 ? global_normalizer : 1.0;

  model_.train();
  // The epoch's last global batch may leave a rank empty micro-batches (or none with examples):
  // they add nothing to the sum, so they are skipped; gradient sync counts a missing gradient as
  // zeros and overlaps with the last backward that runs.
  size_t last = micro_batches.size();
  for (size_t i = 0; i < micro_batches.size(); ++i)
    if (micro_batches[i].size() > 0) last = i;
  at::Tensor local_loss_sum;  // stays on the device until the step is queued
  for (size_t i = 0; i < micro_batches.size(); ++i) {
    const auto& b = micro_batches[i];
    if (b.size() == 0) continue;
    if (grad_sync_) grad_sync_->set_overlap(i == last);
    auto input_ids = b.input_ids.to(device_, /*non_blocking=*/true);
    auto mask = b.attention_mask.to(device_, true);
    auto labels = b.labels.to(device_, true);
    // Dropout masks keyed by (seed, step, example, position): the same at any layout.
    if (dropout_seed_)
      model_.set_dropout_keys(
          dropout_row_keys(*dropout_seed_, step, b.example_indices, b.attention_mask));
    auto logits = model_.forward(input_ids, mask);
    // This micro-batch's share of the global mean: sum / global normalizer (x dp, which the dp
    // gradient average divides out again).
    auto loss_sum = loss.sum(logits, labels);
    (loss_sum * (dp_size / normalizer)).backward();
    model_.clear_dropout_keys();
    local_loss_sum =
        local_loss_sum.defined() ? local_loss_sum + loss_sum.detach() : loss_sum.detach();
  }
  if (grad_sync_) grad_sync_->finish();
  if (tp_ && tp_->size() > 1) {
    // Each element of the unsharded gradients once, whichever ranks hold it.
    stats.grad_norm = parallel::total_grad_norm(model_, *tp_);
    clip_grads_to_norm(trainable_, stats.grad_norm, max_grad_norm_);
  }
  // Without tensor parallelism the norm stays on the device until the update is queued.
  const at::Tensor grad_norm =
      tp_ && tp_->size() > 1 ? at::Tensor() : clip_grad_norm_async(trainable_, max_grad_norm_);
  optimizer_.step(lr);
  optimizer_.zero_grad();
  if (grad_norm.defined()) stats.grad_norm = grad_norm.item<double>();
  // One read-back per step, after the update is queued: the loss for the log.
  stats.loss = local_loss_sum.defined() ? local_loss_sum.item<double>() : 0.0;
  if (dp_ && dp_size > 1) stats.loss = parallel::all_reduce_value(*dp_, stats.loss);
  stats.loss /= normalizer;
  return stats;
}

}  // namespace ls
