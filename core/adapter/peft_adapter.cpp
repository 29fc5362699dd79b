// PEFT adapter_config.json (see peft_adapter.h).
#include "core/adapter/peft_adapter.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/base/atomic_file.h"
#include "core/base/error.h"
#include "core/base/shape_string.h"
#include "core/io/checkpoint.h"
#include "core/io/safetensors.h"

namespace ls {
namespace fs = std::filesystem;

using nlohmann::json;

json read_json_object(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) fail("{}: cannot open", file.string());
  std::stringstream text;
  text << in.rdbuf();
  auto root = json::parse(text.str(), nullptr, false);
  if (root.is_discarded() || !root.is_object()) fail("{}: not a JSON object", file.string());
  return root;
}

PeftAdapterConfig read_peft_adapter_config(const std::filesystem::path& config_json) {
  const auto file = config_json.string();
  const json root = read_json_object(config_json);
  auto get = [&](const char* key) -> const json* {
    const auto it = root.find(key);
    return it == root.end() || it->is_null() ? nullptr : &*it;
  };
  auto number = [&](const char* key, double fallback) {
    const auto* value = get(key);
    if (!value) return fallback;
    if (!value->is_number()) fail("{}: '{}' must be a number", file, key);
    return value->get<double>();
  };
  auto flag = [&](const char* key) {
    const auto* value = get(key);
    if (value && !value->is_boolean()) fail("{}: '{}' must be true or false", file, key);
    return value && value->get<bool>();
  };

  const auto* peft_type = get("peft_type");
  if (!peft_type || !peft_type->is_string()) fail("{}: missing key 'peft_type'", file);
  if (*peft_type != "LORA")
    fail("{}: 'peft_type' is {}; ls-train loads LORA adapters", file, peft_type->dump());

  PeftAdapterConfig config;
  const auto* r = get("r");
  if (!r) fail("{}: missing key 'r'", file);
  if (!r->is_number_integer()) fail("{}: 'r' must be an integer", file);
  config.lora.r = r->get<int64_t>();
  config.lora.alpha = number("lora_alpha", 8.0);
  config.lora.dropout = number("lora_dropout", 0.0);
  config.lora.use_rslora = flag("use_rslora");

  const auto* targets = get("target_modules");
  if (!targets) fail("{}: missing key 'target_modules'", file);
  if (targets->is_string()) {
    if (*targets == "all-linear")
      config.lora.targets = {"all-linear"};
    else
      config.lora.target_regex = targets->get<std::string>();
  } else if (targets->is_array()) {
    config.lora.targets.clear();
    for (const auto& target : *targets) {
      if (!target.is_string()) fail("{}: 'target_modules' must list module names", file);
      config.lora.targets.push_back(target.get<std::string>());
    }
  } else {
    fail("{}: 'target_modules' must be a list of module names or a regex string", file);
  }
  if (const auto* layers = get("layers_to_transform")) {
    if (layers->is_number_integer())
      config.lora.layers = {layers->get<int64_t>()};
    else if (layers->is_array() && std::all_of(layers->begin(), layers->end(),
                                               [](const json& v) { return v.is_number_integer(); }))
      config.lora.layers = layers->get<std::vector<int64_t>>();
    else
      fail("{}: 'layers_to_transform' must be an integer or a list of integers", file);
  }

  // What ls-train does not implement is refused rather than silently computed differently.
  if (flag("use_dora")) fail("{}: 'use_dora' is true; DoRA adapters are not supported", file);
  if (flag("fan_in_fan_out"))
    fail("{}: 'fan_in_fan_out' is true; LLaMA projections are not Conv1D", file);
  if (const auto* bias = get("bias"); bias && *bias != "none")
    fail("{}: 'bias' is {}; only \"none\" is supported", file, bias->dump());
  for (const char* key : {"rank_pattern", "alpha_pattern"})
    if (const auto* pattern = get(key); pattern && !pattern->empty())
      fail("{}: '{}' is not supported (one r and alpha for every module)", file, key);

  if (const auto* task = get("task_type"); task && task->is_string()) {
    if (*task == "SEQ_CLS")
      config.task = TaskType::kSequence;
    else if (*task == "TOKEN_CLS")
      config.task = TaskType::kToken;
  }
  if (const auto* modules = get("modules_to_save"); modules && modules->is_array())
    for (const auto& module : *modules)
      if (module.is_string()) config.modules_to_save.push_back(module.get<std::string>());
  config.lora.validate(file);
  return config;
}

