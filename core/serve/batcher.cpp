// The request queue and the dynamic-batching loop (batcher.h).
#include "core/serve/batcher.h"

#include <algorithm>
#include <cstdlib>

#include "core/serve/metrics.h"

namespace ls::serve {

Batcher::Batcher(BatchBackend backend, BatcherOptions options, Metrics* metrics)
    : backend_(std::move(backend)),
      options_(options),
      metrics_(metrics),
      thread_([this] { loop(); }) {}

Batcher::~Batcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

bool Batcher::submit(const std::shared_ptr<Job>& job) {
  const size_t n = job->lengths.size();
  job->outputs.assign(n, Output());
  job->remaining = n;
  const auto now = std::chrono::steady_clock::now();
  job->queued = job->started = now;
  if (n == 0) {
    job->done.set_value();
    if (job->on_done) job->on_done();
    return true;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!queue_.empty() && queue_.size() + n > options_.max_queue) return false;
    for (size_t i = 0; i < n; ++i) queue_.push_back(Item{job, i, job->lengths[i], now});
  }
  wake_.notify_all();
  return true;
}

size_t Batcher::depth() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size();
}

bool Batcher::healthy() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_error_.empty();
}

std::string Batcher::last_error() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_error_;
}

Batcher::Arrival::Arrival(Batcher& batcher) : batcher_(&batcher) {
  std::lock_guard<std::mutex> lock(batcher.mutex_);
  ++batcher.arriving_;
}

void Batcher::Arrival::done() {
  if (!batcher_) return;
  {
    std::lock_guard<std::mutex> lock(batcher_->mutex_);
    --batcher_->arriving_;
  }
  batcher_->wake_.notify_all();
  batcher_ = nullptr;
}

void Batcher::loop() {
  for (;;) {
    std::vector<Item> batch;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing is left
      // A fuller batch is worth waiting for (at most max_wait) only while more requests are on
      // their way in; otherwise the model would idle for nothing.
      wake_.wait_until(lock, queue_.front().queued + options_.max_wait, [&] {
        return stopping_ || queue_.size() >= options_.max_batch || arriving_ == 0;
      });
      batch = take_batch();
    }
    run(batch);
  }
}

// The oldest input (so none waits forever) and the max_batch - 1 others closest to it in length,
// so a batch pads little. Called under the lock.
std::vector<Batcher::Item> Batcher::take_batch() {
  std::vector<Item> batch;
  const size_t max_batch = options_.max_batch;
  if (queue_.size() <= max_batch) {
    batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
    queue_.clear();
    return batch;
  }
  const int64_t anchor = queue_.front().length;
  std::vector<size_t> order(queue_.size() - 1);
  for (size_t i = 0; i < order.size(); ++i) order[i] = i + 1;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::abs(queue_[a].length - anchor) < std::abs(queue_[b].length - anchor);
  });
  std::vector<bool> taken(queue_.size(), false);
  taken[0] = true;
  for (size_t i = 0; i + 1 < max_batch; ++i) taken[order[i]] = true;
  std::deque<Item> rest;
  for (size_t i = 0; i < queue_.size(); ++i)
    (taken[i] ? batch.push_back(std::move(queue_[i])) : rest.push_back(std::move(queue_[i])));
  queue_ = std::move(rest);
  return batch;
}

// One backend call over the batch; each prediction goes back to its job.
void Batcher::run(std::vector<Item>& batch) {
  std::vector<BatchItem> items;
  items.reserve(batch.size());
  const auto started = std::chrono::steady_clock::now();
  for (Item& item : batch) {
    items.push_back(BatchItem{item.job.get(), item.index});
    // A job's start: when its first input ran (the rest of its time is queueing).
    if (item.job->remaining == item.job->lengths.size() && item.job->started <= item.job->queued)
      item.job->started = started;
  }
  std::vector<Output> outputs;
  std::string error;
  try {
    outputs = backend_(items);
    if (outputs.size() != batch.size())
      error = "the backend answered " + std::to_string(outputs.size()) + " of " +
              std::to_string(batch.size()) + " inputs";
  } catch (const std::exception& e) {
    error = e.what();
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    last_error_ = error;
  }
  if (metrics_) metrics_->batch(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    Job& job = *batch[i].job;
    if (error.empty())
      job.outputs[batch[i].index] = std::move(outputs[i]);
    else
      job.error = error;
    if (--job.remaining == 0) {  // only this thread touches `remaining`
      job.done.set_value();
      if (job.on_done) job.on_done();
    }
  }
}

}  // namespace ls::serve
