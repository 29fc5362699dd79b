// Data-parallel gradient averaging. Each dp rank runs backward on its own shard of the global
// batch; the gradients of the trainable tensors are then averaged over the dp group,
// so every rank takes the same optimizer step as one process over the whole batch would.
// Gradients are packed into buckets, and a bucket's all-reduce starts from a backward hook as soon
// as its last gradient is accumulated, overlapping the rest of backward. Buckets start in a fixed
// order on every rank (collectives must match), whatever order their gradients arrive in.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "parallel/communicator.h"

namespace ls::parallel {

class DataParallelGradSync {
 public:
  static constexpr int64_t kDefaultBucketBytes = 25 << 20;

  // `params`: the trainable tensors, in the order the model registers them (backward produces
  // their gradients roughly in reverse, so buckets fill from the end). Installs a
  // post-accumulate-grad hook on each (a tensor has one such slot); the destructor removes them.
  DataParallelGradSync(std::shared_ptr<Communicator> dp, std::vector<at::Tensor> params,
                       int64_t bucket_bytes = kDefaultBucketBytes);
  ~DataParallelGradSync();
  DataParallelGradSync(const DataParallelGradSync&) = delete;
  DataParallelGradSync& operator=(const DataParallelGradSync&) = delete;

  // Gradient accumulation: while off, backward only accumulates locally and starts nothing.
  // Turn it on for the last micro-batch of a step.
  void set_overlap(bool enabled) { overlap_ = enabled; }

  // Starts the buckets backward has not started (a tensor without a gradient counts as zeros),
  // waits for all of them and writes the averages into .grad. Call after the last backward of a
  // step, before gradient clipping and the optimizer step.
  void finish();

  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }
  // Buckets whose all-reduce has started since the last finish() (all of them right after a
  // backward that produced every gradient: the communication is already under way).
  int64_t buckets_started() const { return static_cast<int64_t>(next_to_start_); }
  Communicator& dp_group() const { return *dp_; }

 private:
  struct Bucket {
    std::vector<size_t> params;    // indices into params_
    std::vector<int64_t> offsets;  // element offset of each in flat
    at::Tensor flat;
    size_t ready = 0;
    std::unique_ptr<Work> work;
  };

  void on_gradient_ready(size_t param);
  void start(Bucket& bucket);

  std::shared_ptr<Communicator> dp_;
  std::vector<at::Tensor> params_;
  std::vector<size_t> bucket_of_;  // param index -> bucket index
  std::vector<Bucket> buckets_;
  size_t next_to_start_ = 0;
  bool overlap_ = true;
  std::mutex mutex_;  // backward may run hooks on an autograd device thread
};

}  // namespace ls::parallel
