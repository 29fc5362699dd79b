// Pattern: what normalizers and pre-tokenizers match, a literal string or a regex (PCRE2 with UTF
// and UCP, `\s` widened to Oniguruma's, which `tokenizers` compiles its regexes with).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct pcre2_real_code_8;  // pcre2_code (PCRE2_CODE_UNIT_WIDTH 8), kept out of this header

namespace ls::data::hf {

// Oniguruma's \s is Unicode White_Space, which PCRE2's UCP \s lacks U+0085 of: the pattern with
// it added, in classes and out.
std::string onig_compatible(const std::string& pattern);

class Pattern {
 public:
  Pattern() = default;
  static Pattern literal(std::string text);
  // Throws UserError (naming `where`) when PCRE2 rejects the regex.
  static Pattern regex(const std::string& source, const std::string& where);

  // Non-overlapping matches, left to right, as (begin, end) byte ranges; empty matches skipped.
  // `s` must be valid UTF-8 (checked once, when the pipeline starts).
  void find_all(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const;

 private:
  std::string literal_;
  std::shared_ptr<pcre2_real_code_8> code_;
  bool jit_ = false;
};

}  // namespace ls::data::hf
