// A trained model as prediction and export see it: a run directory (config.yaml, labels.json and
// its adapters) or a self-describing adapter directory plus a base model. One function resolves
// either into the config, label map and adapter directory that ls_predict, ls_export and a
// serving process need; the trainer writes the description (describe_run) into every adapter.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/adapter/peft_adapter.h"
#include "core/run/config.h"
#include "data/label_map.h"

namespace ls {

// What a run's adapters record so they can be used without the run directory: the base model
// (model.path), the label names, the pad_token_id HF should pool with (hf_pad_token_id in
// run_setup.h), and the config's prediction record (config.h's
// kPrediction: attention, the tokenizer file, task, data reading and batching options) as the
// JSON object that becomes head_config.json's `ls_train.run`.
AdapterDescription describe_run(const Config& config, const data::LabelMap& labels,
                                int pad_token_id);

struct TrainedRun {
  Config config;  // model.path is the base model to load the adapter into
  data::LabelMap labels;
  std::filesystem::path adapter_dir;
  std::filesystem::path run_dir;  // empty when opened from an adapter directory
};

// `path` is a run directory (has config.yaml) or an adapter directory (has adapter_config.json).
// Run directory: its config.yaml (with `overrides`, "key=value" as --set takes them) and
// labels.json, and the adapter `adapter` names (best | last | a directory, RunDirectory::adapter).
// Adapter directory: the run described by its head_config.json; `adapter` must be "best" (the
// default: there is only this one). The base model is `base_model` when given (for a run
// directory too), else the adapter's base_model_name_or_path when that is an existing directory;
// the tokenizer is the recorded file, else (with a warning on stderr) the file of that name in the
// base directory. Either way, the tokenizer must be the one the adapter recorded (head_config.json
// ls_train.tokenizer_fingerprint): another is a UserError naming both files.
// Every failure is a UserError naming the path, file or key (an adapter saved before adapters
// described their run names its missing keys and asks for the run directory).
TrainedRun open_trained_run(const std::filesystem::path& path, const std::string& adapter = "best",
                            const std::string& base_model = "",
                            const std::vector<std::string>& overrides = {});

}  // namespace ls
