// The service's JSON schemas (api.h): ls-train's own, HF Inference API / TEI's and vLLM's.
#include "core/serve/api.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>

#include "core/base/utf8.h"
#include "core/infer/predictor.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace ls::serve {

// Helpers in a named namespace: the unity build compiles this file with the other serve sources.
namespace api_schemas {

// The body as JSON. Every nlohmann error is the client's: malformed JSON, invalid UTF-8, and a
// number out of range (1e400 throws json::out_of_range).
json parse_body(const std::string& body) {
  try {
    return json::parse(body);
  } catch (const json::exception& e) {
    fail("malformed JSON: {}", e.what());
  }
}

// The value of optional `key` of object `object`; null when absent or JSON null.
const json& optional_key(const json& object, const char* key) {
  static const json null;
  const auto it = object.find(key);
  return it == object.end() ? null : *it;
}

std::optional<bool> optional_bool(const json& object, const char* key, const char* path) {
  const json& value = optional_key(object, key);
  if (value.is_null()) return std::nullopt;
  if (!value.is_boolean()) fail("\"{}\" must be true or false, got {}", path, value.type_name());
  return value.get<bool>();
}

std::optional<int64_t> optional_integer(const json& object, const char* key, const char* path) {
  const json& value = optional_key(object, key);
  if (value.is_null()) return std::nullopt;
  if (!value.is_number_integer())
    fail("\"{}\" must be an integer, got {}", path, value.type_name());
  return value.get<int64_t>();
}

// An optional string that must be one of `choices`.
std::optional<std::string> optional_choice(const json& object, const char* key, const char* path,
                                           const std::vector<std::string>& choices) {
  const json& value = optional_key(object, key);
  if (value.is_null()) return std::nullopt;
  std::string list;
  for (const auto& choice : choices) list += (list.empty() ? "\"" : ", \"") + choice + "\"";
  if (!value.is_string()) fail("\"{}\" must be one of {}, got {}", path, list, value.type_name());
  const std::string text = value.get<std::string>();
  if (std::find(choices.begin(), choices.end(), text) == choices.end())
    fail("\"{}\" must be one of {}, got \"{}\"", path, list, text);
  return text;
}

// The body must be an object holding `key`.
void require_object_with(const json& request, const char* key, const char* example) {
  if (!request.is_object() || !request.contains(key))
    fail("the body must be a JSON object with \"{}\": {}", key, example);
}

// --- POST /v1/predict ---------------------------------------------------------------------------

std::vector<PredictInput> ls_inputs(const json& request, bool token_task) {
  require_object_with(request, "inputs", "[...]");
  const json& inputs = request["inputs"];
  const char* expected = token_task ? "a string or a list of words"
                                    : "a string or {\"text\": ..., \"text_pair\": ...}";
  if (!inputs.is_array()) fail("\"inputs\" must be an array (each item {})", expected);
  if (inputs.empty()) fail("\"inputs\" is empty");
  std::vector<PredictInput> out(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const json& item = inputs[i];
    if (item.is_string()) {
      out[i].text = item.get<std::string>();
    } else if (!token_task && item.is_object() && item.contains("text") &&
               item["text"].is_string() && item.contains("text_pair") &&
               item["text_pair"].is_string() && item.size() == 2) {
      // A pair, joined as the run's reader joined its two fields.
      out[i].text = item["text"].get<std::string>();
      out[i].text_pair = item["text_pair"].get<std::string>();
    } else if (token_task && item.is_array()) {
      out[i].is_words = true;
      for (const json& word : item) {
        if (!word.is_string()) fail("inputs[{}]: every word must be a string", i);
        out[i].words.push_back(word.get<std::string>());
      }
    } else {
      fail("inputs[{}]: expected {}, got {}", i, expected, item.type_name());
    }
  }
  return out;
}

// --- HF Inference API / TEI: POST / and POST /predict --------------------------------------------

// {"text": ..., "text_pair": ...}: the pipeline's pair input.
bool is_pair_object(const json& item) {
  return item.is_object() && item.size() == 2 && item.contains("text") &&
         item["text"].is_string() && item.contains("text_pair") && item["text_pair"].is_string();
}

PredictInput pair_input(std::string text, std::string text_pair) {
  PredictInput input;
  input.text = std::move(text);
  input.text_pair = std::move(text_pair);
  return input;
}

PredictInput text_input(std::string text) {
  PredictInput input;
  input.text = std::move(text);
  return input;
}

// One item of a batch: a text, a TEI sequence ([text] or [text, text_pair]), or a pair object.
PredictInput hf_item(const json& item, size_t i, bool token_task) {
  if (item.is_string()) return text_input(item.get<std::string>());
  if (!token_task) {
    if (is_pair_object(item))
      return pair_input(item["text"].get<std::string>(), item["text_pair"].get<std::string>());
    const bool strings =
        item.is_array() &&
        std::all_of(item.begin(), item.end(), [](const json& s) { return s.is_string(); });
    if (strings && item.size() == 1) return text_input(item[0].get<std::string>());
    if (strings && item.size() == 2)
      return pair_input(item[0].get<std::string>(), item[1].get<std::string>());
  }
  fail("inputs[{}]: expected {}, got {}", i,
       token_task ? "a string"
                  : "a string, [text, text_pair] or {\"text\": ..., \"text_pair\": ...}",
       item.is_array() ? fmt::format("an array of {} items", item.size()) : item.type_name());
}

void hf_inputs(const json& request, const ModelSummary& model, ClientRequest& out) {
  require_object_with(request, "inputs", "a string or [...]");
  const json& inputs = request["inputs"];
  const bool token_task = model.task == TaskType::kToken;
  const bool all_strings =
      inputs.is_array() &&
      std::all_of(inputs.begin(), inputs.end(), [](const json& s) { return s.is_string(); });
  if (inputs.is_string()) {
    out.single = true;
    out.inputs.push_back(text_input(inputs.get<std::string>()));
  } else if (!token_task && is_pair_object(inputs)) {
    out.single = true;
    out.inputs.push_back(hf_item(inputs, 0, false));
  } else if (model.pairs && !token_task && all_strings && inputs.size() == 2) {
    // TEI: two strings are one pair in a pair run.
    out.single = true;
    out.inputs.push_back(pair_input(inputs[0].get<std::string>(), inputs[1].get<std::string>()));
  } else if (inputs.is_array()) {
    if (inputs.empty()) fail("\"inputs\" is empty");
    for (size_t i = 0; i < inputs.size(); ++i)
      out.inputs.push_back(hf_item(inputs[i], i, token_task));
  } else {
    fail("\"inputs\" must be a string or an array, got {}", inputs.type_name());
  }
}

void hf_parameters(const json& request, ClientRequest& out) {
  const json& parameters = optional_key(request, "parameters");
  if (!parameters.is_null() && !parameters.is_object())
    fail("\"parameters\" must be an object, got {}", parameters.type_name());
  const json& p = parameters.is_null() ? json::object() : parameters;
  if (const auto top_k = optional_integer(p, "top_k", "parameters.top_k")) {
    if (*top_k < 1) fail("\"parameters.top_k\" must be at least 1, got {}", *top_k);
    out.top_k = static_cast<size_t>(*top_k);
  }
  if (const auto function = optional_choice(p, "function_to_apply", "parameters.function_to_apply",
                                            {"softmax", "sigmoid", "none"}))
    out.function = *function == "softmax"   ? ScoreFunction::kSoftmax
                   : *function == "sigmoid" ? ScoreFunction::kSigmoid
                                            : ScoreFunction::kNone;
  if (const auto aggregation =
          optional_choice(p, "aggregation_strategy", "parameters.aggregation_strategy",
                          {"none", "simple", "first", "average", "max"}))
    out.aggregation = *aggregation == "none" ? Aggregation::kNone : Aggregation::kGroup;
  const json& ignore = optional_key(p, "ignore_labels");
  if (!ignore.is_null()) {
    if (!ignore.is_array())
      fail("\"parameters.ignore_labels\" must be an array of labels, got {}", ignore.type_name());
    out.ignore_labels.clear();
    for (const json& label : ignore) {
      if (!label.is_string())
        fail("\"parameters.ignore_labels\" must hold strings, got {}", label.type_name());
      out.ignore_labels.push_back(label.get<std::string>());
    }
  }
  optional_integer(p, "stride", "parameters.stride");  // checked; a cut input is not re-chunked
  // TEI's top-level keys.
  if (optional_bool(request, "raw_scores", "raw_scores").value_or(false))
    out.function = ScoreFunction::kNone;
  optional_choice(request, "truncation_direction", "truncation_direction", {"right", "Right"});
}

// --- vLLM: POST /classify -----------------------------------------------------------------------

void vllm_request(const json& request, const ModelSummary& model, ClientRequest& out) {
  if (model.task == TaskType::kToken)
    fail(
        "this run tags tokens (NER); vLLM's classify API classifies sequences only: use POST / "
        "(HF token classification) or POST /v1/predict");
  require_object_with(request, "input", "a string or [string, ...]");
  const json& input = request["input"];
  if (input.is_string()) {
    out.single = true;
    out.inputs.push_back(text_input(input.get<std::string>()));
  } else if (input.is_array()) {
    if (input.empty()) fail("\"input\" is empty");
    for (size_t i = 0; i < input.size(); ++i) {
      if (!input[i].is_string())
        fail("input[{}]: expected a string, got {}", i, input[i].type_name());
      out.inputs.push_back(text_input(input[i].get<std::string>()));
    }
  } else {
    fail("\"input\" must be a string or an array of strings, got {}", input.type_name());
  }
  const json& name = optional_key(request, "model");
  if (!name.is_null()) {
    if (!name.is_string()) fail("\"model\" must be a string, got {}", name.type_name());
    out.model = name.get<std::string>();
    if (out.model != model.name)
      throw UnknownModel(
          fmt::format("\"model\": \"{}\" is not served here; this server serves "
                      "\"{}\" (GET /v1/models)",
                      out.model, model.name));
  }
  // vLLM keeps the last truncate_prompt_tokens ids (-1: the model's length); this model reads the
  // first data.max_length ids, as it trained. A cap at or above that changes nothing.
  if (const auto keep =
          optional_integer(request, "truncate_prompt_tokens", "truncate_prompt_tokens")) {
    if (*keep != -1 && *keep < model.max_length)
      fail(
          "\"truncate_prompt_tokens\": {}; this model reads the first {} ids of every input (its "
          "data.max_length) and cannot keep fewer: send -1 or at least {}",
          *keep, model.max_length, model.max_length);
    out.truncate = true;
  }
  if (!optional_bool(request, "use_activation", "use_activation").value_or(true))
    out.function = ScoreFunction::kNone;
}

// --- answers ------------------------------------------------------------------------------------

ScoreFunction resolve(ScoreFunction function, ProblemType problem) {
  if (function != ScoreFunction::kDefault) return function;
  switch (problem) {
    case ProblemType::kMultiLabel:
      return ScoreFunction::kSigmoid;
    case ProblemType::kRegression:
      return ScoreFunction::kNone;
    case ProblemType::kSingleLabel:
      break;
  }
  return ScoreFunction::kSoftmax;
}

// An input's score per class after `function`: the logits, or for regression the prediction in
// the targets' scale (the number /v1/predict answers).
std::vector<double> class_scores(const Output& output, const ModelSummary& model,
                                 ScoreFunction function) {
  std::vector<double> scores;
  if (model.problem == ProblemType::kRegression)
    scores.push_back(output.object.at("prediction").get<double>());
  else
    scores.assign(output.scores.begin(), output.scores.end());
  LS_ASSERT(scores.size() == model.labels.size(), "{} scores for {} labels", scores.size(),
            model.labels.size());
  switch (resolve(function, model.problem)) {
    case ScoreFunction::kSigmoid:
      for (double& s : scores) s = 1 / (1 + std::exp(-s));
      break;
    case ScoreFunction::kSoftmax: {
      const double top = *std::max_element(scores.begin(), scores.end());
      double sum = 0;
      for (double& s : scores) sum += (s = std::exp(s - top));
      for (double& s : scores) s /= sum;
      break;
    }
    case ScoreFunction::kNone:
    case ScoreFunction::kDefault:
      break;
  }
  return scores;
}

// [{"label", "score"}, ...], best first (ties in label order), the top k.
json hf_sequence(const Output& output, const ClientRequest& request, const ModelSummary& model) {
  const std::vector<double> scores = class_scores(output, model, request.function);
  std::vector<size_t> order(scores.size());
  for (size_t c = 0; c < order.size(); ++c) order[c] = c;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  if (request.top_k && *request.top_k < order.size()) order.resize(*request.top_k);
  json labels = json::array();
  for (size_t c : order)
    labels.push_back({{"label", model.labels[c]}, {"score", static_cast<float>(scores[c])}});
  return labels;
}

// The byte offset of code point `n` in `text` for a span of code points (end: the size).
std::string code_point_substr(const std::string& text, size_t start, size_t end) {
  size_t point = 0, begin_byte = text.size(), end_byte = text.size();
  for (size_t byte = 0; byte < text.size(); ++byte) {
    if (is_utf8_continuation(text[byte])) continue;
    if (point == start) begin_byte = byte;
    if (point == end) {
      end_byte = byte;
      break;
    }
    ++point;
  }
  return text.substr(begin_byte, end_byte - begin_byte);
}

// A tag's (B/I, type) as HF's pipeline reads it: "B-X", "I-X", anything else an inside of itself.
std::pair<char, std::string> bio_of(const std::string& tag) {
  if (tag.size() > 2 && (tag[0] == 'B' || tag[0] == 'I') && tag[1] == '-')
    return {tag[0], tag.substr(2)};
  return {'I', tag};
}

// HF's token-classification answer for one text: word by word ("none"), or consecutive words
// grouped as the pipeline groups them (a B- tag or another type starts a group; a group's score
// is the mean of its words'), then the ignored labels dropped.
json hf_token(const Output& output, const PredictInput& input, const ClientRequest& request) {
  const std::vector<WordSpan> words = split_words(input.text);
  const json& tags = output.object.at("tags");
  const size_t kept = std::min({words.size(), tags.size(), output.scores.size()});
  auto ignored = [&](const std::string& label) {
    return std::find(request.ignore_labels.begin(), request.ignore_labels.end(), label) !=
           request.ignore_labels.end();
  };
  auto span = [&](json entity, size_t first, size_t last) {
    entity["word"] = code_point_substr(input.text, words[first].start, words[last].end);
    entity["start"] = words[first].start;
    entity["end"] = words[last].end;
    return entity;
  };
  json entities = json::array();
  if (request.aggregation == Aggregation::kNone) {
    for (size_t w = 0; w < kept; ++w) {
      const std::string tag = tags[w].get<std::string>();
      if (ignored(tag)) continue;
      entities.push_back(span({{"entity", tag}, {"score", output.scores[w]}, {"index", w}}, w, w));
    }
    return entities;
  }
  for (size_t first = 0; first < kept;) {
    const std::string type = bio_of(tags[first].get<std::string>()).second;
    size_t last = first;
    while (last + 1 < kept) {
      const auto [bi, next] = bio_of(tags[last + 1].get<std::string>());
      if (bi == 'B' || next != type) break;
      ++last;
    }
    double sum = 0;
    for (size_t w = first; w <= last; ++w) sum += output.scores[w];
    if (!ignored(type))
      entities.push_back(
          span({{"entity_group", type},
                {"score", static_cast<float>(sum / static_cast<double>(last - first + 1))}},
               first, last));
    first = last + 1;
  }
  return entities;
}

Answer hf_answer(const ClientRequest& request, const std::vector<Output>& outputs,
                 const ModelSummary& model) {
  json answer = json::array();
  for (size_t i = 0; i < outputs.size(); ++i)
    answer.push_back(model.task == TaskType::kToken
                         ? hf_token(outputs[i], request.inputs[i], request)
                         : hf_sequence(outputs[i], request, model));
  // huggingface_hub's text_classification reads the answer's first list even for one text; its
  // token_classification reads a flat list for one text, as the pipeline answers.
  if (model.task == TaskType::kToken && request.single) return json_answer(200, answer[0]);
  return json_answer(200, answer);
}

// 32 random hex digits (vLLM's random_uuid).
std::string random_hex() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return fmt::format("{:016x}{:016x}", engine(), engine());
}

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// vLLM's ClassificationResponse: each input's probabilities in label order (softmax; sigmoid for
// multi-label; the prediction for regression) and the most likely label.
Answer vllm_answer(const ClientRequest& request, const std::vector<Output>& outputs,
                   const ModelSummary& model, int64_t prompt_tokens) {
  json data = json::array();
  for (size_t i = 0; i < outputs.size(); ++i) {
    const std::vector<double> probs = class_scores(outputs[i], model, request.function);
    const size_t best =
        static_cast<size_t>(std::max_element(probs.begin(), probs.end()) - probs.begin());
    json values = json::array();
    for (double p : probs) values.push_back(static_cast<float>(p));
    data.push_back({{"index", i},
                    {"label", model.labels[best]},
                    {"probs", values},
                    {"num_classes", probs.size()}});
  }
  return json_answer(200, json{{"id", "classify-" + random_hex()},
                               {"object", "list"},
                               {"created", unix_seconds()},
                               {"model", model.name},
                               {"data", data},
                               {"usage",
                                {{"prompt_tokens", prompt_tokens},
                                 {"total_tokens", prompt_tokens},
                                 {"completion_tokens", 0},
                                 {"prompt_tokens_details", nullptr}}}});
}

