// Pre-tokenizers: a normalized piece cut into the words the model sees, as `tokenizers`'
// pre_tokenizers/ (Split with any behavior, ByteLevel, Metaspace, Digits; a Sequence is a
// PreTokenizerChain). Cuts keep byte origins.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/tokenizer/hf/pattern.h"
#include "data/tokenizer/hf/piece.h"

namespace ls::data::hf {

// What happens to a match when a piece is cut at it (tokenizers' SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// Cuts a piece at a pattern's matches the way tokenizers' NormalizedString::split does (invert:
// the matches are what lies between the pattern's matches). Empty parts are dropped.
void split_piece(const Piece& p, const Pattern& pattern, SplitBehavior behavior, bool invert,
                 std::vector<Piece>& out);

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Appends the words of `p` to `out`.
  virtual void split(const Piece& p, std::vector<Piece>& out) const = 0;
};

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void split(const Piece& p, std::vector<Piece>& out) const override;

 private:
  Pattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

// Digits: runs of \p{N} (Rust's char::is_numeric) cut out together, or one by one.
std::unique_ptr<PreTokenizer> digits_pre_tokenizer(bool individual_digits);

// ByteLevel: an optional leading space and GPT-2's split; its byte-to-character mapping is the
// model's business here (byte-level BPE runs on bytes).
class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex);
  void split(const Piece& p, std::vector<Piece>& out) const override;

 private:
  bool add_prefix_space_, use_regex_;
  Pattern gpt2_;
};

// Metaspace: spaces become `replacement` (sentencepiece's "▁"), prepended per the scheme
// (kFirst: only to a piece whose first byte is the input's first, as tokenizers' offsets say),
// and with `split` each word starts at one.
class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  enum class Prepend { kAlways, kFirst, kNever };
  MetaspacePreTokenizer(std::string replacement, Prepend scheme, bool split);
  void split(const Piece& p, std::vector<Piece>& out) const override;

 private:
  std::string replacement_;
  Prepend scheme_;
  bool split_;
  Pattern separator_, space_;
};

// A pre-tokenizer's steps in order (a Sequence flattened), and whether the model sees bytes (a
// ByteLevel step, which must come last since later steps would see its characters).
struct PreTokenizerChain {
  std::vector<std::unique_ptr<PreTokenizer>> steps;
  bool byte_level = false;
  // A step asks where a piece began in the input (Metaspace "first"): after a normalizer, only
  // tracked origins say it (a Strip or Replace may have removed the first input bytes).
  bool needs_origins = false;

  // The words of `p`, each step applied to every word of the one before (`scratch`: reused).
  void run(Piece p, std::vector<Piece>& words, std::vector<Piece>& scratch) const;
};

}  // namespace ls::data::hf
