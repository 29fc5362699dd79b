// The request queue and the dynamic-batching loop of ls_serve, independent of the model: request
// threads queue jobs (a request's inputs, each known by its length); one batcher thread takes the
// oldest waiting input and those closest to it in length, up to the max batch size, and hands them
// to a backend (ls_serve: ls::Predictor, through PredictService) in one call; each answer goes
// back to its job. It waits for a fuller batch only while requests are on their way in (Arrival).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace ls::serve {

class Metrics;

// What the backend answers for one input: the object a client sees (an ls_predict line's), and
// the raw numbers other answer formats derive from (service.h: the class logits of a sequence
// input, the probability of each word's tag of a token input).
struct Output {
  nlohmann::json object;
  std::vector<float> scores;
};

// One request's inputs on their way through the batcher. The caller sets `lengths` (one per
// input, in tokens: the batcher groups inputs of similar length) and may set `on_done`; a backend
// derives from Job to carry the inputs themselves. The batcher fills `outputs` (or `error`), sets
// `done`, then calls `on_done` (on the batcher thread: it must not block).
struct Job {
  virtual ~Job() = default;
  std::vector<int64_t> lengths;
  std::vector<Output> outputs;  // one per input, in input order
  std::string error;            // set when the backend failed on one of its batches
  std::promise<void> done;
  std::function<void()> on_done;
  size_t remaining = 0;  // inputs not yet answered (the batcher thread's own)
  std::chrono::steady_clock::time_point queued, started;  // set by the batcher: queue and run
};

// One input of a batch: input `index` of `job`.
struct BatchItem {
  const Job* job = nullptr;
  size_t index = 0;
};

// Runs one batch: one output per item, in the items' order. An exception fails every job in the
// batch with its message; the batcher goes on.
using BatchBackend = std::function<std::vector<Output>(const std::vector<BatchItem>&)>;

struct BatcherOptions {
  size_t max_batch = 32;  // inputs per backend call
  std::chrono::steady_clock::duration max_wait =
      std::chrono::milliseconds(5);  // for a fuller batch
  size_t max_queue = 1024;           // inputs waiting; beyond: refused
};

class Batcher {
 public:
  // Starts the batcher thread. `metrics` (may be null) counts each batch.
  Batcher(BatchBackend backend, BatcherOptions options, Metrics* metrics = nullptr);
  // Runs every queued input, then joins the batcher thread.
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Queues a job's inputs; false when the queue is full (the caller answers 503). A job larger
  // than the queue is taken only when the queue is empty, so the queue holds at most
  // max(max_queue, the largest job) inputs. An empty job is answered at once.
  bool submit(const std::shared_ptr<Job>& job);

  // Inputs waiting for a backend call.
  size_t depth() const;
  // False from a failed backend call until the next one that succeeds: the model cannot run
  // (GET /health answers 503); `last_error` says why.
  bool healthy() const;
  std::string last_error() const;

  // A request from its arrival until its inputs are queued (or it is answered otherwise): while
  // none is on its way, waiting cannot fill a batch, so the batcher runs what it has at once.
  class Arrival {
   public:
    explicit Arrival(Batcher& batcher);
    ~Arrival() { done(); }
    Arrival(const Arrival&) = delete;
    Arrival& operator=(const Arrival&) = delete;
    void done();

   private:
    Batcher* batcher_;
  };

 private:
  struct Item {
    std::shared_ptr<Job> job;
    size_t index = 0;    // in the job's inputs
    int64_t length = 0;  // tokens
    std::chrono::steady_clock::time_point queued;
  };

  void loop();
  std::vector<Item> take_batch();
  void run(std::vector<Item>& batch);

  const BatchBackend backend_;
  const BatcherOptions options_;
  Metrics* const metrics_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Item> queue_;
  bool stopping_ = false;
  size_t arriving_ = 0;     // requests between arrival and queueing (Arrival)
  std::string last_error_;  // of the last backend call; empty when it succeeded
  std::thread thread_;      // last: starts once the rest is built
};

}  // namespace ls::serve
