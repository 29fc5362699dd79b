// The pre-tokenizers (pre_tokenizers.h).
#include "data/tokenizer/hf/pre_tokenizers.h"

#include <algorithm>

namespace ls::data::hf {

void split_piece(const Piece& p, const Pattern& pattern, SplitBehavior behavior, bool invert,
                 std::vector<Piece>& out) {
  std::vector<std::pair<size_t, size_t>> found;
  pattern.find_all(p.text, found);
  struct Part {
    size_t begin, end;
    bool match;
  };
  std::vector<Part> parts;
  parts.reserve(2 * found.size() + 1);
  size_t prev = 0;
  for (auto [begin, end] : found) {
    if (begin != prev) parts.push_back({prev, begin, invert});
    parts.push_back({begin, end, !invert});
    prev = end;
  }
  if (prev != p.text.size()) parts.push_back({prev, p.text.size(), invert});

  std::vector<std::pair<size_t, size_t>> kept;
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const Part& part : parts)
        if (!part.match) kept.emplace_back(part.begin, part.end);
      break;
    case SplitBehavior::kIsolated:
      for (const Part& part : parts) kept.emplace_back(part.begin, part.end);
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const Part& part : parts) {
        if (part.match && !previous_match && !kept.empty())
          kept.back().second = part.end;
        else
          kept.emplace_back(part.begin, part.end);
        previous_match = part.match;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (size_t k = parts.size(); k-- > 0;) {
        const Part& part = parts[k];
        if (part.match && !previous_match && !kept.empty())
          kept.back().first = part.begin;
        else
          kept.emplace_back(part.begin, part.end);
        previous_match = part.match;
      }
      std::reverse(kept.begin(), kept.end());
      break;
    case SplitBehavior::kContiguous:
      for (size_t k = 0; k < parts.size(); ++k) {
        if (k > 0 && parts[k].match == previous_match)
          kept.back().second = parts[k].end;
        else
          kept.emplace_back(parts[k].begin, parts[k].end);
        previous_match = parts[k].match;
      }
      break;
  }
  for (auto [begin, end] : kept)
    if (end > begin) out.push_back(slice(p, begin, end));
}

void SplitPreTokenizer::split(const Piece& p, std::vector<Piece>& out) const {
  split_piece(p, pattern_, behavior_, invert_, out);
}

std::unique_ptr<PreTokenizer> digits_pre_tokenizer(bool individual_digits) {
  return std::make_unique<SplitPreTokenizer>(
      Pattern::regex("\\p{N}", "Digits"),
      individual_digits ? SplitBehavior::kIsolated : SplitBehavior::kContiguous, false);
}

ByteLevelPreTokenizer::ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
    : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {
  if (use_regex)
    gpt2_ = Pattern::regex(
        R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)",
        "ByteLevel");
}

void ByteLevelPreTokenizer::split(const Piece& p, std::vector<Piece>& out) const {
  Piece piece = p;
  if (add_prefix_space_ && piece.text.front() != ' ') prepend(piece, " ");
  if (use_regex_)
    split_piece(piece, gpt2_, SplitBehavior::kIsolated, false, out);
  else
    out.push_back(std::move(piece));
}

MetaspacePreTokenizer::MetaspacePreTokenizer(std::string replacement, Prepend scheme, bool split)
    : replacement_(std::move(replacement)),
      scheme_(scheme),
      split_(split),
      separator_(Pattern::literal(replacement_)),
      space_(Pattern::literal(" ")) {}

void MetaspacePreTokenizer::split(const Piece& p, std::vector<Piece>& out) const {
  Piece piece = p;
  std::vector<std::pair<size_t, size_t>> spaces;
  space_.find_all(piece.text, spaces);
  std::vector<Edit> edits;
  for (auto [begin, end] : spaces) edits.push_back({begin, end, replacement_});
  apply_edits(piece, edits);
  const bool starts = piece.text.starts_with(replacement_);
  const size_t begin = p.orig.empty() ? p.orig_begin : p.orig.front();
  if (!starts && (scheme_ == Prepend::kAlways || (scheme_ == Prepend::kFirst && begin == 0)))
    prepend(piece, replacement_);
  if (split_)
    split_piece(piece, separator_, SplitBehavior::kMergedWithNext, false, out);
  else
    out.push_back(std::move(piece));
}

void PreTokenizerChain::run(Piece p, std::vector<Piece>& words, std::vector<Piece>& scratch) const {
  words.clear();
  words.push_back(std::move(p));
  for (const auto& step : steps) {
    scratch.clear();
    for (const Piece& w : words) step->split(w, scratch);
    std::swap(words, scratch);
  }
}

}  // namespace ls::data::hf
