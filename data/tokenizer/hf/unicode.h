// UTF-8 and character classes for the tokenizer.json pipeline: decoding one character, Unicode
// White_Space and regex's \w (as Rust's char and regex crates define them, which `tokenizers`
// uses), and GPT-2's byte <-> character alphabet that byte-level vocabularies are written in.
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace ls::data::hf {

// Bytes in the UTF-8 sequence that starts with `lead`.
inline size_t utf8_length(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}
inline size_t utf8_length(char lead) {
  return utf8_length(static_cast<unsigned char>(lead));
}

// The character whose UTF-8 sequence starts at byte i of s (s is valid UTF-8).
inline char32_t decode_utf8(std::string_view s, size_t i) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + i;
  switch (utf8_length(p[0])) {
    case 1:
      return p[0];
    case 2:
      return (char32_t(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
    case 3:
      return (char32_t(p[0] & 0x0F) << 12) | (char32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    default:
      return (char32_t(p[0] & 0x07) << 18) | (char32_t(p[1] & 0x3F) << 12) |
             (char32_t(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
  }
}

// Unicode White_Space (Rust's char::is_whitespace, regex's \s).
inline bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// regex's \w (Rust's regex crate, which single_word uses): Alphabetic, marks, decimal digits,
// connector punctuation, joiners.
bool is_word_char(char32_t c);

// GPT-2's byte <-> character table (the ByteLevel alphabet): printable bytes stand for
// themselves, the others for U+0100 onwards.
struct ByteAlphabet {
  std::array<char32_t, 256> byte_to_char{};
  std::unordered_map<char32_t, unsigned char> char_to_byte;
  ByteAlphabet();
  // The bytes a vocabulary string stands for; nullopt when a character is outside the alphabet.
  std::optional<std::string> to_bytes(std::string_view s) const;
};
const ByteAlphabet& byte_alphabet();

// A string -> id map that finds string_views without copying them.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringMap = std::unordered_map<std::string, int, StringHash, std::equal_to<>>;

}  // namespace ls::data::hf
