// The tokenizer.json pipeline, encode and decode (pipeline.h).
#include "data/tokenizer/hf/pipeline.h"

#include <algorithm>

#include "core/base/error.h"  // header-only: UserError, fail()
#include "data/text_file.h"   // find_invalid_utf8

namespace ls::data::hf {

Pipeline::Pipeline(std::string name, std::unique_ptr<Normalizer> normalizer,
                   PreTokenizerChain pre_tokenizer, std::unique_ptr<Bpe> model,
                   std::vector<AddedToken> added_tokens, PostProcessor post_processor,
                   std::unique_ptr<Decoder> decoder)
    : name_(std::move(name)),
      normalizer_(std::move(normalizer)),
      pre_tokenizer_(std::move(pre_tokenizer)),
      model_(std::move(model)),
      added_(std::move(added_tokens), normalizer_.get()),
      post_processor_(std::move(post_processor)),
      decoder_(std::move(decoder)) {}

void Pipeline::encode(std::string_view text, std::vector<int>& ids,
                      std::vector<size_t>* begins) const {
  if (size_t bad = find_invalid_utf8(text); bad != std::string::npos)
    fail("{}: cannot encode text: invalid UTF-8 at byte {}", name_, bad + 1);
  const bool track = begins || (normalizer_ && pre_tokenizer_.needs_origins);
  Piece whole = track ? tracked_piece(std::string(text)) : Piece{std::string(text), 0, {}, -1};
  // 1. Added tokens that match the raw text; 2. the rest normalized, then the added tokens that
  // match normalized text.
  std::vector<Piece> raw_split, split;
  added_.split_raw(whole, raw_split);
  for (Piece& p : raw_split) {
    if (p.added_id >= 0) {
      split.push_back(std::move(p));
      continue;
    }
    if (normalizer_) normalizer_->apply(p);
    added_.split_normalized(p, split);
  }
  // 3. Pre-tokenizer, 4. model.
  std::vector<Piece> words, scratch;
  std::vector<Symbol> symbols;
  for (Piece& p : split) {
    if (p.added_id >= 0) {
      ids.push_back(p.added_id);
      if (begins) begins->push_back(p.orig_begin);
      continue;
    }
    pre_tokenizer_.run(std::move(p), words, scratch);
    for (const Piece& w : words) {
      model_->tokenize(w.text, symbols);
      for (const Symbol& s : symbols) {
        ids.push_back(s.id);
        if (begins) begins->push_back(w.orig.empty() ? w.orig_begin : w.orig[s.begin]);
      }
    }
  }
}

std::string Pipeline::decode(const std::vector<int>& ids) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int id : ids) {
    if (const AddedToken* added = added_.find(id)) {
      if (!added->special) tokens.push_back(added->content);
      continue;
    }
    if (id < 0 || id > model_->max_id()) fail("{}: cannot decode id {}", name_, id);
    tokens.push_back(model_->pieces()[id]);
  }
  std::string out;
  if (!decoder_) {
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return out;
  }
  decoder_->decode_chain(tokens);
  for (const std::string& t : tokens) out += t;
  return out;
}

int Pipeline::token_id(const std::string& content) const {
  if (content.empty()) return -1;
  if (const int id = added_.id_of(content); id >= 0) return id;
  auto it = model_->vocab().find(content);
  return it == model_->vocab().end() ? -1 : it->second;
}

std::string Pipeline::id_to_piece(int id) const {
  if (const AddedToken* added = added_.find(id)) return added->content;
  const auto& pieces = model_->pieces();
  if (id < 0 || static_cast<size_t>(id) >= pieces.size()) return "";
  return pieces[id];
}

int Pipeline::vocab_size() const {
  int size = model_->max_id() + 1;
  for (const AddedToken& t : added_.tokens()) size = std::max(size, t.id + 1);
  return size;
}

}  // namespace ls::data::hf
