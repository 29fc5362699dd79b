// A trained run as a standalone Hugging Face model directory: the LoRA merged into the base
// weights, the head as `score`, the label names and problem type in config.json, the tokenizer
// files beside them. `AutoModelFor{Sequence,Token}Classification.from_pretrained(dir)` loads it
// with no PEFT and no ls-train code. What HF cannot express (bidirectional attention, mean/max
// pooling, regression target normalisation) is recorded in config.json's `ls_train` object and
// returned as warnings. ls_export is the command line for it.
#pragma once

#include <c10/core/ScalarType.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/run/trained_run.h"

namespace ls {

struct HfExportOptions {
  // The weights' dtype; none = the base checkpoint's. LoRA is merged in float32 and rounded once.
  std::optional<c10::ScalarType> dtype;
  // HF's save_pretrained default (5 GB): above it the weights are sharded as
  // model-0000i-of-0000n.safetensors with model.safetensors.index.json.
  int64_t max_shard_bytes = 5'000'000'000;
};

struct HfExportResult {
  c10::ScalarType dtype = c10::kFloat;
  int shards = 1;
  std::string architecture;           // e.g. LlamaForSequenceClassification
  std::vector<std::string> warnings;  // what stock HF will compute differently, one line each
};

// Writes the model into `out_dir.tmp` and renames it to `out_dir`, which must not exist or be an
// empty directory (a UserError naming it otherwise, before anything is written). On any failure
// the staged directory is removed and `out_dir` is left as it was.
HfExportResult export_hf_model(const TrainedRun& run, const std::filesystem::path& out_dir,
                               const HfExportOptions& options = {});

}  // namespace ls
