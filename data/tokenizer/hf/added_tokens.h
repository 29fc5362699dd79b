// Added tokens: strings that become one id whatever the model would make of them (special tokens
// such as <|begin_of_text|>, and user-added ones), found in the text as `tokenizers`'
// AddedVocabulary finds them: leftmost-longest, non-overlapping, then single_word, lstrip and
// rstrip. Tokens with `normalized: false` are matched in the raw text, the others in the
// normalized text (their content normalized the same way).
#pragma once

#include <array>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/tokenizer/hf/piece.h"

namespace ls::data::hf {

class Normalizer;

struct AddedToken {
  std::string content;
  int id = -1;
  bool special = false, normalized = true, lstrip = false, rstrip = false, single_word = false;
};

// Finds a set of strings in a text: each match, with its token, becomes its own piece.
class AddedTokenMatcher {
 public:
  // A token's text as it appears in the text the matcher will see; an empty one never matches.
  // Among matches at one place the longest wins; between equally long ones, the first added.
  void add(std::string pattern, const AddedToken* token);
  bool empty() const { return entries_.empty(); }

  // Splits `p` into added-token pieces (added_id set) and the text between them (empty pieces
  // dropped).
  void split(const Piece& p, std::vector<Piece>& out) const;

 private:
  struct Entry {
    std::string pattern;
    const AddedToken* token;
  };
  std::vector<Entry> entries_;
  std::array<std::vector<size_t>, 256> by_first_byte_;
};

// The added tokens of a tokenizer and their two matchers (raw and normalized text).
class AddedVocabulary {
 public:
  // `normalizer` (may be null) is the pipeline's: it normalizes the contents of the tokens
  // matched in normalized text. Special tokens are matched first, then the others, each in the
  // given order (as tokenizers does).
  AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer);
  AddedVocabulary(const AddedVocabulary&) = delete;
  AddedVocabulary& operator=(const AddedVocabulary&) = delete;

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  // The added token with this id, or null.
  const AddedToken* find(int id) const;
  // The id of the added token with this content, or -1.
  int id_of(const std::string& content) const;

  // The raw text cut at tokens with normalized: false.
  void split_raw(const Piece& p, std::vector<Piece>& out) const { raw_.split(p, out); }
  // Normalized text cut at tokens with normalized: true.
  void split_normalized(const Piece& p, std::vector<Piece>& out) const {
    normalized_.split(p, out);
  }

 private:
  std::vector<AddedToken> tokens_;
  std::unordered_map<int, const AddedToken*> by_id_;
  AddedTokenMatcher raw_, normalized_;
};

}  // namespace ls::data::hf
