// RunPlan: a run's batch arithmetic, computed once, before anything runs. From the config, the
// training split's size and the data-parallel width: the micro-batch each rank runs, how many
// micro-batches make one optimizer step, the steps per epoch and in all, warmup and the
// evaluation interval. Pure functions, tested without a model (tests/core/train/run_plan_test.cpp).
#pragma once

#include <cstdint>

#include "core/run/config.h"

namespace ls {

// How the global batch (train.batch_size) is split: batch = micro x accumulation x dp.
struct Batching {
  int64_t micro_batch_size = 0;  // examples per rank per forward pass
  int64_t accumulation = 1;      // micro-batches per optimizer step
};

struct RunPlan {
  Batching batching;
  int64_t batches_per_epoch = 0;  // micro-batches per epoch on each rank (data::Sampler's count)
  int64_t steps_per_epoch = 0;    // optimizer steps: ceil(examples / train.batch_size) at any dp;
                                  // the last, partial global batch ends an epoch
  int64_t total_steps = 0;        // epochs x steps_per_epoch, capped by train.max_steps
  int64_t warmup_steps = 0;       // train.warmup_steps, else ceil(warmup_ratio x total_steps) (HF)
  int64_t eval_every_steps = 0;   // 0: at the end of every epoch
};

// UserError naming train.batch_size when it is not micro_batch_size x dp x some accumulation.
// micro_batch_size 0 means batch_size / dp (at least 1).
Batching plan_batching(const TrainSection& train, int dp);

// The whole plan for a training split of `train_examples` examples over `dp` data-parallel ranks.
RunPlan plan_run(const TrainSection& train, int64_t train_examples, int dp);

}  // namespace ls
