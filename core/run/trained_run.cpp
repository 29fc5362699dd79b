// Run directory or self-describing adapter -> what prediction needs (see trained_run.h).
#include "core/run/trained_run.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/base/error.h"
#include "core/run/run_directory.h"
#include "core/run/run_setup.h"

namespace ls {
namespace fs = std::filesystem;
using nlohmann::json;

AdapterDescription describe_run(const Config& config, const data::LabelMap& labels,
                                int pad_token_id) {
  // The tokenizer the run read with, resolved; a run on pre-tokenized data may have had none, and
  // then none is recorded.
  Config described = config;
  described.model.tokenizer = find_tokenizer(config).string();
  json run = config_record(described, kPrediction);
  if (described.model.tokenizer.empty()) run["model"].erase("tokenizer");
  AdapterDescription description;
  description.base_model = config.model.path;
  description.labels = labels.names();
  description.pad_token_id = pad_token_id;
  description.run_json = run.dump();
  if (!described.model.tokenizer.empty())
    description.tokenizer_fingerprint = file_fingerprint(described.model.tokenizer);
  return description;
}

namespace {

// The base model of an adapter directory: the override, else base_model_name_or_path when it is
// an existing directory.
std::string adapter_base_model(const fs::path& adapter_dir, const std::string& base_model) {
  if (!base_model.empty()) {
    if (!fs::is_directory(base_model))
      fail("{}: the base model directory does not exist", base_model);
    return fs::absolute(base_model).lexically_normal().string();
  }
  const auto config_file = adapter_dir / kAdapterConfigFile;
  const auto config = read_json_object(config_file);
  const auto it = config.find("base_model_name_or_path");
  if (it == config.end() || !it->is_string())
    fail(
        "{}: base_model_name_or_path is not set; give the base model directory (ls_predict "
        "--model)",
        config_file.string());
  const std::string named = it->get<std::string>();
  if (!fs::is_directory(named))
    fail(
        "{}: base_model_name_or_path '{}' is not an existing directory; give the base model "
        "directory (ls_predict --model)",
        config_file.string(), named);
  return named;
}

TrainedRun open_adapter_directory(const fs::path& adapter_dir, const std::string& base_model,
                                  const std::vector<std::string>& overrides) {
  const auto head_file = adapter_dir / kHeadConfigFile;
  if (!fs::exists(head_file))
    fail("{}: missing; this adapter does not describe its run, use its run directory",
         head_file.string());
  const auto head = read_json_object(head_file);
  const auto extra = head.find("ls_train");
  const auto id2label = head.find("id2label");
  if (extra == head.end() || !extra->is_object() || !extra->contains("run") ||
      !(*extra)["run"].is_object() || id2label == head.end() || !id2label->is_object())
    fail(
        "{}: no id2label or ls_train.run (an adapter saved before adapters described their run); "
        "use its run directory",
        head_file.string());

  std::vector<std::string> names(id2label->size());
  for (const auto& [id, name] : id2label->items()) {
    size_t index = 0;
    try {
      index = std::stoul(id);
    } catch (const std::exception&) {
      index = names.size();
    }
    if (index >= names.size() || !name.is_string() || !names[index].empty())
      fail("{}: id2label must map the ids 0..{} to label names", head_file.string(),
           names.size() - 1);
    names[index] = name.get<std::string>();
  }

  json run = (*extra)["run"];
  const std::string base = adapter_base_model(adapter_dir, base_model);
  run["model"]["path"] = base;
  run["task"]["labels"] = names;
  // The tokenizer: the recorded file, else (the adapter moved to another machine) the file of
  // that name in the base directory, with a warning; check_tokenizer compares fingerprints.
  if (auto& tokenizer = run["model"]["tokenizer"]; tokenizer.is_string()) {
    const fs::path recorded = tokenizer.get<std::string>();
    const fs::path in_base = fs::path(base) / recorded.filename();
    if (!fs::exists(recorded)) {
      if (!fs::exists(in_base))
        fail("{}: ls_train.run.model.tokenizer: neither {} nor {} exists", head_file.string(),
             recorded.string(), in_base.string());
      fmt::print(stderr, "warning: {}: the run's tokenizer {} is not here; using {}\n",
                 head_file.string(), recorded.string(), in_base.string());
      tokenizer = in_base.string();
    }
  }
  TrainedRun trained{Config::parse(run.dump(), head_file.string(), overrides),
                     data::LabelMap(names),
                     adapter_dir,
                     {}};
  return trained;
}

// The tokenizer a run will read must be the one its adapter recorded (head_config.json's
// ls_train.tokenizer_fingerprint; adapters saved before it was recorded are not checked).
void check_tokenizer(const TrainedRun& trained) {
  const fs::path head_file = trained.adapter_dir / kHeadConfigFile;
  if (!fs::exists(head_file)) return;
  const json head = read_json_object(head_file);
  const auto extra = head.find("ls_train");
  if (extra == head.end() || !extra->is_object() || !extra->contains("tokenizer_fingerprint"))
    return;
  const json& fingerprint = (*extra)["tokenizer_fingerprint"];
  if (!fingerprint.is_string())
    fail("{}: ls_train.tokenizer_fingerprint must be a string (\"crc32:...\"), found {}",
         head_file.string(), fingerprint.type_name());
  const std::string recorded = fingerprint.get<std::string>();
  const fs::path tokenizer = find_tokenizer(trained.config);
  std::string recorded_file = "the run's tokenizer";
  if (const auto run = extra->find("run"); run != extra->end() && run->is_object()) {
    const json model = run->value("model", json::object());
    if (model.is_object() && model.value("tokenizer", json()).is_string())
      recorded_file = model["tokenizer"].get<std::string>();
  }
  if (tokenizer.empty())
    fail("{}: the run read text with {}, and no tokenizer is here (model.tokenizer)",
         head_file.string(), recorded_file);
  const std::string found = file_fingerprint(tokenizer);
  if (found != recorded)
    fail(
        "{}: not the tokenizer this adapter was trained with ({}, fingerprint {}; this file: {}); "
        "give the run's tokenizer (--set model.tokenizer=FILE)",
        tokenizer.string(), recorded_file, recorded, found);
}

}  // namespace

TrainedRun open_trained_run(const fs::path& path, const std::string& adapter,
                            const std::string& base_model,
                            const std::vector<std::string>& overrides) {
  if (!fs::exists(path)) fail("{}: does not exist", path.string());
  if (RunDirectory::is_run(path)) {
    const RunDirectory dir(path);
    auto all = overrides;
    if (!base_model.empty()) {
      if (!fs::is_directory(base_model))
        fail("{}: the base model directory does not exist", base_model);
      all.push_back("model.path=" + base_model);
    }
    TrainedRun trained{Config::load(dir.config().string(), all),
                       data::LabelMap::load(dir.labels().string()), dir.adapter(adapter), path};
    if (!fs::exists(trained.adapter_dir / kAdapterConfigFile))
      fail("{}: no PEFT adapter here (adapter_config.json missing)", trained.adapter_dir.string());
    check_tokenizer(trained);
    return trained;
  }
  if (fs::exists(path / kAdapterConfigFile)) {
    if (adapter != "best")
      fail("{}: an adapter directory; the adapter choice '{}' applies to run directories",
           path.string(), adapter);
    TrainedRun trained = open_adapter_directory(path, base_model, overrides);
    check_tokenizer(trained);
    return trained;
  }
  fail(
      "{}: neither an ls-train run directory (no config.yaml) nor an adapter directory (no "
      "adapter_config.json)",
      path.string());
}

}  // namespace ls
