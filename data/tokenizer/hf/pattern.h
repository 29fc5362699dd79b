// Pattern: what normalizers and pre-tokenizers match, a literal string or a regex. `tokenizers`
// compiles its regexes with Oniguruma (Oniguruma syntax); here they run on PCRE2 (UTF, UCP), after
// a translation that keeps their meaning or refuses the construct (oniguruma_to_pcre2). Matches
// are found as the `onig` crate's find_iter finds them, empty matches included.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct pcre2_real_code_8;  // pcre2_code (PCRE2_CODE_UNIT_WIDTH 8), kept out of this header

namespace ls::data::hf {

// An Oniguruma regex rewritten for PCRE2 (compiled with UTF, UCP, MULTILINE and LF newlines, as
// `^`, `$` and `.` are in Oniguruma):
//   \s, \S      Unicode White_Space, which PCRE2's \s lacks U+0085 of
//   \h, \H      hex digit (PCRE2: horizontal space); \v is VT alone (PCRE2: vertical space)
//   \uHHHH      \x{HHHH};  X{,n} is X{0,n};  (?m) is (?s) (Oniguruma's m is dotall)
// and throws UserError (naming `where` and the construct) on constructs whose meaning differs and
// are not translated: \w \W \b \B (Oniguruma's word characters are not PCRE2's), \Q, \C, POSIX
// classes, nested classes and && inside a class, option letters other than i and m, X{n}? and
// X{n,m}+ (Oniguruma: optional and repeated; PCRE2: lazy and possessive).
std::string oniguruma_to_pcre2(const std::string& pattern, const std::string& where);

class Pattern {
 public:
  Pattern() = default;
  // `tokenizers` escapes a string pattern into a regex: "" matches the empty string everywhere.
  static Pattern literal(std::string text);
  // Throws UserError (naming `where`) when the regex is refused or PCRE2 rejects it.
  static Pattern regex(const std::string& source, const std::string& where);

  // Matches left to right, as (begin, end) byte ranges, as `onig`'s find_iter gives them: after a
  // match ending at e, the next starts at e, and an empty match at e is skipped (the search moves
  // one character on). An empty `s` has no matches (tokenizers' find_matches). `s` must be valid
  // UTF-8 (checked once, when the pipeline starts).
  void find_all(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const;

 private:
  std::string literal_;
  std::shared_ptr<pcre2_real_code_8> code_;
  bool jit_ = false;
};

}  // namespace ls::data::hf