std::string peft_adapter_config_json(const LoraOptions& lora, TaskType task,
                                     const std::string& base_model) {
  json targets;
  if (lora.target_regex) {
    targets = *lora.target_regex;
  } else if (lora.targets == std::vector<std::string>{"all-linear"}) {
    targets = "all-linear";
  } else {
    auto sorted = lora.targets;
    std::sort(sorted.begin(), sorted.end());
    targets = sorted;
  }
  // The fields PEFT's LoraConfig needs to rebuild the same adapter; the rest take its defaults.
  const json config = {
      {"peft_type", "LORA"},
      {"task_type", task == TaskType::kSequence ? "SEQ_CLS" : "TOKEN_CLS"},
      {"base_model_name_or_path", base_model.empty() ? json(nullptr) : json(base_model)},
      {"r", lora.r},
      {"lora_alpha", lora.alpha},
      {"lora_dropout", lora.dropout},
      {"use_rslora", lora.use_rslora},
      {"target_modules", targets},
      {"layers_to_transform", lora.layers.empty() ? json(nullptr) : json(lora.layers)},
      {"bias", "none"},
      {"fan_in_fan_out", false},
      {"use_dora", false},
      {"init_lora_weights", true},
      {"inference_mode", true},
      {"modules_to_save", {"score"}},
      {"rank_pattern", json::object()},
      {"alpha_pattern", json::object()},
  };
  return config.dump(2) + "\n";
}

std::string head_config_json(const HeadOptions& head, const AdapterDescription* description) {
  json config = {
      {"num_labels", head.num_labels},
      {"problem_type", hf_problem_type(head.problem)},
      {"ls_train",
       {{"task", std::string(enum_name(head.task))},
        {"problem_type", std::string(enum_name(head.problem))},
        {"pooling", std::string(enum_name(head.pooling))},
        {"threshold", head.threshold},
        {"target_mean", head.loss.target_mean},
        {"target_std", head.loss.target_std},
        {"class_weights", head.loss.class_weights},
        {"label_smoothing", head.loss.label_smoothing}}},
  };
  if (description) {
    if (!description->labels.empty()) {
      json id2label = json::object(), label2id = json::object();
      for (size_t i = 0; i < description->labels.size(); ++i) {
        id2label[std::to_string(i)] = description->labels[i];
        label2id[description->labels[i]] = i;
      }
      config["id2label"] = id2label;
      config["label2id"] = label2id;
    }
    if (description->pad_token_id) config["pad_token_id"] = *description->pad_token_id;
    if (!description->run_json.empty())
      config["ls_train"]["run"] = json::parse(description->run_json);
    if (!description->tokenizer_fingerprint.empty())
      config["ls_train"]["tokenizer_fingerprint"] = description->tokenizer_fingerprint;
  }
  return config.dump(2) + "\n";
}

