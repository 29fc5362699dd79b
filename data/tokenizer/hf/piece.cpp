// Pieces of text with their origins: slicing and editing (piece.h).
#include "data/tokenizer/hf/piece.h"

namespace ls::data::hf {

Piece tracked_piece(std::string text) {
  Piece p{std::move(text), 0, {}, -1};
  p.orig.resize(p.text.size());
  for (size_t i = 0; i < p.text.size(); ++i) p.orig[i] = static_cast<uint32_t>(i);
  return p;
}

Piece slice(const Piece& p, size_t begin, size_t end) {
  Piece out;
  out.text = p.text.substr(begin, end - begin);
  if (!p.orig.empty()) {
    out.orig.assign(p.orig.begin() + static_cast<ptrdiff_t>(begin),
                    p.orig.begin() + static_cast<ptrdiff_t>(end));
    out.orig_begin = begin < p.orig.size() ? p.orig[begin] : p.orig_begin;
  } else {
    out.orig_begin = p.orig_begin + begin;
  }
  return out;
}

void apply_edits(Piece& p, const std::vector<Edit>& edits) {
  if (edits.empty()) return;
  std::string text;
  std::vector<uint32_t> orig;
  const bool track = !p.orig.empty();
  size_t at = 0;
  auto keep = [&](size_t end) {
    text.append(p.text, at, end - at);
    if (track) orig.insert(orig.end(), p.orig.begin() + at, p.orig.begin() + end);
  };
  for (const Edit& e : edits) {
    keep(e.begin);
    text.append(e.with);
    if (track) {
      const uint32_t o = e.begin < p.orig.size() ? p.orig[e.begin] : p.orig.back() + 1;
      orig.insert(orig.end(), e.with.size(), o);
    }
    at = e.end;
  }
  keep(p.text.size());
  p.text = std::move(text);
  if (track) p.orig = std::move(orig);
}

void prepend(Piece& p, const std::string& prefix) {
  apply_edits(p, {{0, 0, prefix}});
}

}  // namespace ls::data::hf
