// TextFile and the UTF-8 check (see text_file.h).
#include "data/text_file.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/base/error.h"

namespace ls::data {

size_t find_invalid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    // ASCII fast path, eight bytes at a time.
    while (i + 8 <= n) {
      uint64_t word;
      __builtin_memcpy(&word, s + i, 8);
      if (word & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    int extra;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the first continuation byte
    if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      if (c == 0xE0) lo = 0xA0;  // no overlong forms
      if (c == 0xED) hi = 0x9F;  // no UTF-16 surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      if (c == 0xF0) lo = 0x90;  // no overlong forms
      if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
    } else {
      return i;
    }
    if (i + extra >= n) return i;  // truncated sequence at the end
    if (s[i + 1] < lo || s[i + 1] > hi) return i;
    for (int k = 2; k <= extra; ++k)
      if ((s[i + k] & 0xC0) != 0x80) return i;
    i += extra + 1;
  }
  return std::string_view::npos;
}

bool is_blank(std::string_view line) {
  for (char c : line)
    if (c != ' ' && c != '\t' && c != '\r') return false;
  return true;
}

TextFile::TextFile(std::string path, std::string contents)
    : path_(std::move(path)), contents_(std::move(contents)) {}

TextFile TextFile::read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open data file", path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) fail("{}: read error", path);
  return from_string(path, std::move(buffer).str());
}

TextFile TextFile::from_string(std::string path, std::string contents) {
  if (contents.starts_with("\xEF\xBB\xBF")) contents.erase(0, 3);
  TextFile file(std::move(path), std::move(contents));
  const std::string_view text = file.contents_;
  if (size_t bad = find_invalid_utf8(text); bad != std::string_view::npos) {
    const size_t newline = text.rfind('\n', bad);  // text[bad] is not ASCII, so not '\n'
    const size_t column = bad - (newline == std::string_view::npos ? 0 : newline + 1) + 1;
    const int64_t line = 1 + std::count(text.begin(), text.begin() + bad, '\n');
    fail("{}:{}: invalid UTF-8 at byte {} of the line (byte 0x{:02X})", file.path_, line, column,
         static_cast<unsigned char>(text[bad]));
  }
  bool empty = true;
  for (char c : text)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
      empty = false;
      break;
    }
  if (empty) fail("{}: empty file (no examples)", file.path_);
  return file;
}

std::string TextFile::where(int64_t line) const {
  return fmt::format("{}:{}", path_, line);
}

bool TextFile::LineCursor::next_line(std::string_view& line, int64_t& line_number) {
  if (pos_ >= text_.size()) return false;
  size_t end = text_.find('\n', pos_);
  if (end == std::string_view::npos) end = text_.size();
  line = text_.substr(pos_, end - pos_);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  pos_ = end + 1;
  line_number = ++line_;
  return true;
}

}  // namespace ls::data
