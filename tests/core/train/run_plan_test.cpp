// RunPlan: the batch arithmetic of a run (micro-batch, accumulation, steps, warmup) on several
// data-parallel layouts, and the layouts it refuses.
#include "core/train/run_plan.h"

#include <gtest/gtest.h>

#include "core/base/error.h"

namespace ls {
namespace {

TrainSection train_section(int batch_size, int micro_batch_size, int epochs = 1) {
  TrainSection train;
  train.batch_size = batch_size;
  train.micro_batch_size = micro_batch_size;
  train.epochs = epochs;
  return train;
}

std::string plan_error(const TrainSection& train, int dp) {
  try {
    plan_run(train, 100, dp);
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

TEST(RunPlan, MicroBatchDefaultsToTheGlobalBatchSplitOverDataParallelRanks) {
  for (auto [dp, micro] : {std::pair{1, 8}, std::pair{2, 4}, std::pair{4, 2}, std::pair{8, 1}}) {
    const Batching batching = plan_batching(train_section(8, 0), dp);
    EXPECT_EQ(batching.micro_batch_size, micro) << "dp " << dp;
    EXPECT_EQ(batching.accumulation, 1) << "dp " << dp;
  }
  // More ranks than examples per step: one example each, which must still divide the batch.
  EXPECT_EQ(plan_batching(train_section(4, 0), 4).micro_batch_size, 1);
}

TEST(RunPlan, AccumulationIsTheGlobalBatchOverMicroTimesDp) {
  EXPECT_EQ(plan_batching(train_section(32, 4), 1).accumulation, 8);
  EXPECT_EQ(plan_batching(train_section(32, 4), 2).accumulation, 4);
  EXPECT_EQ(plan_batching(train_section(32, 8), 4).accumulation, 1);
}

TEST(RunPlan, StepsPerEpochCountThePartialGlobalBatchAsAStep) {
  // 10 examples, micro 2, dp 1: 5 batches; accumulation 2 -> steps of 2, 2 and 1 batches.
  RunPlan plan = plan_run(train_section(4, 2, 3), 10, 1);
  EXPECT_EQ(plan.batches_per_epoch, 5);
  EXPECT_EQ(plan.steps_per_epoch, 3);
  EXPECT_EQ(plan.total_steps, 9);
  // dp 2, micro 2: global batches of 4; the last 2 examples are one each -> 3 batches per rank.
  plan = plan_run(train_section(8, 2, 2), 10, 2);
  EXPECT_EQ(plan.batching.accumulation, 2);
  EXPECT_EQ(plan.batches_per_epoch, 3);
  EXPECT_EQ(plan.steps_per_epoch, 2);
  EXPECT_EQ(plan.total_steps, 4);
  // dp 4, micro 2: 10 = one global batch of 8 + 2 left, fewer than one per rank: still a step
  // (two ranks run one example, two an empty batch).
  plan = plan_run(train_section(8, 2), 10, 4);
  EXPECT_EQ(plan.batches_per_epoch, 2);
  EXPECT_EQ(plan.steps_per_epoch, 2);
}

TEST(RunPlan, StepsAndScheduleDoNotDependOnTheLayout) {
  // 1,003 examples, batch 8: 126 steps per epoch (the last of 3 examples) at any dp and
  // micro-batch size, so the LR schedule (total and warmup steps) is the same too.
  for (auto [dp, micro] : {std::pair{1, 8}, std::pair{1, 1}, std::pair{1, 2}, std::pair{2, 2},
                           std::pair{2, 1}, std::pair{4, 2}, std::pair{4, 1}, std::pair{8, 1}}) {
    TrainSection train = train_section(8, micro, 3);
    train.warmup_ratio = 0.1;
    const RunPlan plan = plan_run(train, 1003, dp);
    EXPECT_EQ(plan.steps_per_epoch, 126) << "dp " << dp << " micro " << micro;
    EXPECT_EQ(plan.total_steps, 378) << "dp " << dp << " micro " << micro;
    EXPECT_EQ(plan.warmup_steps, 38) << "dp " << dp << " micro " << micro;
  }
}

TEST(RunPlan, MaxStepsCapsTheTotal) {
  TrainSection train = train_section(2, 0, 10);
  train.max_steps = 7;
  EXPECT_EQ(plan_run(train, 100, 1).total_steps, 7);
  train.max_steps = 1000;
  EXPECT_EQ(plan_run(train, 100, 1).total_steps, 500);
}

// HF Trainer's get_warmup_steps: math.ceil(num_training_steps * warmup_ratio).
TEST(RunPlan, WarmupStepsOverrideTheRatioWhoseProductIsRoundedUpAsInHf) {
  TrainSection train = train_section(8, 0, 1);  // 100 examples: 13 steps
  train.warmup_ratio = 0.1;
  EXPECT_EQ(plan_run(train, 100, 1).total_steps, 13);
  EXPECT_EQ(plan_run(train, 100, 1).warmup_steps, 2);  // ceil(1.3); floor would give 1
  train.warmup_ratio = 0.15;
  EXPECT_EQ(plan_run(train, 100, 1).warmup_steps, 2);  // ceil(1.95)
  train.warmup_ratio = 0.01;
  EXPECT_EQ(plan_run(train, 100, 1).warmup_steps, 1);  // ceil(0.13): a little warmup, not none
  train.max_steps = 10;
  train.warmup_ratio = 0.2;
  EXPECT_EQ(plan_run(train, 100, 1).warmup_steps, 2);  // exactly 2.0 stays 2
  train.warmup_ratio = 0;
  EXPECT_EQ(plan_run(train, 100, 1).warmup_steps, 0);
  train.warmup_steps = 5;
  EXPECT_EQ(plan_run(train, 100, 1).warmup_steps, 5);
}

TEST(RunPlan, EvalEveryIsAnEpochOrAStepCount) {
  TrainSection train = train_section(8, 0);
  EXPECT_EQ(plan_run(train, 100, 1).eval_every_steps, 0);
  train.eval_every = "25";
  EXPECT_EQ(plan_run(train, 100, 1).eval_every_steps, 25);
}

TEST(RunPlan, ABatchThatDoesNotSplitOverTheLayoutIsAUserErrorNamingTheKey) {
  EXPECT_EQ(plan_error(train_section(8, 0), 3),
            "train.batch_size: 8 is not a multiple of micro_batch_size (2) x data-parallel ranks "
            "(3)");
  EXPECT_EQ(plan_error(train_section(8, 4), 4),
            "train.batch_size: 8 is not a multiple of micro_batch_size (4) x data-parallel ranks "
            "(4)");
  EXPECT_EQ(plan_error(train_section(2, 0), 4),
            "train.batch_size: 2 is not a multiple of micro_batch_size (1) x data-parallel ranks "
            "(4)");
  EXPECT_EQ(plan_error(train_section(8, 2), 2), "");
}

}  // namespace
}  // namespace ls
