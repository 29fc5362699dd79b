// The normalizers (normalizers.h).
#include "data/tokenizer/hf/normalizers.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>

#include "core/base/error.h"  // header-only: UserError, fail()
#include "data/tokenizer/hf/unicode.h"

namespace ls::data::hf {

void UnicodeNormalizer::apply(Piece& p) const {
  if (std::all_of(p.text.begin(), p.text.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
    return;  // ASCII is in every normal form
  std::string text = normalize(p.text);
  if (!p.orig.empty()) {
    std::vector<uint32_t> orig;
    orig.reserve(text.size());
    for (size_t at = 0; at < p.text.size();) {
      size_t end = p.text[at] == ' ' ? at + 1 : p.text.find(' ', at);
      if (end == std::string::npos) end = p.text.size();
      orig.insert(orig.end(), normalize(p.text.substr(at, end - at)).size(), p.orig[at]);
      at = end;
    }
    if (orig.size() != text.size()) orig.assign(text.size(), p.orig.front());
    p.orig = std::move(orig);
  }
  p.text = std::move(text);
}

std::string UnicodeNormalizer::normalize(const std::string& s) const {
  int options = 0;
  switch (form_) {
    case UnicodeForm::kNfc:
      options = UTF8PROC_COMPOSE;
      break;
    case UnicodeForm::kNfd:
      options = UTF8PROC_DECOMPOSE;
      break;
    case UnicodeForm::kNfkc:
      options = UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
      break;
    case UnicodeForm::kNfkd:
      options = UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
      break;
  }
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(
      reinterpret_cast<const utf8proc_uint8_t*>(s.data()), static_cast<utf8proc_ssize_t>(s.size()),
      &out, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | options));
  if (n < 0) fail("unicode normalization failed: {}", utf8proc_errmsg(n));
  std::string result(reinterpret_cast<char*>(out), static_cast<size_t>(n));
  std::free(out);
  return result;
}

void PrependNormalizer::apply(Piece& p) const {
  if (!p.text.empty()) prepend(p, prefix_);
}

void ReplaceNormalizer::apply(Piece& p) const {
  std::vector<std::pair<size_t, size_t>> matches;
  pattern_.find_all(p.text, matches);
  std::vector<Edit> edits;
  edits.reserve(matches.size());
  for (auto [begin, end] : matches) edits.push_back({begin, end, content_});
  apply_edits(p, edits);
}

void StripNormalizer::apply(Piece& p) const {
  size_t begin = 0, end = p.text.size();
  while (left_ && begin < end && is_white_space(decode_utf8(p.text, begin)))
    begin += utf8_length(p.text[begin]);
  while (right_ && end > begin) {
    size_t last = end - 1;
    while (last > begin && (static_cast<unsigned char>(p.text[last]) & 0xC0) == 0x80) --last;
    if (!is_white_space(decode_utf8(p.text, last))) break;
    end = last;
  }
  if (begin != 0 || end != p.text.size()) {
    Piece kept = slice(p, begin, end);
    if (p.orig.empty()) kept.orig_begin = p.orig_begin;
    p = std::move(kept);
  }
}

void SequenceNormalizer::apply(Piece& p) const {
  for (const auto& step : steps_) step->apply(p);
}

}  // namespace ls::data::hf