// TEI's and torch's names for the base's floating-point type.
std::string tei_dtype_name(c10::ScalarType dtype) {
  switch (dtype) {
    case c10::kBFloat16:
      return "bfloat16";
    case c10::kHalf:
      return "float16";
    default:
      return "float32";
  }
}

}  // namespace api_schemas

using namespace api_schemas;

Answer json_answer(int status, const json& body) {
  Answer answer;
  answer.status = status;
  answer.body = body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  return answer;
}

Answer error_answer(int status, const std::string& message) {
  return json_answer(status, json{{"error", message}});
}

Answer predictions_answer(std::vector<json> predictions) {
  return json_answer(200, json{{"predictions", std::move(predictions)}});
}

std::vector<PredictInput> parse_predict_body(const std::string& body, bool token_task) {
  const json request = parse_body(body);
  std::vector<PredictInput> inputs = ls_inputs(request, token_task);
  optional_bool(request, "truncate", "truncate");
  return inputs;
}

ClientRequest parse_request(Api api, const std::string& body, const ModelSummary& model) {
  const json request = parse_body(body);
  ClientRequest out;
  switch (api) {
    case Api::kLs:
      out.inputs = ls_inputs(request, model.task == TaskType::kToken);
      break;
    case Api::kHf:
      hf_inputs(request, model, out);
      hf_parameters(request, out);
      break;
    case Api::kVllm:
      vllm_request(request, model, out);
      return out;
  }
  out.truncate = optional_bool(request, "truncate", "truncate").value_or(false);
  return out;
}

