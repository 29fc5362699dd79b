// A run's batch arithmetic (see run_plan.h).
#include "core/train/run_plan.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/base/error.h"
#include "data/sampler.h"

namespace ls {

Batching plan_batching(const TrainSection& train, int dp) {
  const int64_t micro = train.micro_batch_size > 0 ? train.micro_batch_size
                                                   : std::max<int64_t>(1, train.batch_size / dp);
  if (train.batch_size % (micro * dp) != 0)
    fail(
        "train.batch_size: {} is not a multiple of micro_batch_size ({}) x data-parallel ranks "
        "({})",
        train.batch_size, micro, dp);
  return {micro, train.batch_size / (micro * dp)};
}

RunPlan plan_run(const TrainSection& train, int64_t train_examples, int dp) {
  RunPlan plan;
  plan.batching = plan_batching(train, dp);
  const int64_t accumulation = plan.batching.accumulation;
  // The training sampler's epoch: every example once, in global batches of train.batch_size;
  // every rank runs the same number of micro-batches.
  data::SamplerOptions sampler;
  sampler.batch_size = plan.batching.micro_batch_size;
  sampler.accumulation = accumulation;
  sampler.dp_size = dp;
  plan.batches_per_epoch = data::batches_per_epoch(train_examples, sampler);
  // ceil(examples / train.batch_size), at any dp and micro-batch size.
  plan.steps_per_epoch = (plan.batches_per_epoch + accumulation - 1) / accumulation;
  plan.total_steps = plan.steps_per_epoch * train.epochs;
  if (train.max_steps > 0) plan.total_steps = std::min<int64_t>(plan.total_steps, train.max_steps);
  // HF Trainer's get_warmup_steps: math.ceil(num_training_steps * warmup_ratio).
  plan.warmup_steps = train.warmup_steps > 0
                          ? train.warmup_steps
                          : static_cast<int64_t>(std::ceil(static_cast<double>(plan.total_steps) *
                                                           train.warmup_ratio));
  plan.eval_every_steps = train.eval_every == "epoch" ? 0 : std::stol(train.eval_every);
  return plan;
}

}  // namespace ls
