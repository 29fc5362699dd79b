// One optimizer step over a global batch: forward and backward over this rank's micro-batches
// (gradient accumulation), data-parallel gradient averaging, clipping, AdamW. Under tensor
// parallelism the ranks of a tp group run the same batch together; the loss is the same on each.
//
// The loss is the mean over the GLOBAL batch (all micro-batches, all dp ranks) as loss.h defines
// it per problem type: sum of losses / global normalizer (labelled positions; with class weights
// the sum of the targets' weights, as torch's weighted cross-entropy; multi-label rows x labels).
// So a step is the same whatever the split into ranks and micro-batches: each micro-batch
// contributes sum * dp / global_normalizer, and the dp average of those gradients is the
// gradient of the global mean. The normalizer is computed from the host batches, and the loss is
// read back once per step, after the update is queued.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "core/model/ls_llama.h"
#include "core/train/adamw.h"
#include "data/batch.h"

namespace ls::parallel {
class Communicator;
class DataParallelGradSync;
}  // namespace ls::parallel

namespace ls {

struct StepStats {
  double loss = 0;       // global mean loss of the step
  double grad_norm = 0;  // before clipping
  int64_t tokens = 0;    // non-padding tokens, all ranks
  int64_t labels = 0;    // labelled positions, all ranks
};

class StepRunner {
 public:
  // `dp` and `grad_sync` may be null in a world of one. `tp`: the tensor-parallel group when the
  // model's projections are sharded over one (null or a group of one otherwise); the gradient
  // norm for clipping is then that of the unsharded model.
  StepRunner(LsLlama& model, AdamW& optimizer, std::shared_ptr<parallel::Communicator> dp,
             parallel::DataParallelGradSync* grad_sync, double max_grad_norm, c10::Device device,
             std::shared_ptr<parallel::Communicator> tp = nullptr);

  // Optimizer step number `step` (0-based) over this rank's micro-batches (some may be empty).
  StepStats step(const std::vector<data::Batch>& micro_batches, double lr, int64_t step);
  // With a seed, dropout masks are keyed by (seed, step, each row's example index, position,
  // site): the same whatever the split into ranks and micro-batches (core/model/keyed_dropout.h).
  // Without one (the default), dropout draws from torch's generator.
  void set_dropout_seed(std::optional<uint64_t> seed) { dropout_seed_ = seed; }

 private:
  LsLlama& model_;
  AdamW& optimizer_;
  std::shared_ptr<parallel::Communicator> dp_;
  std::shared_ptr<parallel::Communicator> tp_;
  parallel::DataParallelGradSync* grad_sync_;
  double max_grad_norm_;
  c10::Device device_;
  std::vector<at::Tensor> trainable_;
  std::optional<uint64_t> dropout_seed_;
};

// Counts labelled positions of a batch (label != -100; float targets: rows without NaN).
int64_t count_labels(const data::Batch& batch);

}  // namespace ls