Answer client_answer(Api api, const ClientRequest& request, std::vector<Output> outputs,
                     const ModelSummary& model, int64_t prompt_tokens) {
  LS_ASSERT(outputs.size() == request.inputs.size(), "{} outputs for {} inputs", outputs.size(),
            request.inputs.size());
  switch (api) {
    case Api::kHf:
      return hf_answer(request, outputs, model);
    case Api::kVllm:
      return vllm_answer(request, outputs, model, prompt_tokens);
    case Api::kLs:
      break;
  }
  std::vector<json> predictions;
  predictions.reserve(outputs.size());
  for (Output& output : outputs) predictions.push_back(std::move(output.object));
  return predictions_answer(std::move(predictions));
}

json model_info(const Predictor& predictor) {
  // The config's model-info record (the same keys an export's config.json `ls_train` holds), and
  // what this process serves: labels, adapter, run, device.
  json info = config_record_flat(predictor.config(), kModelInfo);
  info["labels"] = predictor.labels().names();
  info["adapter"] = fs::absolute(predictor.run().adapter_dir).lexically_normal().string();
  info["run"] = predictor.run().run_dir.empty()
                    ? json(nullptr)
                    : json(fs::absolute(predictor.run().run_dir).lexically_normal().string());
  info["max_length"] = predictor.max_length();
  info["device"] = predictor.device().str();
  return info;
}

