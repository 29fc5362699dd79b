// Post-processors: the special tokens put around a sequence's ids, as `tokenizers`' processors/.
// TemplateProcessing's single-sequence template ("<bos> $A" for LLaMA-3, "$A </s>", nothing);
// ByteLevel changes offsets only; a Sequence adds its templates' tokens in order.
#pragma once

#include <vector>

namespace ls::data::hf {

// One item of a single-sequence template: the text ($A) or a special token's ids.
struct TemplateItem {
  bool is_sequence = false;
  std::vector<int> ids;
};

class PostProcessor {
 public:
  // One TemplateProcessing: its special tokens before $A go before the text, those after it
  // after (a template without $A puts them all before).
  void add_template(const std::vector<TemplateItem>& single);

  // The ids encode() puts before and after the text's.
  const std::vector<int>& prefix_ids() const { return prefix_; }
  const std::vector<int>& suffix_ids() const { return suffix_; }

 private:
  std::vector<int> prefix_, suffix_;
};

}  // namespace ls::data::hf
