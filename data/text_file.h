// TextFile: a data file read whole, checked to be UTF-8, and walked line by line with line
// numbers, so every reader can name `file:line` in its errors. Readers parse from here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ls::data {

// Returns the byte offset of the first invalid UTF-8 sequence in `text`, or npos when it is valid
// (overlong forms, surrogates and code points above U+10FFFF are invalid, as in RFC 3629).
size_t find_invalid_utf8(std::string_view text);

class TextFile {
 public:
  // Reads `path`; throws UserError when it is missing, unreadable, not UTF-8 (naming the line and
  // column) or holds nothing but whitespace. A UTF-8 byte order mark is dropped.
  static TextFile read(const std::string& path);
  // The same checks on text held in memory (`path` is the name used in errors).
  static TextFile from_string(std::string path, std::string contents);

  const std::string& path() const { return path_; }
  std::string_view contents() const { return contents_; }
  // "path:line", the prefix of every error about this file.
  std::string where(int64_t line) const;

  // Line cursor: next_line() yields each line without its "\n" or "\r\n" and its 1-based number.
  class LineCursor {
   public:
    explicit LineCursor(std::string_view text) : text_(text) {}
    bool next_line(std::string_view& line, int64_t& line_number);

   private:
    std::string_view text_;
    size_t pos_ = 0;
    int64_t line_ = 0;
  };
  LineCursor lines() const { return LineCursor(contents_); }

 private:
  TextFile(std::string path, std::string contents);
  std::string path_;
  std::string contents_;
};

// True when `line` is empty or only spaces, tabs and carriage returns.
bool is_blank(std::string_view line);

}  // namespace ls::data
