// Config -> run components (see run_setup.h).
#include "core/run/run_setup.h"

#include <fmt/ranges.h>
#include <torch/cuda.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/adapter/peft_adapter.h"
#include "core/base/crc32.h"
#include "core/base/error.h"
#include "core/model/dtype.h"
#include "core/model/llama_config.h"
#include "core/model/tp_projection.h"
#include "parallel/communicator.h"
#include "parallel/mpi.h"

namespace ls {

Placement resolve_placement(const Config& config, int local_rank, int local_size) {
  Placement p;
  bool use_cuda = config.model.device == DeviceChoice::kCuda ||
                  (config.model.device == DeviceChoice::kAuto && torch::cuda::is_available());
  p.device = parallel::pick_device(use_cuda, local_rank, local_size);
  p.dtype = resolve_dtype(config.model.dtype, p.device.is_cuda() ? c10::kBFloat16 : c10::kFloat);
  return p;
}

std::filesystem::path find_tokenizer(const Config& config) {
  namespace fs = std::filesystem;
  if (!config.model.tokenizer.empty()) return config.model.tokenizer;
  const fs::path dir = config.model.path;
  if (!fs::exists(dir)) fail("model.path: '{}' does not exist", dir.string());
  if (!fs::is_directory(dir))
    fail("model.path: '{}' is not a directory (an HF model directory is expected)", dir.string());
  for (const char* name : {"tokenizer.json", "tokenizer.model"})
    if (fs::exists(dir / name)) return dir / name;
  return {};
}

std::filesystem::path tokenizer_path(const Config& config) {
  if (auto found = find_tokenizer(config); !found.empty()) return found;
  const std::filesystem::path dir = config.model.path;
  fail(
      "model.path: '{}' has neither tokenizer.json nor tokenizer.model; set model.tokenizer to the "
      "tokenizer file",
      dir.string());
}

std::unique_ptr<data::Tokenizer> make_tokenizer(const Config& config) {
  return std::make_unique<data::Tokenizer>(
      tokenizer_path(config).string(),
      data::TokenizerOptions{.add_bos = true, .add_eos = config.data.add_eos});
}

std::string file_fingerprint(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) fail("{}: cannot read", file.string());
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return fmt::format("crc32:{:08x}:{}", crc32(bytes), bytes.size());
}

std::string base_model_fingerprint(const std::filesystem::path& model_dir) {
  namespace fs = std::filesystem;
  using nlohmann::json;
  // Up to `limit` bytes of `in` from `offset`.
  auto read = [](std::ifstream& in, uint64_t offset, uint64_t limit) {
    std::string bytes(limit, '\0');
    in.clear();
    in.seekg(static_cast<std::streamoff>(offset));
    in.read(bytes.data(), static_cast<std::streamsize>(limit));
    bytes.resize(static_cast<size_t>(std::max<std::streamsize>(in.gcount(), 0)));
    return bytes;
  };
  // config.json's content, not its formatting (nor the keys a resave stamps).
  json config = read_json_object(model_dir / "config.json");
  config.erase("transformers_version");
  config.erase("_name_or_path");
  std::string hashed = config.dump();
  std::vector<fs::path> shards;
  for (const auto& entry : fs::directory_iterator(model_dir))
    if (entry.path().extension() == ".safetensors") shards.push_back(entry.path());
  std::sort(shards.begin(), shards.end());
  // Every tensor, in name order whatever the file layout: its name, dtype and shape (the
  // safetensors header) and its first and middle 256 bytes, so a rescaled model differs too.
  std::map<std::string, std::string> tensors;
  for (const fs::path& shard : shards) {
    std::ifstream in(shard, std::ios::binary);
    if (!in) fail("{}: cannot read", shard.string());
    const std::string prefix = read(in, 0, 8);
    uint64_t length = 0;
    for (size_t i = prefix.size(); i-- > 0;)
      length = (length << 8) | static_cast<unsigned char>(prefix[i]);
    const uint64_t size = fs::file_size(shard);
    if (prefix.size() < 8 || length > size - 8)
      fail("{}: not a safetensors file (header length {})", shard.string(), length);
    json header;
    try {
      header = json::parse(read(in, 8, length));
    } catch (const json::exception& e) {
      fail("{}: unreadable safetensors header: {}", shard.string(), e.what());
    }
    for (const auto& [name, info] : header.items()) {
      if (name == "__metadata__") continue;
      const json offsets = info.is_object() ? info.value("data_offsets", json()) : json();
      if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
          !offsets[1].is_number_unsigned() || offsets[1] < offsets[0])
        fail("{}: tensor '{}' has no valid data_offsets in its header", shard.string(), name);
      const uint64_t begin = 8 + length + offsets[0].get<uint64_t>();
      const uint64_t end = 8 + length + offsets[1].get<uint64_t>();
      const uint64_t sample = std::min<uint64_t>(256, end - begin);
      tensors[name] = info.value("dtype", json("")).dump() + info.value("shape", json()).dump() +
                      read(in, begin, sample) + read(in, begin + (end - begin) / 2, sample);
    }
  }
  for (const auto& [name, described] : tensors) hashed += name + described;
  return fmt::format("crc32:{:08x}", crc32(hashed));
}

