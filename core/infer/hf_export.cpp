// Trained run -> standalone HF model directory (see hf_export.h).
#include "core/infer/hf_export.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>

#include "core/base/atomic_file.h"
#include "core/base/error.h"
#include "core/io/checkpoint.h"
#include "core/io/safetensors.h"
#include "core/model/dtype.h"
#include "core/model/llama_config.h"
#include "core/model/lora.h"
#include "core/run/run_setup.h"
#include "data/tokenizer/tokenizer.h"

namespace ls {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string hf_dtype_name(c10::ScalarType dtype) {
  switch (dtype) {
    case c10::kFloat:
      return "float32";
    case c10::kBFloat16:
      return "bfloat16";
    case c10::kHalf:
      return "float16";
    default:
      fail("dtype {} cannot be exported (f32, bf16 or f16)", dtype_name(dtype));
  }
}

// One tensor of the exported checkpoint: a base tensor (with its LoRA merged in) or a head tensor.
struct PlannedTensor {
  std::string name;
  std::string source;  // name in its checkpoint
  bool from_adapter = false;
  std::string lora_a, lora_b;  // adapter names when the adapter changes this weight
  int64_t bytes = 0;
};

at::Tensor materialize(const PlannedTensor& t, const Checkpoint& base, const Checkpoint& adapter,
                       double scaling, c10::ScalarType dtype) {
  if (t.from_adapter) return adapter.view(t.source).to(dtype);
  const at::Tensor weight = base.view(t.source);
  if (t.lora_a.empty()) return weight.to(dtype);
  at::Tensor merged = weight.to(at::kFloat, /*non_blocking=*/false, /*copy=*/true);
  merge_lora_delta(merged, adapter.view(t.lora_a).to(at::kFloat),
                   adapter.view(t.lora_b).to(at::kFloat), scaling, +1);
  return merged.to(dtype);
}

// A tokenizer.json whose post-processor also appends EOS, as the run's data.add_eos did (HF's
// fast tokenizers take BOS and EOS from the post-processor alone): a TemplateProcessing "$A EOS"
// after the file's own post-processor, unless that already ends in EOS.
void append_eos_to_post_processor(const fs::path& file, const data::Tokenizer& tokenizer) {
  json tj = read_json_object(file);
  const std::string eos = tokenizer.id_to_piece(tokenizer.eos_id());
  const json token = {{"SpecialToken", {{"id", eos}, {"type_id", 0}}}};
  auto sequence = [](const char* id, int type_id) {
    return json{{"Sequence", {{"id", id}, {"type_id", type_id}}}};
  };
  const json append_eos = {
      {"type", "TemplateProcessing"},
      {"single", {sequence("A", 0), token}},
      {"pair", {sequence("A", 0), sequence("B", 1), token}},
      {"special_tokens", {{eos, {{"id", eos}, {"ids", {tokenizer.eos_id()}}, {"tokens", {eos}}}}}}};
  json& post = tj["post_processor"];
  if (post.is_null())
    post = append_eos;
  else if (post.value("type", "") == "Sequence" && post.contains("processors"))
    post["processors"].push_back(append_eos);
  else
    post = {{"type", "Sequence"}, {"processors", {post, append_eos}}};
  write_file_atomic(file, tj.dump(2) + "\n");
}

// The tokenizer files (tokenizer.model and/or tokenizer.json, special_tokens_map.json) and a
// tokenizer_config.json that pads, truncates and adds BOS/EOS as the run did. `tokenizer`: the
// run's, with its reading options (null: the run read pre-tokenized data).
void write_tokenizer_files(const Config& config, const data::Tokenizer* tokenizer, int pad_id,
                           const fs::path& out) {
  if (!tokenizer) {
    fmt::print(stderr,
               "ls_export: warning: {} has no tokenizer (the run read pre-tokenized data): the "
               "export has none either\n",
               config.model.path);
    return;
  }
  const fs::path file = tokenizer->path();
  const fs::path base = config.model.path;
  const bool is_json = file.extension() == ".json";
  const std::string own_name = is_json ? "tokenizer.json" : "tokenizer.model";
  auto copy = [&](const fs::path& from, const std::string& name) {
    std::error_code ec;
    fs::copy_file(from, out / name, fs::copy_options::overwrite_existing, ec);
    if (ec) fail("{}: cannot copy to {}: {}", from.string(), (out / name).string(), ec.message());
  };
  // Only the file the run read: a base's other tokenizer file could disagree with it.
  copy(file, own_name);
  for (const fs::path& dir : {file.parent_path(), base})
    if (fs::exists(dir / "special_tokens_map.json")) {
      copy(dir / "special_tokens_map.json", "special_tokens_map.json");
      break;
    }

  json tc = json::object();
  for (const fs::path& dir : {file.parent_path(), base})
    if (fs::exists(dir / "tokenizer_config.json")) {
      tc = read_json_object(dir / "tokenizer_config.json");
      break;
    }
  if (!tc.contains("tokenizer_class"))
    tc["tokenizer_class"] = is_json ? "PreTrainedTokenizerFast" : "LlamaTokenizer";
  const bool add_eos = tokenizer->options().add_eos;
  if (is_json) {
    const std::vector<int> own_suffix = tokenizer->suffix_ids();
    if (add_eos && (own_suffix.empty() || own_suffix.back() != tokenizer->eos_id()))
      append_eos_to_post_processor(out / own_name, *tokenizer);
    // Classes that rebuild the post-processor from these flags must not undo the above.
    tc.erase("add_bos_token");
    tc.erase("add_eos_token");
  } else {
    tc["add_bos_token"] = tokenizer->options().add_bos;
    tc["add_eos_token"] = add_eos;
  }
  if (add_eos) tc["eos_token"] = tokenizer->id_to_piece(tokenizer->eos_id());
  tc["pad_token"] = tokenizer->id_to_piece(pad_id);
  tc["padding_side"] = std::string(enum_name(config.data.padding_side));
  tc["model_max_length"] = config.data.max_length;
  write_file_atomic(out / "tokenizer_config.json", tc.dump(2) + "\n");
}

HfExportResult write_export(const TrainedRun& run, const fs::path& out,
                            const HfExportOptions& options) {
  const Config& config = run.config;
  const fs::path base_dir = config.model.path;
  const fs::path config_file = base_dir / "config.json";
  const LlamaConfig llama = load_llama_config(config_file);
  json hf = read_json_object(config_file);
  const Checkpoint base = Checkpoint::open_directory(base_dir);
  const fs::path adapter_dir = run.adapter_dir;
  const auto lora = read_peft_adapter_config(adapter_dir / kAdapterConfigFile).lora;
  const Checkpoint adapter = Checkpoint::open_file(adapter_dir / kAdapterWeightsFile);

  HeadOptions head = head_options(config, run.labels.size());
  if (fs::exists(adapter_dir / kHeadConfigFile))
    read_head_config(adapter_dir / kHeadConfigFile, head);
  const bool sequence = head.task == TaskType::kSequence;

  HfExportResult result;
  const std::string embed = "model.embed_tokens.weight";
  result.dtype = options.dtype ? *options.dtype : base.file_of(embed).info(embed).dtype;
  const int64_t element = c10::elementSize(result.dtype);
  result.architecture = std::string(model_family(llama.family).hf_class_prefix) +
                        (sequence ? "ForSequenceClassification" : "ForTokenClassification");

  // The adapter's LoRA pairs, by the base weight they change.
  std::map<std::string, std::pair<std::string, std::string>> lora_of;
  const std::string a_suffix = ".lora_A.weight";
  for (const auto& name : adapter.names()) {
    if (!name.starts_with(kPeftPrefix) || !name.ends_with(a_suffix)) continue;
    const std::string module =
        name.substr(std::string(kPeftPrefix).size(),
                    name.size() - a_suffix.size() - std::string(kPeftPrefix).size());
    const std::string b = std::string(kPeftPrefix) + module + ".lora_B.weight";
    if (!adapter.contains(b))
      fail("{}: '{}' has no matching '{}'", (adapter_dir / kAdapterWeightsFile).string(), name, b);
    if (!base.contains(module + ".weight"))
      fail("{}: LoRA on '{}', which the base model ({}) does not have",
           (adapter_dir / kAdapterWeightsFile).string(), module, base.label());
    lora_of[module + ".weight"] = {name, b};
  }

  std::vector<PlannedTensor> plan;
  auto bytes_of = [&](const std::vector<int64_t>& shape) {
    int64_t n = element;
    for (int64_t d : shape) n *= d;
    return n;
  };
  for (const auto& name : base.names()) {
    if (name.starts_with("lm_head.")) continue;  // a classifier has no language-model head
    PlannedTensor t{name, name, false, "", "", bytes_of(base.file_of(name).info(name).shape)};
    if (const auto it = lora_of.find(name); it != lora_of.end())
      std::tie(t.lora_a, t.lora_b) = it->second;
    plan.push_back(t);
  }
  const std::string score = std::string(kPeftPrefix) + "score.";
  const auto& score_shape = adapter.file_of(score + "weight").info(score + "weight").shape;
  if (score_shape.size() != 2 || score_shape[0] != run.labels.size() ||
      score_shape[1] != llama.hidden_size)
    fail("{}: '{}weight' is not [{} labels, hidden size {}]",
         (adapter_dir / kAdapterWeightsFile).string(), score, run.labels.size(), llama.hidden_size);
  plan.push_back({"score.weight", score + "weight", true, "", "", bytes_of(score_shape)});
  if (adapter.contains(score + "bias")) {
    if (sequence)
      fail(
          "{}: the sequence head has a bias, which HF's ForSequenceClassification score layer "
          "cannot hold",
          (adapter_dir / kAdapterWeightsFile).string());
    plan.push_back({"score.bias", score + "bias", true, "", "", score_shape[0] * element});
  } else if (!sequence) {
    fail("{}: the token head has no '{}bias', which HF's ForTokenClassification expects",
         (adapter_dir / kAdapterWeightsFile).string(), score);
  }

  // Shards as save_pretrained cuts them: in order, a new one when the next tensor would overflow.
  std::vector<std::vector<const PlannedTensor*>> shards(1);
  int64_t shard_bytes = 0, total_bytes = 0;
  for (const auto& t : plan) {
    if (shard_bytes > 0 && shard_bytes + t.bytes > options.max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(&t);
    shard_bytes += t.bytes;
    total_bytes += t.bytes;
  }
  result.shards = static_cast<int>(shards.size());
  json weight_map = json::object();
  const double scaling = lora.scaling();
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string file = shards.size() == 1 ? "model.safetensors"
                                                : fmt::format("model-{:05d}-of-{:05d}.safetensors",
                                                              i + 1, shards.size());
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    for (const auto* t : shards[i]) {
      tensors.emplace_back(t->name, materialize(*t, base, adapter, scaling, result.dtype));
      weight_map[t->name] = file;
    }
    write_safetensors(out / file, tensors, {{"format", "pt"}});
  }
  if (shards.size() > 1)
    write_file_atomic(
        out / "model.safetensors.index.json",
        json{{"metadata", {{"total_size", total_bytes}}}, {"weight_map", weight_map}}.dump(2) +
            "\n");

  // config.json: the base's own fields, plus what a classifier needs.
  json id2label = json::object(), label2id = json::object();
  for (int i = 0; i < run.labels.size(); ++i) {
    id2label[std::to_string(i)] = run.labels.name(i);
    label2id[run.labels.name(i)] = i;
  }
  hf["architectures"] = {result.architecture};
  hf["id2label"] = id2label;
  hf["label2id"] = label2id;
  hf["problem_type"] = std::string(hf_problem_type(head.problem));
  // The run's tokenizer with its reading options; the pad id HF's pooling skips (run_setup.h).
  const std::unique_ptr<data::Tokenizer> tokenizer =
      find_tokenizer(config).empty() ? nullptr : make_tokenizer(config);
  const int pad_id = hf_pad_token_id(config, tokenizer.get());
  hf["pad_token_id"] = pad_id;
  bool dtype_set = false;
  for (const char* key : {"dtype", "torch_dtype"})
    if (hf.contains(key)) {
      hf[key] = hf_dtype_name(result.dtype);
      dtype_set = true;
    }
  if (!dtype_set) hf["dtype"] = hf_dtype_name(result.dtype);
  if (!sequence) hf["classifier_dropout"] = head.dropout;
  const bool bidirectional = config.model.attention == AttentionMode::kBidirectional;
  // What HF has no key for: the config's model-info record, flat, and the head's normalisation.
  hf["ls_train"] = config_record_flat(config, kModelInfo);
  hf["ls_train"]["target_mean"] = head.loss.target_mean;
  hf["ls_train"]["target_std"] = head.loss.target_std;
  hf["ls_train"]["adapter"] = fs::absolute(adapter_dir).lexically_normal().string();
  write_file_atomic(out / "config.json", hf.dump(2) + "\n");
  write_tokenizer_files(config, tokenizer.get(), pad_id, out);

  if (bidirectional)
    result.warnings.push_back(fmt::format(
        "the run's attention is bidirectional{}{}; stock HF runs this model causally (config.json "
        "ls_train records it; docs/EXPORT.md shows the lines that unmask it)",
        config.model.bidirectional_from_layer > 0
            ? fmt::format(" from layer {}", config.model.bidirectional_from_layer)
            : "",
        config.model.attend_to_padding ? ", attending to padding" : ""));
  if (sequence && head.pooling != Pooling::kLast)
    result.warnings.push_back(fmt::format(
        "the run pools with {}; stock HF classifies the last non-pad token (docs/EXPORT.md shows "
        "how to pool the hidden states instead)",
        enum_name(head.pooling)));
  if (head.problem == ProblemType::kRegression &&
      (head.loss.target_mean != 0.0 || head.loss.target_std != 1.0))
    result.warnings.push_back(fmt::format(
        "the run normalised its targets: HF's output times {} plus {} is the prediction "
        "(config.json ls_train.target_std, target_mean)",
        head.loss.target_std, head.loss.target_mean));
  return result;
}

}  // namespace

HfExportResult export_hf_model(const TrainedRun& run, const fs::path& out_dir,
                               const HfExportOptions& options) {
  if (options.max_shard_bytes <= 0) fail("max shard size must be > 0 bytes");
  std::error_code ec;
  if (fs::exists(out_dir) && (!fs::is_directory(out_dir) || !fs::is_empty(out_dir, ec)))
    fail("{}: exists and is not empty; give a new output directory", out_dir.string());
  const fs::path staged = out_dir.string() + ".tmp";
  fs::remove_all(staged, ec);
  fs::create_directories(staged, ec);
  if (ec) fail("{}: cannot create directory: {}", staged.string(), ec.message());
  HfExportResult result;
  try {
    result = write_export(run, staged, options);
    if (fs::exists(out_dir)) fs::remove(out_dir);  // empty, checked above
    fs::rename(staged, out_dir);
  } catch (...) {
    fs::remove_all(staged, ec);
    throw;
  }
  return result;
}

}  // namespace ls