ModelSummary summarize(const Predictor& predictor) {
  ModelSummary model;
  const Config& config = predictor.config();
  model.task = predictor.task();
  model.problem =
      model.task == TaskType::kToken ? ProblemType::kSingleLabel : config.task.problem_type;
  model.labels = predictor.labels().names();
  model.threshold = predictor.threshold();
  const fs::path dir =
      predictor.run().run_dir.empty() ? predictor.run().adapter_dir : predictor.run().run_dir;
  fs::path normal = fs::absolute(dir).lexically_normal();
  if (!normal.has_filename()) normal = normal.parent_path();  // "runs/sst2/" is "runs/sst2"
  model.path = normal.string();
  model.name = normal.filename().string();
  model.max_length = predictor.max_length();
  model.dtype = tei_dtype_name(predictor.dtype());
  model.pairs = !config.data.text_pair_field.empty();
  return model;
}

json tei_info(const ModelSummary& model, const ServeLimits& limits) {
  json id2label = json::object(), label2id = json::object();
  for (size_t c = 0; c < model.labels.size(); ++c) {
    id2label[std::to_string(c)] = model.labels[c];
    label2id[model.labels[c]] = c;
  }
  return json{
      {"model_id", model.name},
      {"model_sha", nullptr},
      {"model_dtype", model.dtype},
      {"served_model_name", model.name},
      {"model_type", {{"classifier", {{"id2label", id2label}, {"label2id", label2id}}}}},
      {"max_concurrent_requests", limits.max_concurrent_requests},
      {"max_input_length", model.max_length},
      {"max_batch_tokens", limits.max_batch_size * static_cast<size_t>(model.max_length)},
      {"max_batch_requests", limits.max_batch_size},
      {"max_client_batch_size", limits.max_inputs},
      {"auto_truncate", false},
      {"tokenization_workers", limits.tokenization_workers},
      {"version", limits.version},
      {"sha", nullptr},
      {"docker_label", nullptr},
  };
}

