// BatchLoader: a background thread that collates the next batches while the trainer computes,
// through a bounded queue. Examples are tokenized when the Dataset is built, so what runs here is
// padding and tensor filling, and pinning; the thread keeps it off the step's path. Pinned
// (page-locked) batches let the trainer's non_blocking copies to the GPU run asynchronously
// instead of staging through pageable memory with a synchronising copy.
//
// Batches come out in sampler order from a start position through the last batch of epoch
// end_epoch - 1; each carries the position after it, which is what a checkpoint saves. An
// exception in the thread reaches the consumer from next(), after the batches made before it.
// Destroying the loader stops and joins the thread, also when batches are left unconsumed.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include "data/batch.h"
#include "data/dataset.h"
#include "data/sampler.h"

namespace ls::data {

class BatchLoader {
 public:
  // `dataset` and `sampler` must outlive the loader. `prefetch`: batches made ahead (>= 1).
  // `pin_memory`: pin every batch's tensors; unset, pin when libtorch sees a CUDA device.
  BatchLoader(const Dataset& dataset, const Sampler& sampler, CollateOptions options,
              SamplerPosition start, int64_t end_epoch, int prefetch = 4,
              std::optional<bool> pin_memory = std::nullopt);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // The next batch, or nullopt after the last one. Rethrows the background thread's exception.
  std::optional<Batch> next();

 private:
  void produce(SamplerPosition start, int64_t end_epoch);

  const Dataset& dataset_;
  const Sampler& sampler_;
  const CollateOptions options_;
  const size_t capacity_;
  const bool pin_memory_;

  std::mutex mutex_;
  std::condition_variable not_full_, not_empty_;
  std::deque<Batch> queue_;
  bool finished_ = false;  // the producer made its last batch (or failed)
  bool stopping_ = false;  // the consumer is going away
  std::exception_ptr error_;
  std::thread thread_;  // last: starts after everything it uses exists
};

}  // namespace ls::data
