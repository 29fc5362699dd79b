// BatchLoader (see loader.h).
#include "data/loader.h"

#include <ATen/Context.h>

#include "core/base/error.h"

namespace ls::data {

BatchLoader::BatchLoader(const Dataset& dataset, const Sampler& sampler, CollateOptions options,
                         SamplerPosition start, int64_t end_epoch, int prefetch,
                         std::optional<bool> pin_memory)
    : dataset_(dataset),
      sampler_(sampler),
      options_(options),
      capacity_(static_cast<size_t>(std::max(prefetch, 1))),
      pin_memory_(pin_memory.value_or(at::globalContext().hasCUDA())) {
  LS_ASSERT(sampler.dataset_size() == dataset.size(), "sampler over {} examples, dataset has {}",
            sampler.dataset_size(), dataset.size());
  thread_ = std::thread([this, start, end_epoch] { produce(start, end_epoch); });
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  not_full_.notify_all();
  thread_.join();
}

void BatchLoader::produce(SamplerPosition start, int64_t end_epoch) {
  try {
    const int64_t per_epoch = sampler_.batches_per_epoch();
    for (int64_t epoch = start.epoch; epoch < end_epoch; ++epoch) {
      const std::vector<std::vector<int64_t>> batches = sampler_.epoch_batches(epoch);
      for (int64_t b = epoch == start.epoch ? start.batch : 0; b < per_epoch; ++b) {
        Batch batch = collate(dataset_, batches[b], options_);
        if (pin_memory_)
          for (at::Tensor* tensor :
               {&batch.input_ids, &batch.attention_mask, &batch.labels, &batch.word_ids})
            if (tensor->defined()) *tensor = tensor->pin_memory();
        batch.epoch = epoch;
        batch.index = b;
        batch.next =
            b + 1 < per_epoch ? SamplerPosition{epoch, b + 1} : SamplerPosition{epoch + 1, 0};
        std::unique_lock<std::mutex> lock(mutex_);
        not_full_.wait(lock, [&] { return stopping_ || queue_.size() < capacity_; });
        if (stopping_) return;
        queue_.push_back(std::move(batch));
        lock.unlock();
        not_empty_.notify_one();
      }
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = std::current_exception();
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    finished_ = true;
  }
  not_empty_.notify_one();
}

std::optional<Batch> BatchLoader::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  not_empty_.wait(lock, [&] { return !queue_.empty() || finished_; });
  if (!queue_.empty()) {
    Batch batch = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    not_full_.notify_one();
    return batch;
  }
  if (error_) std::rethrow_exception(error_);
  return std::nullopt;
}

}  // namespace ls::data