std::string resolve_pad_id(Config& config, const data::Tokenizer* tokenizer) {
  int& pad = config.data.pad_id;
  if (!tokenizer) {
    if (pad == kAutoPadId) pad = 0;
    return "";
  }
  const std::string file = tokenizer->path();
  if (pad == kAutoPadId) {
    pad = tokenizer->default_pad_id(config.data.add_eos);
    if (pad < 0)
      fail(
          "data.pad_id: auto found no pad token in {} (no pad_token, no special token); set "
          "data.pad_id to an id that no text encodes to",
          file);
    return "";
  }
  if (pad >= tokenizer->vocab_size())
    fail("data.pad_id: {} is outside the vocabulary of {} ({} tokens)", pad, file,
         tokenizer->vocab_size());
  const int fallback = tokenizer->default_pad_id(config.data.add_eos);
  const std::string instead = fallback >= 0
                                  ? fmt::format("data.pad_id: auto (here {}, '{}')", fallback,
                                                tokenizer->id_to_piece(fallback))
                                  : std::string("another data.pad_id");
  if (config.data.add_eos && pad == tokenizer->eos_id())
    fail(
        "data.pad_id: {} is the EOS id of {} and data.add_eos appends it to every example: HF's "
        "classifiers pool at the last token that is not padding, which would skip it; set {}",
        pad, file, instead);
  if (tokenizer->is_text_token(pad))
    return fmt::format(
        "warning: data.pad_id: {} is '{}', a token text encodes to; ls-train masks padding, but "
        "HF's classifiers pool at the last token that is not padding (ls_export and the adapter "
        "record {}); set {}",
        pad, tokenizer->id_to_piece(pad), hf_pad_token_id(config, tokenizer), instead);
  return "";
}

int hf_pad_token_id(const Config& config, const data::Tokenizer* tokenizer) {
  const int pad = config.data.pad_id == kAutoPadId ? 0 : config.data.pad_id;
  if (!tokenizer || pad >= tokenizer->vocab_size() || !tokenizer->is_text_token(pad)) return pad;
  const int fallback = tokenizer->default_pad_id(config.data.add_eos);
  return fallback >= 0 ? fallback : pad;
}

data::ReaderOptions reader_options(const Config& config, bool labeled) {
  const auto& d = config.data;
  data::ReaderOptions r;
  r.format = d.format;
  r.text_fields = {d.text_field};
  if (!d.text_pair_field.empty()) r.text_fields.push_back(d.text_pair_field);
  r.pair_separator = d.pair_separator;
  r.csv_quoting = d.csv_quoting;
  r.label_field = d.label_field;
  r.problem = config.task.problem_type;
  r.label_separator = d.label_separator;
  r.tokens_field = d.tokens_field;
  r.tags_field = d.tags_field;
  r.conll_tag_column = d.conll_tag_column;
  r.labeled = labeled;
  return r;
}

data::DatasetOptions dataset_options(const Config& config, bool labeled) {
  data::DatasetOptions options;
  options.task = config.task.type;
  options.reader = reader_options(config, labeled);
  options.max_length = config.data.max_length;
  options.label_all_subwords = config.data.label_all_subwords;
  const std::filesystem::path config_json =
      std::filesystem::path(config.model.path) / "config.json";
  if (std::filesystem::exists(config_json))
    options.vocab_size = load_llama_config(config_json).vocab_size;
  return options;
}

