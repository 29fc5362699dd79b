// ls_serve: a trained run as an HTTP/1.1 JSON service (docs/SERVE.md).
//   ls_serve RUN|ADAPTER [--adapter best|last|DIR] [--model BASE_DIR] [--host 127.0.0.1]
//            [--port 8080] [--device ...] [--max-batch-size 32] [--max-wait-ms 5]
//            [--max-body-bytes 1048576] [--max-inputs 256] [--max-queue 1024] [--threads 32]
// The command line and the wiring; the server itself is core/serve: the HTTP edge
// (http_server.h), the routes (service.h), the schemas (api.h), the dynamic batcher
// (batcher.h), the metrics (metrics.h) and the SIGTERM/SIGINT drain (shutdown.h). The run is
// loaded once by ls::Predictor, as ls_predict loads it.
#include <chrono>
#include <cstdio>

#include "core/base/error.h"
#include "core/infer/predictor.h"
#include "core/serve/http_server.h"
#include "core/serve/metrics.h"
#include "core/serve/service.h"
#include "core/serve/shutdown.h"
#include "launch/cli.h"

namespace {

int serve_main(int argc, char** argv) {
  CLI::App app{
      "Serve a trained ls-train run over HTTP: POST /v1/predict, GET /health, "
      "GET /v1/model, GET /metrics (docs/SERVE.md)."};
  app.option_defaults()->always_capture_default();  // --help shows each default
  ls::cli::TrainedRunOptions trained;
  ls::serve::HttpOptions http;
  ls::serve::BatcherOptions batching;
  std::string device;
  int max_wait_ms = 5;
  size_t max_inputs = 256;
  ls::cli::add_trained_run_options(app, trained);
  app.add_option("--host", http.host, "address to listen on");
  app.add_option("--port", http.port, "port to listen on (0: any free port, printed at start)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--device", device, "auto, cpu or cuda (default: the run's model.device)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  app.add_option("--max-batch-size", batching.max_batch, "inputs per forward pass, across requests")
      ->check(CLI::Range(1, 4096));
  app.add_option(
         "--max-wait-ms", max_wait_ms,
         "how long the oldest waiting input may wait for a fuller batch, while more requests are "
         "on their way in")
      ->check(CLI::Range(0, 60000));
  app.add_option("--max-body-bytes", http.max_body_bytes, "larger request bodies get 413")
      ->check(CLI::Range(1, 1 << 30));
  app.add_option("--max-inputs", max_inputs, "more inputs in one request get 413")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--max-queue", batching.max_queue,
                 "inputs waiting for a forward pass; a request that would exceed it gets 503")
      ->check(CLI::Range(1, 1 << 24));
  app.add_option("--threads", http.threads, "HTTP worker threads (concurrent connections)")
      ->check(CLI::Range(1, 1024));
  if (!ls::cli::parse(app, argc, argv)) return 0;
  batching.max_wait = std::chrono::milliseconds(max_wait_ms);

  ls::serve::watch_stop_signals("ls_serve");  // before any other thread starts
  std::vector<std::string> overrides;
  if (!device.empty()) overrides.push_back("model.device=" + device);
  ls::TrainedRun source =
      ls::open_trained_run(trained.run, trained.adapter, trained.base_model, overrides);
  const ls::Placement placement = ls::resolve_placement(source.config, 0, 1);
  ls::Predictor predictor(std::move(source), placement);
  ls::serve::Metrics metrics;
  ls::serve::PredictService service(predictor, metrics, max_inputs, batching);

  std::vector<ls::serve::Route> routes = {
      {"POST", "/v1/predict", [&](const std::string& body) { return service.predict(body); }},
      {"GET", "/health", [&](const std::string&) { return service.health(); }},
      {"GET", "/v1/model", [&](const std::string&) { return service.model(); }},
      {"GET", "/metrics", [&](const std::string&) { return service.metrics(); }},
  };
  ls::serve::HttpServer server(std::move(routes), http, [&metrics](int status, double seconds) {
    metrics.request(status, seconds);
  });
  {
    const ls::serve::StopOnSignal stop([&server] { return server.stop_if_listening(); });
    if (ls::serve::stop_requested()) return 0;  // a signal while loading
    const int port = server.bind();
    std::printf("ls_serve: %s on http://%s:%d (max batch %zu, max wait %d ms)\n",
                service.info()["task"].get<std::string>().c_str(), http.host.c_str(), port,
                batching.max_batch, max_wait_ms);
    std::fflush(stdout);
    server.listen();  // returns after a stop signal, once every accepted request is answered
  }
  std::fprintf(stderr, "ls_serve: stopped after answering %llu requests\n",
               static_cast<unsigned long long>(metrics.answered()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ls::run_main("ls_serve", serve_main, argc, argv);
}
