// Pipeline: a tokenizer.json's stages strung together, as `tokenizers`' TokenizerImpl runs them:
//   added tokens in the raw text -> normalizer -> added tokens in the normalized text ->
//   pre-tokenizer -> BPE -> (post-processor: its ids, applied by data::Tokenizer)
// and back: ids -> token strings (special tokens left out) -> decoder -> text.
// tokenizer_json.cpp reads the file and builds one; the stages know nothing of JSON.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/tokenizer/hf/added_tokens.h"
#include "data/tokenizer/hf/bpe.h"
#include "data/tokenizer/hf/decoders.h"
#include "data/tokenizer/hf/normalizers.h"
#include "data/tokenizer/hf/post_processors.h"
#include "data/tokenizer/hf/pre_tokenizers.h"

namespace ls::data::hf {

class Pipeline {
 public:
  // `name` (the file) prefixes errors. normalizer and decoder may be null (no decoder: tokens
  // joined by spaces, as tokenizers does).
  Pipeline(std::string name, std::unique_ptr<Normalizer> normalizer,
           PreTokenizerChain pre_tokenizer, std::unique_ptr<Bpe> model,
           std::vector<AddedToken> added_tokens, PostProcessor post_processor,
           std::unique_ptr<Decoder> decoder);

  // Appends the ids of `text` (no post-processor tokens) and, with `begins`, the input byte where
  // each id's piece begins. Throws UserError when the text is not UTF-8.
  void encode(std::string_view text, std::vector<int>& ids, std::vector<size_t>* begins) const;
  // As tokenizers' decode(ids) (skip_special_tokens=True). Throws UserError on an unknown id.
  std::string decode(const std::vector<int>& ids) const;

  // The id of an added token or vocabulary string, or -1 (also for "").
  int token_id(const std::string& content) const;
  // The string of an id (an added token's content), "" when out of range.
  std::string id_to_piece(int id) const;
  // Model ids and added ids together.
  int vocab_size() const;

  const Bpe& model() const { return *model_; }
  const PostProcessor& post_processor() const { return post_processor_; }
  const AddedVocabulary& added_tokens() const { return added_; }

 private:
  std::string name_;
  std::unique_ptr<Normalizer> normalizer_;
  PreTokenizerChain pre_tokenizer_;
  std::unique_ptr<Bpe> model_;
  AddedVocabulary added_;
  PostProcessor post_processor_;
  std::unique_ptr<Decoder> decoder_;
};

}  // namespace ls::data::hf