void read_head_config(const std::filesystem::path& file, HeadOptions& head, bool objective) {
  const json root = read_json_object(file);
  if (const auto it = root.find("problem_type"); it != root.end() && it->is_string()) {
    const auto problem =
        parse_enum<ProblemType>(it->get<std::string>(), file.string() + ": problem_type");
    if (problem != head.problem)
      fail("{}: the adapter was trained for {} but the model was built for {} (task.problem_type)",
           file.string(), enum_name(problem), enum_name(head.problem));
  }
  const auto extra = root.find("ls_train");
  if (extra == root.end() || !extra->is_object()) return;
  auto number = [&](const char* key, double& into) {
    const auto it = extra->find(key);
    if (it == extra->end() || it->is_null()) return;
    if (!it->is_number()) fail("{}: ls_train.{} must be a number", file.string(), key);
    into = it->get<double>();
  };
  number("threshold", head.threshold);
  number("target_mean", head.loss.target_mean);
  number("target_std", head.loss.target_std);
  if (!objective) return;
  number("label_smoothing", head.loss.label_smoothing);
  if (const auto it = extra->find("class_weights"); it != extra->end() && it->is_array()) {
    head.loss.class_weights.clear();
    for (const auto& w : *it) {
      if (!w.is_number()) fail("{}: ls_train.class_weights must hold numbers", file.string());
      head.loss.class_weights.push_back(w.get<double>());
    }
  }
}

void load_adapter(LsLlama& model, const fs::path& adapter_dir) {
  const auto adapter = read_peft_adapter_config(adapter_dir / kAdapterConfigFile);
  const auto weights_file = adapter_dir / kAdapterWeightsFile;
  const auto checkpoint = Checkpoint::open_file(weights_file);
  if (adapter.task && *adapter.task != model.head_options().task)
    fail("{}: task_type is for {} classification but the model was built for {}",
         (adapter_dir / kAdapterConfigFile).string(), enum_name(*adapter.task),
         enum_name(model.head_options().task));

  // The head: its label count and bias come from the saved tensors.
  const auto head_weight = std::string(kPeftPrefix) + "score.weight";
  const auto& shape = checkpoint.file_of(head_weight).info(head_weight).shape;
  if (shape.size() != 2 || shape[1] != model.config().hidden_size)
    fail("{}: tensor '{}' has shape {} but the model's hidden size is {}", weights_file.string(),
         head_weight, shape_string(shape), model.config().hidden_size);
  auto head = model.head_options();
  if (fs::exists(adapter_dir / kHeadConfigFile))
    read_head_config(adapter_dir / kHeadConfigFile, head);
  head.num_labels = shape[0];
  if (head.problem == ProblemType::kRegression && head.num_labels != 1)
    fail("{}: tensor '{}' has {} outputs but a regression head has one", weights_file.string(),
         head_weight, head.num_labels);
  head.bias = checkpoint.contains(std::string(kPeftPrefix) + "score.bias");
  model.set_head(head);

  model.add_lora(adapter.lora);
  for (const auto& ref : model.model().projections())
    if (ref.projection->has_lora())
      ref.projection->load_lora(checkpoint, std::string(kPeftPrefix) + "model." + ref.path);
  for (const auto& item : model.head().named_parameters())
    checkpoint.read_into(std::string(kPeftPrefix) + "score." + item.key(), item.value());
}

void save_adapter(const LsLlama& model, const fs::path& adapter_dir, bool write,
                  const AdapterDescription* description) {
  if (!model.lora()) fail("{}: this model has no LoRA adapter to save", adapter_dir.string());
  const auto unsharded = model.unsharded_trainable_parameters();
  if (!write) return;
  std::error_code ec;
  fs::create_directories(adapter_dir, ec);
  if (ec) fail("{}: cannot create directory: {}", adapter_dir.string(), ec.message());
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (auto& [name, tensor] : unsharded)
    tensors.emplace_back(LsLlama::peft_name(name), tensor.to(at::kFloat));
  write_safetensors(adapter_dir / kAdapterWeightsFile, tensors, {{"format", "pt"}});
  write_file_atomic(adapter_dir / kAdapterConfigFile,
                    peft_adapter_config_json(*model.lora(), model.head_options().task,
                                             description ? description->base_model : ""));
  write_file_atomic(adapter_dir / kHeadConfigFile,
                    head_config_json(model.head_options(), description));
}

}  // namespace ls
