// ls_predict: a trained run's adapter (+ head) on new data.
//   ls_predict RUN_DIR DATA_FILE [--out PREDICTIONS.jsonl] [--adapter best|last|DIR]
//   ls_predict ADAPTER_DIR DATA_FILE [--model BASE_DIR] [--out PREDICTIONS.jsonl]
//   [--set key=value ...]: the run's config keys as this file needs them (data.text_field, ...)
// DATA_FILE: JSONL, CSV/TSV or CoNLL as in training, or plain text one example per line (.txt for
// a sequence run, data.format=lines); a token run's JSONL may give "text" instead of word lists.
// The run is opened by open_trained_run (RUN_DIR/config.yaml and labels.json, or what an adapter
// directory's head_config.json records of its run) and loaded by ls::Predictor
// (core/infer/predictor.h), as ls_serve loads it, with the adapter's head_config.json (threshold,
// target normalisation, loss settings); writes one JSON line per example (label and
// probabilities; a label set with a probability per label for multi-label; a number for regression;
// per-word tags for NER) and, when the file has labels, prints the metrics the trainer reports.
#include <filesystem>

#include "core/base/atomic_file.h"
#include "core/base/error.h"
#include "core/infer/predictor.h"
#include "launch/cli.h"
#include "parallel/communicator.h"
#include "parallel/mpi.h"

namespace fs = std::filesystem;

namespace {

int predict_main(ls::parallel::MpiRuntime& mpi, int argc, char** argv) {
  CLI::App app{
      "Predict with a trained ls-train run: labels and probabilities (sequence tasks; label sets "
      "for multi-label, numbers for regression) or per-word tags (NER)."};
  ls::cli::TrainedRunOptions trained;
  std::string data_file, out, device = "";
  std::vector<std::string> sets;
  int batch_size = 0;
  ls::cli::add_trained_run_options(app, trained);
  app.add_option("data", data_file,
                 "file to predict (same format options as training; labels optional)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--out", out, "predictions JSONL (default: RUN/predictions_<file stem>.jsonl)");
  app.add_option("--batch-size", batch_size,
                 "examples per forward pass (default: train.micro_batch_size or batch_size)");
  app.add_option("--device", device, "cpu or cuda (default: the run's model.device)");
  app.add_option("--set", sets,
                 "override a config key of the run for reading this file, e.g. --set "
                 "data.text_field=sentence or data.format=lines (repeatable)");
  if (!ls::cli::parse(app, argc, argv, mpi.rank() == 0)) return 0;
  const fs::path run(trained.run);
  std::vector<std::string> overrides = sets;
  if (!device.empty()) overrides.push_back("model.device=" + device);
  ls::TrainedRun source = ls::open_trained_run(run, trained.adapter, trained.base_model, overrides);
  const fs::path adapter_dir = source.adapter_dir;
  const auto placement = ls::resolve_placement(source.config, mpi.local_rank(), mpi.local_size());
  const auto& train = source.config.train;
  const int64_t examples_per_pass =
      batch_size > 0 ? batch_size
                     : (train.micro_batch_size > 0 ? train.micro_batch_size : train.batch_size);
  ls::Predictor predictor(std::move(source), placement);
  auto world = ls::parallel::make_world_communicator(placement.device);
  const ls::FilePredictions predictions =
      predictor.predict_file(data_file, examples_per_pass, world);
  const ls::EvalResult& result = predictions.result;
  const bool labeled = predictions.labeled;

  if (mpi.rank() == 0) {
    fs::path out_path =
        out.empty() ? run / ("predictions_" + fs::path(data_file).stem().string() + ".jsonl")
                    : fs::path(out);
    ls::write_file_atomic(out_path, predictor.jsonl(predictions));
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
