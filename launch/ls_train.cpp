// ls_train: label-supervised LoRA fine-tuning of a LLaMA model, as one YAML file describes it.
//   ls_train CFG.yaml [--set a.b=value ...]        a new run (under mpirun: one rank of N)
//   ls_train --resume RUN_DIR [--set ...]          continue a run from its state/
//   ls_train --config-docs                          every config key, its default and meaning
//   ls_train --metric-docs                          the selection metrics of each task
#include <filesystem>

#include "core/base/error.h"
#include "core/eval/metric_table.h"
#include "core/run/config.h"
#include "core/run/run_directory.h"
#include "core/train/trainer.h"
#include "launch/cli.h"
#include "parallel/mpi.h"

namespace {

int train_main(ls::parallel::MpiRuntime& mpi, int argc, char** argv) {
  CLI::App app{
      "ls-train: label-supervised LoRA fine-tuning of LLaMA models (LS-LLaMA / LS-unLLaMA).\n"
      "Run under `mpirun -np N` for data parallelism, with parallel.tp > 1 for tensor "
      "parallelism;\n"
      "see docs/CONFIG.md for the config keys."};
  std::string config_path, resume_dir;
  std::vector<std::string> overrides;
  bool config_docs = false, metric_docs = false;
  app.add_option("config", config_path, "YAML run configuration")->check(CLI::ExistingFile);
  app.add_option("--set", overrides, "override a config key, e.g. --set train.lr=2e-4 (repeatable)")
      ->allow_extra_args(
          false);  // one KEY=VALUE per --set, so a config path after it stays positional
  app.add_option("--resume", resume_dir, "continue the run in this directory from its saved state")
      ->check(CLI::ExistingDirectory);
  app.add_flag("--config-docs", config_docs, "print the config keys as a Markdown table and exit");
  app.add_flag("--metric-docs", metric_docs,
               "print each task's selection metrics (train.metric) as Markdown and exit");
  if (!ls::cli::parse(app, argc, argv, mpi.rank() == 0)) return 0;
  if (config_docs || metric_docs) {
    ls::parallel::print0("{}",
                         config_docs ? ls::config_docs_markdown() : ls::metric_table_markdown());
    return 0;
  }
  if (config_path.empty() == resume_dir.empty())
    ls::fail("give a config file to start a run, or --resume RUN_DIR to continue one (not both)");

  ls::Config config;
  if (!resume_dir.empty()) {
    config = ls::Config::load(ls::RunDirectory(resume_dir).config().string(), overrides);
    config.output.dir = std::filesystem::absolute(resume_dir).lexically_normal().string();
  } else {
    config = ls::Config::load(config_path, overrides);
  }
  ls::install_stop_signal_handlers();
  auto outcome = ls::train(config, !resume_dir.empty(), mpi);
  return outcome.interrupted ? 130 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ls::parallel::run_mpi_main("ls_train", train_main, argc, argv);
}
