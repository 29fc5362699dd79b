// UTF-8 text as code points and words, without a Unicode library: what the character caps, the
// HF API's character offsets and the split of a text into words agree on.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string_view>

namespace ls {

// A byte that continues a code point (10xxxxxx) rather than starting one.
inline bool is_utf8_continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

// Code points in valid UTF-8 (Python's len() of the decoded str).
inline size_t utf8_code_points(std::string_view text) {
  return static_cast<size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return !is_utf8_continuation(c); }));
}

// The C locale's whitespace: where std::istringstream >> splits a text into words.
inline bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

}  // namespace ls
