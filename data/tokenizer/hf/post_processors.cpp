// Post-processor templates (post_processors.h).
#include "data/tokenizer/hf/post_processors.h"

namespace ls::data::hf {

void PostProcessor::add_template(const std::vector<TemplateItem>& single) {
  bool after_text = false;
  for (const TemplateItem& item : single) {
    if (item.is_sequence) {
      after_text = true;
      continue;
    }
    std::vector<int>& side = after_text ? suffix_ : prefix_;
    side.insert(side.end(), item.ids.begin(), item.ids.end());
  }
}

}  // namespace ls::data::hf