json vllm_models(const ModelSummary& model) {
  const int64_t now = unix_seconds();
  // vLLM lists one default ModelPermission per model.
  const json permission = {{"id", "modelperm-" + random_hex()},
                           {"object", "model_permission"},
                           {"created", now},
                           {"allow_create_engine", false},
                           {"allow_sampling", true},
                           {"allow_logprobs", true},
                           {"allow_search_indices", false},
                           {"allow_view", true},
                           {"allow_fine_tuning", false},
                           {"organization", "*"},
                           {"group", nullptr},
                           {"is_blocking", false}};
  const json card = {{"id", model.name},
                     {"object", "model"},
                     {"created", now},
                     {"owned_by", "ls-train"},
                     {"root", model.path},
                     {"parent", nullptr},
                     {"max_model_len", model.max_length},
                     {"permission", json::array({permission})}};
  return json{{"object", "list"}, {"data", json::array({card})}};
}

std::vector<WordSpan> split_words(const std::string& text) {
  std::vector<WordSpan> words;
  size_t point = 0;  // code points before `byte`
  bool in_word = false;
  for (size_t byte = 0; byte < text.size(); ++byte) {
    const char c = text[byte];
    if (is_ascii_space(c)) {
      in_word = false;
    } else {
      if (!in_word) words.push_back({"", point, point});
      in_word = true;
      words.back().word += c;
    }
    if (!is_utf8_continuation(c)) ++point;
    // A word's end: after its last code point, whose continuation bytes follow it.
    if (in_word) words.back().end = point;
  }
  return words;
}

}  // namespace ls::serve
