// The programs' shared command-line parsing and trained-run options (cli.h).
#include "launch/cli.h"

#include <algorithm>

#include "core/base/error.h"

namespace ls::cli {

bool parse(CLI::App& app, int argc, char** argv, bool print_help) {
  try {
    app.parse(argc, argv);
    return true;
  } catch (const CLI::Success& e) {  // --help (and --help-all): the help on stdout, exit 0
    if (print_help) app.exit(e);
    return false;
  } catch (const CLI::ParseError& e) {
    std::string message = e.what();
    std::replace(message.begin(), message.end(), '\n', ' ');
    fail("{} (--help lists the options)", message);
  }
}

void add_trained_run_options(CLI::App& app, TrainedRunOptions& options) {
  app.add_option("run", options.run,
                 "run directory written by ls_train, or an adapter directory (with --model or "
                 "its recorded base model)")
      ->required();
  app.add_option("--adapter", options.adapter,
                 "best (adapter/), last (adapter_last/), or an adapter directory");
  app.add_option("--model", options.base_model,
                 "base model directory (default: the run's model.path, or the adapter's "
                 "base_model_name_or_path)");
}

}  // namespace ls::cli