LlamaConfig check_model_dir(const Config& config) {
  namespace fs = std::filesystem;
  const fs::path dir = config.model.path;
  if (!fs::exists(dir)) fail("model.path: '{}' does not exist", dir.string());
  if (!fs::is_directory(dir))
    fail("model.path: '{}' is not a directory (an HF model directory is expected)", dir.string());
  if (!fs::exists(dir / "config.json"))
    fail("model.path: '{}' has no config.json (an HF model directory is expected)", dir.string());
  LlamaConfig model = load_llama_config(dir / "config.json");
  const int max_length = config.data.max_length;
  if (model.sliding_window && (max_length == 0 || max_length > *model.sliding_window))
    fail(
        "data.max_length: {} exceeds the sliding attention window of {} tokens in {} "
        "(ls-train attends over the whole sequence): set data.max_length to at most {}",
        max_length == 0 ? std::string("0 (no limit)") : std::to_string(max_length),
        *model.sliding_window, (dir / "config.json").string(), *model.sliding_window);
  return model;
}

bool needs_tokenizer(const Config& config, bool labeled) {
  const data::ReaderOptions options = reader_options(config, labeled);
  for (const std::string* split : {&config.data.train, &config.data.validation, &config.data.test})
    if (!split->empty() && std::filesystem::exists(*split) &&
        data::detect_format(*split, options) != data::DataFormat::kPretokenized)
      return true;
  return false;
}

data::CollateOptions collate_options(const Config& config) {
  if (config.data.pad_id == kAutoPadId)
    fail("data.pad_id: auto is resolved against the tokenizer first (resolve_pad_id)");
  data::CollateOptions collate;
  collate.pad_id = config.data.pad_id;
  collate.padding_side = config.data.padding_side;
  return collate;
}

EvalOptions eval_options(const Config& config, int64_t batch_size) {
  EvalOptions eval;
  eval.batch_size = batch_size;
  eval.collate = collate_options(config);
  eval.ner_mode = config.train.ner_mode;
  return eval;
}

ModelOptions model_options(const Config& config, const Placement& placement,
                           std::shared_ptr<parallel::Communicator> tp) {
  ModelOptions options;
  if (tp && tp->size() > 1)
    options.projection_factory = tensor_parallel_factory(
        load_llama_config(std::filesystem::path(config.model.path) / "config.json"), std::move(tp));
  options.device = placement.device;
  options.dtype = placement.dtype;
  options.attention =
      config.model.attention == AttentionMode::kCausal
          ? AttentionPolicy::causal()
          : AttentionPolicy::bidirectional_from(config.model.bidirectional_from_layer);
  options.attention.attend_to_padding = config.model.attend_to_padding;
  options.activation_checkpointing = config.model.activation_checkpointing;
  return options;
}

HeadOptions head_options(const Config& config, int num_labels, const LossOptions& loss) {
  HeadOptions head;
  head.task = config.task.type;
  head.problem = config.task.problem_type;
  head.num_labels = num_labels;
  head.loss = loss;
  head.threshold = config.task.threshold;
  head.pooling = config.task.pooling;
  head.dropout = config.task.head_dropout;
  return head;
}

LossOptions loss_options(const Config& config, const data::Dataset& train,
                         const data::LabelMap& labels) {
  LossOptions loss;
  loss.label_smoothing = config.task.label_smoothing;
  const auto problem = config.task.problem_type;
  const auto& weights = config.task.class_weights;
  if (weights.mode == ClassWeightsMode::kList) {
    if (static_cast<int>(weights.values.size()) != labels.size())
      fail(
          "task.class_weights: {} weights for {} labels ({}); give one per label, in label-map "
          "order",
          weights.values.size(), labels.size(), fmt::join(labels.names(), ", "));
    loss.class_weights = weights.values;
  } else if (weights.mode == ClassWeightsMode::kAuto) {
    const data::LabelCounts counts = data::count_labels(train);
    const double n = static_cast<double>(counts.total),
                 classes = static_cast<double>(labels.size());
    for (int64_t count : counts.per_class) {
      const double c =
          static_cast<double>(std::max<int64_t>(count, 1));  // absent classes: as if seen once
      // single-label: sklearn's "balanced" n / (C * count); multi-label: pos_weight = negatives /
      // positives
      loss.class_weights.push_back(problem == ProblemType::kMultiLabel
                                       ? (n - static_cast<double>(count)) / c
                                       : n / (classes * c));
    }
  }
  if (problem == ProblemType::kRegression && config.task.normalize_targets) {
    const data::TargetStats stats = data::target_stats(train);
    loss.target_mean = stats.mean;
    loss.target_std = stats.std > 0 ? stats.std : 1.0;
  }
  return loss;
}

