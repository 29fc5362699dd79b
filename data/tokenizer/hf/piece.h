// Piece: a stretch of text on its way through the tokenizer.json pipeline, with (when word
// offsets are asked for) the input byte each of its bytes came from; what `tokenizers` calls a
// NormalizedString. Normalizers edit pieces, pre-tokenizers and added tokens cut them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ls::data::hf {

// `orig` (empty unless origins are tracked) gives, per byte of `text`, the input byte it came
// from; inserted characters take the byte of the character they precede.
struct Piece {
  std::string text;
  size_t orig_begin = 0;  // input byte where the piece begins (Metaspace's "first" needs it)
  std::vector<uint32_t> orig;
  int added_id = -1;  // an added token, matched whole: no normalizer, pre-tokenizer or model
};

// A piece whose every byte is its own origin (an input text, tracked).
Piece tracked_piece(std::string text);

// Bytes [begin, end) of p, their origins kept.
Piece slice(const Piece& p, size_t begin, size_t end);

// Replace source bytes [begin, end) with `with`.
struct Edit {
  size_t begin, end;
  std::string with;
};
// Rebuilds a piece from edits in order (non-overlapping, ascending); bytes outside the edited
// ranges are kept. Replacement bytes take the origin of the range's first byte.
void apply_edits(Piece& p, const std::vector<Edit>& edits);

void prepend(Piece& p, const std::string& prefix);

}  // namespace ls::data::hf
