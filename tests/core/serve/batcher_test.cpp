// The dynamic batcher (core/serve/batcher.h) against a fake backend, without a model or a socket:
// answers reach their request in input order, the queue bound refuses overflow, a lone request is
// not held for max-wait while a request on its way is waited for, batches stay within the max
// size and group the oldest input with those closest to it in length.
#include "core/serve/batcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <numeric>
#include <stdexcept>

namespace ls::serve {
namespace {

using namespace std::chrono_literals;

// A request of the fake backend: its id, and one input per length.
struct FakeJob : Job {
  int id = 0;
};

std::shared_ptr<FakeJob> make_job(int id, std::vector<int64_t> lengths) {
  auto job = std::make_shared<FakeJob>();
  job->id = id;
  job->lengths = std::move(lengths);
  return job;
}

// Answers {id, index} per input and records each batch's input lengths. With `hold_first`, the
// first call blocks until release(), so inputs queue up behind it; `fail_id` makes a batch holding
// that job's inputs throw.
class FakeBackend {
 public:
  explicit FakeBackend(bool hold_first = false, int fail_id = -1)
      : hold_first_(hold_first), fail_id_(fail_id), released_(release_.get_future().share()) {}

  BatchBackend function() {
    return [this](const std::vector<BatchItem>& batch) { return call(batch); };
  }
  void wait_until_held() { held_.get_future().wait(); }
  void release() { release_.set_value(); }
  std::vector<std::vector<int64_t>> batches() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return batches_;
  }

 private:
  std::vector<Output> call(const std::vector<BatchItem>& batch) {
    if (hold_first_ && !first_done_) {
      first_done_ = true;
      held_.set_value();
      released_.wait();
    }
    std::vector<Output> out;
    std::vector<int64_t> lengths;
    bool fail = false;
    for (const BatchItem& item : batch) {
      const auto& job = static_cast<const FakeJob&>(*item.job);
      out.push_back(Output{nlohmann::json{job.id, item.index}, {}});
      lengths.push_back(job.lengths[item.index]);
      fail |= job.id == fail_id_;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      batches_.push_back(lengths);
    }
    if (fail) throw std::runtime_error("out of memory");
    return out;
  }

  const bool hold_first_;
  const int fail_id_;
  bool first_done_ = false;  // the batcher thread's own
  std::promise<void> held_, release_;
  std::shared_future<void> released_;
  mutable std::mutex mutex_;
  std::vector<std::vector<int64_t>> batches_;
};

BatcherOptions options(size_t max_batch, std::chrono::milliseconds max_wait, size_t max_queue) {
  BatcherOptions out;
  out.max_batch = max_batch;
  out.max_wait = max_wait;
  out.max_queue = max_queue;
  return out;
}

bool answered_within(const std::shared_ptr<FakeJob>& job, std::chrono::milliseconds timeout) {
  return job->done.get_future().wait_for(timeout) == std::future_status::ready;
}

TEST(Batcher, EveryAnswerGoesBackToItsRequestInInputOrder) {
  FakeBackend backend;
  Batcher batcher(backend.function(), options(4, 1ms, 10000));
  std::vector<std::shared_ptr<FakeJob>> jobs;
  for (int id = 0; id < 40; ++id) {
    std::vector<int64_t> lengths(1 + id % 6);
    for (size_t i = 0; i < lengths.size(); ++i) lengths[i] = 1 + (id * 7 + i * 13) % 29;
    jobs.push_back(make_job(id, lengths));
  }
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t)
    clients.emplace_back([&, t] {
      for (size_t j = t; j < jobs.size(); j += 4) {
        Batcher::Arrival arrival(batcher);
        auto done = jobs[j]->done.get_future();
        ASSERT_TRUE(batcher.submit(jobs[j]));
        arrival.done();
        done.wait();
      }
    });
  for (auto& client : clients) client.join();
  size_t inputs = 0;
  for (const auto& job : jobs) {
    ASSERT_TRUE(job->error.empty()) << job->error;
    ASSERT_EQ(job->outputs.size(), job->lengths.size());
    for (size_t i = 0; i < job->lengths.size(); ++i)
      EXPECT_EQ(job->outputs[i].object, (nlohmann::json{job->id, i})) << "job " << job->id;
    inputs += job->lengths.size();
  }
  size_t predicted = 0;
  for (const auto& batch : backend.batches()) predicted += batch.size();
  EXPECT_EQ(predicted, inputs);
}

TEST(Batcher, ARequestBeyondTheQueueBoundIsRefusedButAnEmptyQueueTakesAnyRequest) {
  FakeBackend backend(/*hold_first=*/true);
  Batcher batcher(backend.function(), options(1, 0ms, 4));
  auto running = make_job(0, {5});
  ASSERT_TRUE(batcher.submit(running));
  backend.wait_until_held();  // the backend holds job 0; the queue is empty again
  auto three = make_job(1, {5, 5, 5});
  auto two = make_job(2, {5, 5});
  auto one = make_job(3, {5});
  EXPECT_TRUE(batcher.submit(three));
  EXPECT_FALSE(batcher.submit(two)) << "3 + 2 inputs exceed a queue of 4";
  EXPECT_TRUE(batcher.submit(one));
  EXPECT_EQ(batcher.depth(), 4u);
  backend.release();
  for (const auto& job : {running, three, one}) EXPECT_TRUE(answered_within(job, 10s));
  EXPECT_EQ(batcher.depth(), 0u);
  auto large = make_job(4, std::vector<int64_t>(10, 5));
  EXPECT_TRUE(batcher.submit(large)) << "an empty queue takes a request larger than its bound";
  EXPECT_TRUE(answered_within(large, 10s));
}

