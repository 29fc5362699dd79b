// The service's JSON schemas (api.h).
#include "core/serve/api.h"

#include <filesystem>

#include "core/base/error.h"
#include "core/infer/predictor.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace ls::serve {

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
  json request;
  try {
    request = json::parse(body);
  } catch (const json::parse_error& e) {
    // nlohmann's parser also rejects invalid UTF-8 in strings.
    fail("malformed JSON: {}", e.what());
  }
  if (!request.is_object() || !request.contains("inputs"))
    fail("the body must be a JSON object with \"inputs\": [...]");
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

}  // namespace ls::serve
