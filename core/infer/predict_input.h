// What a caller hands Predictor::prepare: raw inputs (a text, a text pair, or a token task's word
// list) and the size cap applied to each before it is tokenized. Free of torch, so the serving
// schemas (core/serve/api.h) can hold inputs without the model's headers.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "core/base/error.h"

namespace ls {

// One input to predict: a text, or for token tasks a list of words (a text is split at
// whitespace into words there).
struct PredictInput {
  std::string text;
  std::optional<std::string> text_pair;  // a pair run's second text: joined as training joins it
  std::vector<std::string> words;
  bool is_words = false;
};

// A cap on each input's size, checked before tokenizing (tokenizing is the cost a huge input
// imposes). An input's size is in Unicode code points: its text (a pair: joined as training joins
// it), or a token task's words joined by single spaces.
struct InputLimits {
  size_t max_chars = 0;   // 0: no cap
  bool truncate = false;  // cut a longer input instead of refusing it (Predictor::prepare)
};

// An input over InputLimits::max_chars without `truncate`: ls_serve answers 413.
class InputTooLong : public UserError {
 public:
  using UserError::UserError;
};

}  // namespace ls
