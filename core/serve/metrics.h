// The service's Prometheus metrics (GET /metrics): requests by status, the latency of predictions
// and of their stages, inputs per forward pass, inputs predicted, the queue depth and the
// connections, as Prometheus text format 0.0.4.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace ls::serve {

// A Prometheus histogram: cumulative bucket counts, sum and count. Not thread-safe on its own.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  std::string text(const std::string& name, const std::string& help) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

// Every metric of the service; thread-safe.
class Metrics {
 public:
  // An answer (every path, every status) sent `seconds` after its request's first byte; the
  // latency histogram counts only predictions the model ran (Answer::ran).
  void request(int status, bool ran, double seconds);
  // A prediction's stages, in seconds: tokenizing, waiting in the queue, the model.
  void prediction(double tokenization, double queue, double inference);
  // HTTP connections: open now, and refused over --max-connections so far.
  void connections(size_t open, uint64_t refused);
  // A forward pass over `inputs` inputs.
  void batch(size_t inputs);
  // Requests answered so far.
  uint64_t answered() const;
  // The Prometheus text, with the queue depth the caller reads from the batcher.
  std::string text(size_t queue_depth) const;

 private:
  mutable std::mutex mutex_;
  std::map<int, uint64_t> requests_;
  Histogram latency_{{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}};
  Histogram tokenization_{{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1}};
  Histogram queue_{{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}};
  Histogram inference_{{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}};
  Histogram batch_size_{{1, 2, 4, 8, 16, 32, 64, 128, 256, 512}};
  size_t open_connections_ = 0;
  uint64_t refused_connections_ = 0;
  uint64_t inputs_ = 0;
};

}  // namespace ls::serve
