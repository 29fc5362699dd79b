// Normalizers: the text between added tokens rewritten before it is cut into words, as
// `tokenizers`' normalizers/ (NFC/NFD/NFKC/NFKD, Prepend, Replace, Strip, Sequence). Each edits a
// Piece in place and keeps its byte origins.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/tokenizer/hf/pattern.h"
#include "data/tokenizer/hf/piece.h"

namespace ls::data::hf {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void apply(Piece& p) const = 0;
};

enum class UnicodeForm { kNfc, kNfd, kNfkc, kNfkd };

// NFC/NFD/NFKC/NFKD by utf8proc. With origins kept, text is normalized in stretches between
// spaces (nothing composes across a space, so the text is the same) and each stretch's bytes
// take the origin of its first byte.
class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(UnicodeForm form) : form_(form) {}
  void apply(Piece& p) const override;

 private:
  std::string normalize(const std::string& s) const;
  UnicodeForm form_;
};

// `prefix` before a non-empty text.
class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void apply(Piece& p) const override;

 private:
  std::string prefix_;
};

// Every match of the pattern replaced by `content`.
class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void apply(Piece& p) const override;

 private:
  Pattern pattern_;
  std::string content_;
};

// Unicode White_Space removed from the left and/or right end.
class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void apply(Piece& p) const override;

 private:
  bool left_, right_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
      : steps_(std::move(steps)) {}
  void apply(Piece& p) const override;

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

}  // namespace ls::data::hf
