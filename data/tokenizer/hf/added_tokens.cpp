// Added-token matching (added_tokens.h).
#include "data/tokenizer/hf/added_tokens.h"

#include <algorithm>

#include "data/tokenizer/hf/normalizers.h"
#include "data/tokenizer/hf/unicode.h"

namespace ls::data::hf {
namespace {

size_t previous_char(const std::string& s, size_t end) {
  size_t i = end - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

bool ends_with_word_char(const std::string& s, size_t end) {
  return is_word_char(decode_utf8(s, previous_char(s, end)));
}

size_t start_of_trailing_space(const std::string& s, size_t end) {
  while (end > 0) {
    const size_t i = previous_char(s, end);
    if (!is_white_space(decode_utf8(s, i))) break;
    end = i;
  }
  return end;
}

}  // namespace

void AddedTokenMatcher::add(std::string pattern, const AddedToken* token) {
  if (pattern.empty()) return;
  const auto first = static_cast<unsigned char>(pattern[0]);
  entries_.push_back({std::move(pattern), token});
  auto& bucket = by_first_byte_[first];
  bucket.push_back(entries_.size() - 1);
  std::stable_sort(bucket.begin(), bucket.end(), [&](size_t a, size_t b) {
    return entries_[a].pattern.size() > entries_[b].pattern.size();
  });
}

void AddedTokenMatcher::split(const Piece& p, std::vector<Piece>& out) const {
  if (entries_.empty()) {
    if (!p.text.empty()) out.push_back(p);
    return;
  }
  const std::string& s = p.text;
  size_t start_offset = 0;
  for (size_t at = 0; at < s.size();) {
    const Entry* found = nullptr;
    for (size_t index : by_first_byte_[static_cast<unsigned char>(s[at])]) {
      const Entry& e = entries_[index];
      if (s.compare(at, e.pattern.size(), e.pattern) == 0) {
        found = &e;
        break;
      }
    }
    if (!found) {
      ++at;
      continue;
    }
    size_t start = at, stop = at + found->pattern.size();
    at = stop;
    const AddedToken& token = *found->token;
    if (token.single_word) {
      const bool start_space = start == 0 || !ends_with_word_char(s, start);
      const bool stop_space = stop == s.size() || !is_word_char(decode_utf8(s, stop));
      if (!start_space || !stop_space) continue;
    }
    if (token.lstrip) start = std::max(start_of_trailing_space(s, start), start_offset);
    if (token.rstrip)
      while (stop < s.size() && is_white_space(decode_utf8(s, stop))) stop += utf8_length(s[stop]);
    if (start_offset < start) out.push_back(slice(p, start_offset, start));
    Piece piece = slice(p, start, stop);
    piece.added_id = token.id;
    out.push_back(std::move(piece));
    start_offset = stop;
  }
  if (start_offset < s.size()) out.push_back(slice(p, start_offset, s.size()));
}

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer)
    : tokens_(std::move(tokens)) {
  for (bool special : {true, false})
    for (const AddedToken& t : tokens_) {
      if (t.special != special) continue;
      by_id_[t.id] = &t;
      if (!t.normalized) {
        raw_.add(t.content, &t);
      } else {
        Piece content{t.content, 0, {}, -1};
        if (normalizer) normalizer->apply(content);
        normalized_.add(content.text, &t);
      }
    }
}

const AddedToken* AddedVocabulary::find(int id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

int AddedVocabulary::id_of(const std::string& content) const {
  for (const AddedToken& t : tokens_)
    if (t.content == content) return t.id;
  return -1;
}

}  // namespace ls::data::hf
