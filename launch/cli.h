// The programs' command line, defined once: how a command line is parsed (a usage error is one
// line and exit code 2, --help prints and exits 0) and the trained-run options that ls_predict,
// ls_export and ls_serve share (RUN|ADAPTER, --adapter, --model). No libtorch: ls_tokenize uses it.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace ls::cli {

// Parses argv into `app`. Returns true to go on, false when --help was asked for: the help is
// printed on stdout (when `print_help`; under mpirun rank 0 alone prints) and the program exits
// 0. A usage error (an unknown or missing option, a bad value) throws UserError with CLI11's
// message on one line, which run_main / run_mpi_main print as `PROGRAM: error: ...`, exit 2.
[[nodiscard]] bool parse(CLI::App& app, int argc, char** argv, bool print_help = true);

// Which trained run to load: the positional RUN|ADAPTER, `--adapter best|last|DIR` and
// `--model BASE_DIR`, as open_trained_run (core/run/trained_run.h) takes them.
struct TrainedRunOptions {
  std::string run;               // a run directory written by ls_train, or an adapter directory
  std::string adapter = "best";  // best (adapter/), last (adapter_last/), or an adapter directory
  std::string base_model;        // empty: the run's model.path, or the adapter's recorded base
};

// Adds the positional `run` (required) and --adapter and --model to `app`. A missing directory
// is reported by open_trained_run, naming it.
void add_trained_run_options(CLI::App& app, TrainedRunOptions& options);

}  // namespace ls::cli