TEST(Batcher, ALoneRequestIsNotHeldForMaxWait) {
  FakeBackend backend;
  Batcher batcher(backend.function(), options(32, 10000ms, 1024));
  auto job = make_job(0, {3, 4});
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(batcher.submit(job));
  ASSERT_TRUE(answered_within(job, 5s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(backend.batches().size(), 1u);
}

TEST(Batcher, WhileARequestIsOnItsWayTheBatchWaitsForItAndTakesItAlong) {
  FakeBackend backend;
  Batcher batcher(backend.function(), options(32, 10000ms, 1024));
  Batcher::Arrival second_arriving(batcher);  // being read or tokenized
  auto first = make_job(0, {4});
  {
    Batcher::Arrival arrival(batcher);
    ASSERT_TRUE(batcher.submit(first));
  }
  std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(backend.batches().empty()) << "ran before the arriving request was queued";
  auto second = make_job(1, {6});
  ASSERT_TRUE(batcher.submit(second));
  second_arriving.done();
  ASSERT_TRUE(answered_within(first, 5s));
  ASSERT_TRUE(answered_within(second, 5s));
  EXPECT_EQ(backend.batches(), (std::vector<std::vector<int64_t>>{{4, 6}}));
}

TEST(Batcher, TheOldestInputWaitsNoLongerThanMaxWaitForOneOnItsWay) {
  FakeBackend backend;
  Batcher batcher(backend.function(), options(32, 50ms, 1024));
  Batcher::Arrival never_queued(batcher);
  auto job = make_job(0, {4});
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(batcher.submit(job));
  ASSERT_TRUE(answered_within(job, 5s));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
}

TEST(Batcher, BatchesNeverExceedTheMaxBatchSize) {
  FakeBackend backend(/*hold_first=*/true);
  Batcher batcher(backend.function(), options(3, 1000ms, 1024));
  std::vector<std::shared_ptr<FakeJob>> jobs = {make_job(0, {2})};
  ASSERT_TRUE(batcher.submit(jobs[0]));
  backend.wait_until_held();
  for (int id = 1; id <= 10; ++id) jobs.push_back(make_job(id, {id}));
  jobs.push_back(make_job(11, {1, 2, 3, 4, 5, 6, 7}));
  for (size_t j = 1; j < jobs.size(); ++j) ASSERT_TRUE(batcher.submit(jobs[j]));
  backend.release();
  for (const auto& job : jobs) ASSERT_TRUE(answered_within(job, 10s));
  size_t predicted = 0, largest = 0;
  for (const auto& batch : backend.batches()) {
    EXPECT_LE(batch.size(), 3u);
    predicted += batch.size();
    largest = std::max(largest, batch.size());
  }
  EXPECT_EQ(predicted, 1u + 10u + 7u);
  EXPECT_EQ(largest, 3u) << "queued inputs were not batched";
}

TEST(Batcher, TheOldestInputGoesWithTheWaitingInputsClosestToItInLength) {
  FakeBackend backend(/*hold_first=*/true);
  Batcher batcher(backend.function(), options(2, 0ms, 1024));
  auto blocker = make_job(0, {1});
  ASSERT_TRUE(batcher.submit(blocker));
  backend.wait_until_held();
  auto job = make_job(1, {10, 50, 11, 49});
  ASSERT_TRUE(batcher.submit(job));
  backend.release();
  ASSERT_TRUE(answered_within(job, 10s));
  const auto batches = backend.batches();
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[1], (std::vector<int64_t>{10, 11}));
  EXPECT_EQ(batches[2], (std::vector<int64_t>{50, 49}));
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(job->outputs[i].object, (nlohmann::json{1, i}));
}

TEST(Batcher, ABackendFailureFailsTheRequestsOfItsBatchAndTheBatcherGoesOn) {
  FakeBackend backend(/*hold_first=*/false, /*fail_id=*/1);
  Batcher batcher(backend.function(), options(8, 0ms, 1024));
  auto failing = make_job(1, {3});
  ASSERT_TRUE(batcher.submit(failing));
  ASSERT_TRUE(answered_within(failing, 5s));
  EXPECT_EQ(failing->error, "out of memory");
  EXPECT_FALSE(batcher.healthy());  // GET /health: 503 until a forward pass succeeds
  EXPECT_EQ(batcher.last_error(), "out of memory");
  auto fine = make_job(2, {3});
  ASSERT_TRUE(batcher.submit(fine));
  ASSERT_TRUE(answered_within(fine, 5s));
  EXPECT_TRUE(fine->error.empty());
  EXPECT_TRUE(batcher.healthy());
  EXPECT_EQ(fine->outputs[0].object, (nlohmann::json{2, 0}));
}

TEST(Batcher, DestroyingTheBatcherAnswersEveryQueuedInputFirst) {
  FakeBackend backend(/*hold_first=*/true);
  std::vector<std::shared_ptr<FakeJob>> jobs;
  std::vector<std::future<void>> done;
  {
    Batcher batcher(backend.function(), options(2, 10000ms, 1024));
    for (int id = 0; id < 5; ++id) {
      jobs.push_back(make_job(id, {id + 1, id + 2}));
      done.push_back(jobs.back()->done.get_future());
      ASSERT_TRUE(batcher.submit(jobs.back()));
      if (id == 0) backend.wait_until_held();
    }
    backend.release();
  }
  for (size_t j = 0; j < jobs.size(); ++j) {
    EXPECT_EQ(done[j].wait_for(0s), std::future_status::ready);
    EXPECT_EQ(jobs[j]->outputs[1].object, (nlohmann::json{j, 1}));
  }
}

}  // namespace
}  // namespace ls::serve
