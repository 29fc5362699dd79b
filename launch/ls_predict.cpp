// ls_predict: a trained run's adapter (+ head) on new data.
//   ls_predict RUN_DIR DATA_FILE [--out PREDICTIONS.jsonl] [--adapter best|last|DIR]
//   ls_predict ADAPTER_DIR DATA_FILE [--model BASE_DIR] [--out PREDICTIONS.jsonl]
// Reads RUN_DIR/config.yaml (model, task, data options) and labels.json, or what an adapter
// directory's head_config.json records of its run (open_trained_run), and the adapter's
// head_config.json (threshold, target normalisation, loss settings); writes one JSON line per
// example (label and probabilities; a label set with a probability per label for multi-label; a
// number for regression; per-word tags for NER) and, when the file has labels, prints the metrics
// the trainer reports.
#include <CLI/CLI.hpp>
#include <filesystem>

#include "core/adapter/peft_adapter.h"
#include "core/base/atomic_file.h"
#include "core/base/error.h"
#include "core/io/safetensors.h"
#include "core/train/config.h"
#include "core/train/evaluator.h"
#include "core/train/run_setup.h"
#include "core/train/trained_run.h"
#include "data/reader.h"
#include "parallel/communicator.h"
#include "parallel/mpi.h"

namespace fs = std::filesystem;

namespace {

int predict_main(ls::parallel::MpiRuntime& mpi, int argc, char** argv) {
  CLI::App app{
      "Predict with a trained ls-train run: labels and probabilities (sequence tasks; label sets "
      "for multi-label, numbers for regression) or per-word tags (NER)."};
  std::string run_dir, data_file, out, adapter = "best", device = "", base_model;
  int batch_size = 0;
  app.add_option("run", run_dir,
                 "run directory written by ls_train, or an adapter directory (with --model or "
                 "its recorded base model)")
      ->required()
      ->check(CLI::ExistingDirectory);
  app.add_option("data", data_file,
                 "file to predict (same format options as training; labels optional)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--out", out, "predictions JSONL (default: RUN/predictions_<file stem>.jsonl)");
  app.add_option("--adapter", adapter,
                 "best (adapter/), last (adapter_last/), or an adapter directory");
  app.add_option("--batch-size", batch_size,
                 "examples per forward pass (default: train.micro_batch_size or batch_size)");
  app.add_option("--model", base_model,
                 "base model directory (default: the run's model.path, or the adapter's "
                 "base_model_name_or_path)");
  app.add_option("--device", device, "cpu or cuda (default: the run's model.device)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (mpi.rank() == 0) app.exit(e);
    return e.get_exit_code() == 0 ? 0 : 2;
  }
  const fs::path run(run_dir);
  std::vector<std::string> overrides;
  if (!device.empty()) overrides.push_back("model.device=" + device);
  const ls::TrainedRun trained = ls::open_trained_run(run, adapter, base_model, overrides);
  const ls::Config& config = trained.config;
  const fs::path& adapter_dir = trained.adapter_dir;
  const auto& labels = trained.labels;
  auto tokenizer = ls::make_tokenizer(config);
  const auto options = ls::dataset_options(config, /*labeled=*/false);
  auto raw = ls::data::read_raw_dataset(data_file, options.task, options.reader);
  auto dataset = ls::data::build_dataset(raw, *tokenizer, labels, options);
  bool labeled = false;
  for (const auto& record : raw.records) labeled |= record.has_label;

  const auto placement = ls::resolve_placement(config, mpi.local_rank(), mpi.local_size());
  // The loss settings the run trained with (class weights resolved from its training split), so
  // the loss reported here is the trainer's.
  ls::HeadOptions head = ls::head_options(config, labels.size());
  if (fs::exists(adapter_dir / ls::kHeadConfigFile))
    ls::read_head_config(adapter_dir / ls::kHeadConfigFile, head, true);
  auto model = ls::load_model(config, placement, labels.size(), adapter_dir.string(), nullptr,
                              nullptr, head.loss);
  ls::EvalOptions eval = ls::eval_options(
      config, batch_size > 0 ? batch_size
                             : (config.train.micro_batch_size > 0 ? config.train.micro_batch_size
                                                                  : config.train.batch_size));
  eval.labeled = labeled;
  auto world = ls::parallel::make_world_communicator(placement.device);
  auto result = ls::evaluate(*model, dataset, labels, eval, world, placement.device);

  if (mpi.rank() == 0) {
    fs::path out_path =
        out.empty() ? run / ("predictions_" + fs::path(data_file).stem().string() + ".jsonl")
                    : fs::path(out);
    ls::write_file_atomic(out_path, ls::predictions_jsonl(result, raw, dataset, labels));
    ls::parallel::print0("{}: {} predictions from {} -> {}\n", data_file, result.examples,
                         adapter_dir.string(), out_path.string());
    if (labeled) {
      std::string line;
      for (const auto& [name, value] : result.metrics)
        line += fmt::format("{}{} {:.4f}", line.empty() ? "" : ", ", name, value);
      ls::parallel::print0("metrics: {}\n", line);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ls::parallel::run_mpi_main("ls_predict", predict_main, argc, argv);
}