void adopt_init_adapter(Config& config) {
  namespace fs = std::filesystem;
  if (config.lora.init_from.empty()) return;
  const fs::path dir = config.lora.init_from;
  const LoraOptions adapter = read_peft_adapter_config(dir / kAdapterConfigFile).lora;
  // A key set to another value than the adapter's is a conflict; an unset one takes its value.
  auto adopt = [&](const std::string& key, auto& field, const auto& value, std::string shown,
                   std::string ours) {
    const auto it = config.set_at.find(key);
    if (it != config.set_at.end() && !(field == value)) {
      const std::string at = it->second.ends_with(key) ? it->second : it->second + ": " + key;
      fail(
          "{}: {}, but lora.init_from's adapter ({}) has {}; drop the key or set it to the "
          "adapter's value",
          at, ours, dir.string(), shown);
    }
    field = value;
  };
  auto& l = config.lora;
  adopt("lora.r", l.r, static_cast<int>(adapter.r), fmt::format("r {}", adapter.r),
        fmt::format("{}", l.r));
  adopt("lora.alpha", l.alpha, adapter.alpha, fmt::format("lora_alpha {}", adapter.alpha),
        fmt::format("{}", l.alpha));
  adopt("lora.dropout", l.dropout, adapter.dropout, fmt::format("lora_dropout {}", adapter.dropout),
        fmt::format("{}", l.dropout));
  adopt("lora.rslora", l.rslora, adapter.use_rslora,
        fmt::format("use_rslora {}", adapter.use_rslora), fmt::format("{}", l.rslora));
  // PEFT's target_modules is a set: the same modules in another order are the same adapter.
  auto as_set = [](std::vector<std::string> names) {
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    return names;
  };
  if (!adapter.target_regex && as_set(l.targets) == as_set(adapter.targets))
    l.targets = adapter.targets;
  else if (!adapter.target_regex)
    adopt("lora.targets", l.targets, adapter.targets,
          fmt::format("target_modules [{}]", fmt::join(adapter.targets, ", ")),
          fmt::format("[{}]", fmt::join(l.targets, ", ")));
  // The multi-label threshold lives in head_config.json's ls_train object.
  const fs::path head_file = dir / kHeadConfigFile;
  if (!fs::exists(head_file)) return;
  const auto head = nlohmann::json::parse(std::ifstream(head_file), nullptr, false);
  if (head.is_discarded() || !head.is_object()) fail("{}: not a JSON object", head_file.string());
  const auto extra = head.find("ls_train");
  if (extra == head.end() || !extra->is_object()) return;
  if (const auto it = extra->find("threshold"); it != extra->end() && it->is_number()) {
    const double threshold = it->get<double>();
    adopt("task.threshold", config.task.threshold, threshold,
          fmt::format("threshold {}", threshold), fmt::format("{}", config.task.threshold));
  }
}

std::shared_ptr<LsLlama> load_model(const Config& config, const Placement& placement,
                                    int num_labels, const std::string& adapter_dir,
                                    LoadStats* stats, std::shared_ptr<parallel::Communicator> tp,
                                    const LossOptions& loss) {
  at::manual_seed(config.train.seed);
  auto model =
      LsLlama::from_pretrained(config.model.path, model_options(config, placement, std::move(tp)),
                               head_options(config, num_labels, loss), stats);
  if (placement.device.is_cuda()) {
    // Which attention kernel the GPU will run is decided by libtorch from dtype, shapes and mask;
    // say it once, so a slow math fallback is visible before the first step.
    const int batch =
        config.train.micro_batch_size > 0 ? config.train.micro_batch_size : config.train.batch_size;
    parallel::print0("{}\n",
                     model->model().describe_attention_backends(batch, config.data.max_length));
  }
  if (!adapter_dir.empty()) {
    load_adapter(*model, adapter_dir);
    if (model->head().num_labels() != num_labels)
      fail("{}: the adapter's head has {} labels, the task has {}", adapter_dir,
           model->head().num_labels(), num_labels);
    return model;
  }
  LoraOptions lora;
  lora.r = config.lora.r;
  lora.alpha = config.lora.alpha;
  lora.dropout = config.lora.dropout;
  lora.use_rslora = config.lora.rslora;
  lora.targets = config.lora.targets;
  model->add_lora(lora);
  return model;
}

}  // namespace ls
