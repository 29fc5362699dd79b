// UTF-8 helpers, character classes and the byte-level alphabet (unicode.h).
#include "data/tokenizer/hf/unicode.h"

#include <utf8proc.h>

namespace ls::data::hf {

bool is_word_char(char32_t c) {
  // Alphabetic is the letters, Nl and Other_Alphabetic: marks, and these symbols (circled and
  // squared Latin letters), the only Other_Alphabetic characters outside M.
  if ((c >= 0x24B6 && c <= 0x24E9) || (c >= 0x1F130 && c <= 0x1F149) ||
      (c >= 0x1F150 && c <= 0x1F169) || (c >= 0x1F170 && c <= 0x1F189))
    return true;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return c == 0x200C || c == 0x200D;
  }
}

ByteAlphabet::ByteAlphabet() {
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    byte_to_char[b] = printable ? char32_t(b) : next++;
    char_to_byte[byte_to_char[b]] = static_cast<unsigned char>(b);
  }
}

std::optional<std::string> ByteAlphabet::to_bytes(std::string_view s) const {
  std::string out;
  for (size_t i = 0; i < s.size(); i += utf8_length(s[i])) {
    auto it = char_to_byte.find(decode_utf8(s, i));
    if (it == char_to_byte.end()) return std::nullopt;
    out.push_back(static_cast<char>(it->second));
  }
  return out;
}

const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet table;
  return table;
}

}  // namespace ls::data::hf
