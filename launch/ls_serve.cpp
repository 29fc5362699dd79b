// ls_serve: a trained run as an HTTP/1.1 JSON service (docs/SERVE.md).
//   ls_serve RUN|ADAPTER [--adapter best|last|DIR] [--model BASE_DIR] [--host 127.0.0.1]
//            [--port 8080] [--device ...] [--max-batch-size 32] [--max-wait-ms 5] [limits...]
//            (--help lists them; docs/SERVE.md says what each answers)
// The command line and the wiring; the server itself is core/serve: the HTTP edge
// (http_server.h), the routes (service.h), the schemas (api.h), the dynamic batcher
// (batcher.h), the metrics (metrics.h) and the SIGTERM/SIGINT drain (shutdown.h). The run is
// loaded once by ls::Predictor, as ls_predict loads it.
#include <chrono>
#include <cstdio>
#include <cstdlib>

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
      "Serve a trained ls-train run over HTTP: POST /v1/predict; the HF Inference / TEI API "
      "(POST /, POST /predict, GET /info); vLLM's (POST /classify, GET /v1/models); GET /health, "
      "GET /v1/model, GET /metrics (docs/SERVE.md)."};
  app.option_defaults()->always_capture_default();  // --help shows each default
  ls::cli::TrainedRunOptions trained;
  ls::serve::HttpOptions http;
  ls::serve::ServiceOptions service_options;
  ls::serve::BatcherOptions& batching = service_options.batching;
  std::string device;
  int max_wait_ms = 5;
  double header_timeout = 10, body_timeout = 30, keep_alive_timeout = 5, shutdown_timeout = 10;
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
  app.add_option("--max-body-bytes", http.max_body_bytes,
                 "request body bytes read, whatever the framing: beyond, 413")
      ->check(CLI::Range(1, 1 << 30));
  app.add_option("--max-header-bytes", http.max_header_bytes,
                 "request line and header bytes: beyond, 431")
      ->check(CLI::Range(1024, 1 << 20));
  app.add_option("--max-header-fields", http.max_header_fields, "header fields: beyond, 431")
      ->check(CLI::Range(1, 10000));
  app.add_option("--max-connections", http.max_connections,
                 "open connections: a new one beyond gets 503 at once and is closed")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--max-concurrent-requests", service_options.max_concurrent_requests,
                 "predictions in flight: beyond, 429 with Retry-After")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--max-inputs", service_options.max_inputs, "more inputs in one request get 413")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--max-input-chars", service_options.max_input_chars,
                 "characters of one input, checked before tokenizing: beyond, 413 (or cut, with "
                 "\"truncate\": true); 0: the run's data.max_length x 250")
      ->check(CLI::Range(0, 1 << 30));
  app.add_option("--max-queue", batching.max_queue,
                 "inputs waiting for a forward pass; a request that would exceed it gets 503")
      ->check(CLI::Range(1, 1 << 24));
  app.add_option("--workers,--threads", service_options.workers,
                 "threads that parse and tokenize requests (0: the cores, at most 8; --threads: "
                 "the old name)")
      ->check(CLI::Range(0, 256));
  app.add_option("--header-timeout", header_timeout,
                 "seconds for a whole request head, from its first byte: then 408")
      ->check(CLI::Range(0.001, 3600.0));
  app.add_option("--body-timeout", body_timeout,
                 "seconds for a request body, and for writing an answer: then 408 or close")
      ->check(CLI::Range(0.001, 3600.0));
  app.add_option("--keep-alive-timeout", keep_alive_timeout,
                 "seconds an idle connection is kept between requests")
      ->check(CLI::Range(0.001, 3600.0));
  app.add_option("--shutdown-timeout", shutdown_timeout,
                 "seconds after SIGTERM/SIGINT to finish the requests already received; then "
                 "connections left are cut")
      ->check(CLI::Range(0.0, 3600.0));
  if (!ls::cli::parse(app, argc, argv)) return 0;
  batching.max_wait = std::chrono::milliseconds(max_wait_ms);
  auto ms = [](double seconds) {
    return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  };
  http.header_timeout = ms(header_timeout);
  http.body_timeout = ms(body_timeout);
  http.keep_alive_timeout = ms(keep_alive_timeout);

  ls::serve::watch_stop_signals("ls_serve");  // before any other thread starts
  std::vector<std::string> overrides;
  if (!device.empty()) overrides.push_back("model.device=" + device);
  ls::TrainedRun source =
      ls::open_trained_run(trained.run, trained.adapter, trained.base_model, overrides);
  const ls::Placement placement = ls::resolve_placement(source.config, 0, 1);
  ls::Predictor predictor(std::move(source), placement);
  ls::serve::Metrics metrics;
  ls::serve::PredictService service(predictor, metrics, service_options);
  ls::serve::HttpServer server(service.routes(), http,
                               [&metrics](const ls::serve::Answer& answer, double seconds) {
                                 metrics.request(answer.status, answer.ran, seconds);
                               });
  service.count_connections([&server] { return server.stats(); });
  bool clean = true;
  {
    const ls::serve::StopOnSignal stop([&server, timeout = ms(shutdown_timeout)] {
      server.drain(timeout);
      return true;
    });
    if (ls::serve::stop_requested()) return 0;  // a signal while loading
    const int port = server.bind();
    std::printf("ls_serve: %s on http://%s:%d (max batch %zu, max wait %d ms, %zu workers)\n",
                service.info()["task"].get<std::string>().c_str(), http.host.c_str(), port,
                batching.max_batch, max_wait_ms, service.workers());
    std::fflush(stdout);
    clean = server.run();  // returns after a stop signal, once the requests received are answered
  }
  std::fprintf(stderr, "ls_serve: stopped after answering %llu requests%s\n",
               static_cast<unsigned long long>(metrics.answered()),
               clean ? "" : " (--shutdown-timeout cut the connections left)");
  std::fflush(stderr);
  // Past the shutdown timeout, what is still queued is not waited for.
  if (!clean) std::_Exit(0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ls::run_main("ls_serve", serve_main, argc, argv);
}
