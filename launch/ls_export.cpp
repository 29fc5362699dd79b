// ls_export: a trained run as a standalone Hugging Face model directory (LoRA merged, head as
// `score`, labels in config.json, tokenizer files), loadable with plain transformers.
//   ls_export RUN_DIR OUT_DIR [--adapter best|last|DIR] [--dtype auto|f32|bf16|f16]
//             [--model BASE_DIR] [--max-shard-bytes N]
// RUN_DIR may also be a self-describing adapter directory (see ls_predict). Writes OUT_DIR.tmp and
// renames it; an existing non-empty OUT_DIR is refused. What stock HF cannot reproduce
// (bidirectional attention, mean/max pooling, target normalisation) is warned about on stderr.
#include <fmt/ranges.h>

#include <filesystem>

#include "core/base/error.h"
#include "core/infer/hf_export.h"
#include "core/model/dtype.h"
#include "core/run/trained_run.h"
#include "launch/cli.h"
#include "parallel/mpi.h"

namespace fs = std::filesystem;

namespace {

int export_main(ls::parallel::MpiRuntime& mpi, int argc, char** argv) {
  CLI::App app{
      "Export a trained ls-train run as a Hugging Face model directory: the LoRA merged into the "
      "base weights, the head as score, labels and problem type in config.json, the tokenizer."};
  ls::cli::TrainedRunOptions trained;
  std::string out_dir, dtype = "auto";
  int64_t max_shard_bytes = ls::HfExportOptions{}.max_shard_bytes;
  ls::cli::add_trained_run_options(app, trained);
  app.add_option("out", out_dir, "the HF model directory to write (must not exist, or be empty)")
      ->required();
  app.add_option("--dtype", dtype, "weights' dtype: auto (the base model's), f32, bf16 or f16");
  app.add_option("--max-shard-bytes", max_shard_bytes,
                 "shard the weights above this size, as save_pretrained does (default 5 GB)");
  if (!ls::cli::parse(app, argc, argv, mpi.rank() == 0)) return 0;
  if (mpi.size() > 1) ls::fail("ls_export runs as one process; start it without mpirun");
  ls::HfExportOptions options;
  const auto dtype_choice = ls::try_parse_enum<ls::DtypeChoice>(dtype, ls::Aliases::kReject);
  if (!dtype_choice)
    ls::fail("--dtype: '{}' is not one of {}", dtype,
             fmt::join(ls::enum_choices<ls::DtypeChoice>(), ", "));
  if (*dtype_choice != ls::DtypeChoice::kAuto)
    options.dtype = ls::resolve_dtype(*dtype_choice, c10::kFloat);
  options.max_shard_bytes = max_shard_bytes;
  const ls::TrainedRun run = ls::open_trained_run(trained.run, trained.adapter, trained.base_model);
  const auto result = ls::export_hf_model(run, out_dir, options);
  for (const auto& warning : result.warnings)
    fmt::print(stderr, "ls_export: warning: {}\n", warning);
  fmt::print("{} ({}, {}, {} shard{}) from {} -> {}\n", result.architecture,
             ls::dtype_name(result.dtype),
             run.labels.size() == 1 ? "1 output" : fmt::format("{} labels", run.labels.size()),
             result.shards, result.shards == 1 ? "" : "s", run.adapter_dir.string(), out_dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ls::parallel::run_mpi_main("ls_export", export_main, argc, argv);
}
