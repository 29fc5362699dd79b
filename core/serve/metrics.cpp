// The service's Prometheus metrics (metrics.h).
#include "core/serve/metrics.h"

#include <fmt/format.h>

namespace ls::serve {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size(), 0) {}

void Histogram::observe(double value) {
  for (size_t i = 0; i < bounds_.size(); ++i) counts_[i] += value <= bounds_[i];
  sum_ += value;
  ++count_;
}

std::string Histogram::text(const std::string& name, const std::string& help) const {
  std::string out = fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  for (size_t i = 0; i < bounds_.size(); ++i)
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], counts_[i]);
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, count_, name,
                     sum_, name, count_);
  return out;
}

void Metrics::request(int status, bool ran, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[status];
  if (ran) latency_.observe(seconds);
}

void Metrics::prediction(double tokenization, double queue, double inference) {
  std::lock_guard<std::mutex> lock(mutex_);
  tokenization_.observe(tokenization);
  queue_.observe(queue);
  inference_.observe(inference);
}

void Metrics::connections(size_t open, uint64_t refused) {
  std::lock_guard<std::mutex> lock(mutex_);
  open_connections_ = open;
  refused_connections_ = refused;
}

void Metrics::batch(size_t inputs) {
  std::lock_guard<std::mutex> lock(mutex_);
  batch_size_.observe(static_cast<double>(inputs));
  inputs_ += inputs;
}

uint64_t Metrics::answered() const {
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t total = 0;
  for (const auto& [status, count] : requests_) total += count;
  return total;
}

std::string Metrics::text(size_t queue_depth) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out =
      "# HELP ls_serve_requests_total HTTP requests answered, by status code.\n"
      "# TYPE ls_serve_requests_total counter\n";
  for (const auto& [status, count] : requests_)
    out += fmt::format("ls_serve_requests_total{{status=\"{}\"}} {}\n", status, count);
  out += latency_.text("ls_serve_request_duration_seconds",
                       "Time from a prediction request's first byte to its answer, in seconds "
                       "(predictions the model ran).");
  out += tokenization_.text("ls_serve_tokenization_duration_seconds",
                            "Time parsing and tokenizing a prediction request, in seconds.");
  out += queue_.text("ls_serve_queue_duration_seconds",
                     "Time a prediction request waited for the model, in seconds.");
  out += inference_.text("ls_serve_inference_duration_seconds",
                         "Time from a prediction request's first forward pass to its last, in "
                         "seconds.");
  out += batch_size_.text("ls_serve_batch_size", "Inputs per forward pass.");
  out += fmt::format(
      "# HELP ls_serve_inputs_total Inputs predicted.\n# TYPE ls_serve_inputs_total counter\n"
      "ls_serve_inputs_total {}\n"
      "# HELP ls_serve_queue_depth Inputs waiting for a forward pass.\n"
      "# TYPE ls_serve_queue_depth gauge\nls_serve_queue_depth {}\n"
      "# HELP ls_serve_open_connections HTTP connections open.\n"
      "# TYPE ls_serve_open_connections gauge\nls_serve_open_connections {}\n"
      "# HELP ls_serve_refused_connections_total Connections refused over --max-connections.\n"
      "# TYPE ls_serve_refused_connections_total counter\n"
      "ls_serve_refused_connections_total {}\n",
      inputs_, queue_depth, open_connections_, refused_connections_);
  return out;
}

}  // namespace ls::serve
