// Literal and PCRE2 patterns, and the Oniguruma -> PCRE2 translation (pattern.h).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "data/tokenizer/hf/pattern.h"

#include <pcre2.h>

#include <cctype>

#include "core/base/error.h"  // header-only: UserError, fail()
#include "data/tokenizer/hf/unicode.h"

namespace ls::data::hf {
namespace {

bool is_digit(char c) {
  return std::isdigit(static_cast<unsigned char>(c)) != 0;
}

// The '}' closing a quantifier interval {n}, {n,}, {n,m} or {,m} that opens at `open`, or npos
// (then the brace is a literal, in both syntaxes).
size_t interval_end(const std::string& p, size_t open) {
  size_t i = open + 1, digits = 0;
  while (i < p.size() && is_digit(p[i])) ++i, ++digits;
  if (i < p.size() && p[i] == ',') {
    ++i;
    while (i < p.size() && is_digit(p[i])) ++i, ++digits;
  }
  return i < p.size() && p[i] == '}' && digits > 0 ? i : std::string::npos;
}

[[noreturn]] void refuse_construct(const std::string& where, const std::string& pattern,
                                   const std::string& construct, const char* why) {
  fail("{}: regex /{}/ uses {}, which {} (tokenizer.json reader: not supported)", where, pattern,
       construct, why);
}

}  // namespace

std::string oniguruma_to_pcre2(const std::string& pattern, const std::string& where) {
  const auto refuse = [&](const std::string& construct, const char* why) {
    refuse_construct(where, pattern, construct, why);
  };
  const char* const word = "means Oniguruma's word characters, not PCRE2's";
  std::string out;
  bool in_class = false;
  const size_t n = pattern.size();
  for (size_t i = 0; i < n; ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < n) {
      const char e = pattern[++i];
      switch (e) {
        case 's':
          out += in_class ? "\\s\\x{85}" : "[\\s\\x{85}]";
          break;
        case 'S':
          out += in_class ? "\\P{White_Space}" : "[^\\s\\x{85}]";
          break;
        case 'h':
          out += in_class ? "0-9a-fA-F" : "[0-9a-fA-F]";
          break;
        case 'H':
          if (in_class) refuse("\\H in a character class", "means a non-hex-digit in Oniguruma");
          out += "[^0-9a-fA-F]";
          break;
        case 'v':
          out += "\\x0B";
          break;
        case 'u':
          if (i + 4 < n && std::isxdigit(static_cast<unsigned char>(pattern[i + 1])) &&
              std::isxdigit(static_cast<unsigned char>(pattern[i + 2])) &&
              std::isxdigit(static_cast<unsigned char>(pattern[i + 3])) &&
              std::isxdigit(static_cast<unsigned char>(pattern[i + 4]))) {
            out += "\\x{" + pattern.substr(i + 1, 4) + "}";
            i += 4;
          } else {
            out += "\\u";  // PCRE2 rejects it, as Oniguruma does
          }
          break;
        case 'w':
        case 'W':
          refuse_construct(where, pattern, std::string("\\") + e, word);
        case 'b':
        case 'B':
          if (in_class) {
            out += {'\\', e};
            break;
          }
          refuse_construct(where, pattern, std::string("\\") + e,
                           "is a boundary of Oniguruma's word characters, not PCRE2's");
        case 'Q':
          refuse_construct(where, pattern, "\\Q", "is not a quotation in Oniguruma");
        case 'C':
          refuse_construct(where, pattern, "\\C",
                           "is a control character in Oniguruma (\\C-x), one byte in PCRE2");
        case 'x':
        case 'p':
        case 'P':
        case 'o': {
          out += {'\\', e};
          if (i + 1 < n && pattern[i + 1] == '{') {  // \x{41}, \p{L}: braces are no interval
            const size_t close = pattern.find('}', i + 1);
            const size_t end = close == std::string::npos ? n - 1 : close;
            out.append(pattern, i + 1, end - i);
            i = end;
          }
          break;
        }
        default:
          out += {'\\', e};
      }
      continue;
    }
    if (in_class) {
      if (c == '[')
        refuse(i + 1 < n && pattern[i + 1] == ':' ? "a POSIX class [:...:]"
                                                  : "a character class inside a class",
               "Oniguruma reads otherwise than PCRE2");
      if (c == '&' && i + 1 < n && pattern[i + 1] == '&')
        refuse("&& in a character class", "is an intersection in Oniguruma, literal in PCRE2");
      if (c == ']') in_class = false;
      out.push_back(c);
      continue;
    }
    if (c == '[') {
      in_class = true;
      out.push_back(c);
      if (i + 1 < n && pattern[i + 1] == '^') out.push_back(pattern[++i]);
      if (i + 1 < n && pattern[i + 1] == ']') out.push_back(pattern[++i]);
      continue;
    }
    if (c == '(' && i + 2 < n && pattern[i + 1] == '?') {
      // An option group (?imx-imx) or (?imx-imx:...): letters up to ')' or ':'.
      size_t end = i + 2;
      while (end < n &&
             (std::isalpha(static_cast<unsigned char>(pattern[end])) || pattern[end] == '-'))
        ++end;
      if (end > i + 2 && end < n && (pattern[end] == ')' || pattern[end] == ':')) {
        out += "(?";
        for (size_t k = i + 2; k < end; ++k) {
          const char option = pattern[k];
          if (option == 'm')
            out.push_back('s');  // Oniguruma's (?m) is dotall; ^ and $ are always line anchors
          else if (option == 'i' || option == '-')
            out.push_back(option);
          else
            refuse(fmt::format("the option (?{})", option),
                   "Oniguruma and PCRE2 mean differently or only one of them knows");
        }
        i = end - 1;
        continue;
      }
    }
    if (c == '{') {
      const size_t close = interval_end(pattern, i);
      if (close != std::string::npos) {
        const std::string interval = pattern.substr(i, close + 1 - i);
        const bool fixed = interval.find(',') == std::string::npos;
        if (close + 1 < n && pattern[close + 1] == '+')
          refuse(interval + "+", "repeats the interval in Oniguruma, is possessive in PCRE2");
        if (fixed && close + 1 < n && pattern[close + 1] == '?')
          refuse(interval + "?", "makes the interval optional in Oniguruma, lazy in PCRE2");
        out += interval[1] == ',' ? "{0" + interval.substr(1) : interval;
        i = close;
        continue;
      }
    }
    out.push_back(c);
  }
  return out;
}

Pattern Pattern::literal(std::string text) {
  Pattern p;
  p.literal_ = std::move(text);
  return p;
}

Pattern Pattern::regex(const std::string& source, const std::string& where) {
  Pattern p;
  const std::string translated = oniguruma_to_pcre2(source, where);
  // Oniguruma's newline is LF alone: `.` matches \r, `$` comes before \n.
  std::unique_ptr<pcre2_compile_context, decltype(&pcre2_compile_context_free)> context(
      pcre2_compile_context_create(nullptr), pcre2_compile_context_free);
  pcre2_set_newline(context.get(), PCRE2_NEWLINE_LF);
  pcre2_set_bsr(context.get(), PCRE2_BSR_UNICODE);
  int code = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* compiled =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                    PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &code, &offset, context.get());
  if (!compiled) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(code, message, sizeof message);
    fail("{}: regex /{}/ does not compile at offset {}: {}", where, source, offset,
         reinterpret_cast<const char*>(message));
  }
  p.jit_ = pcre2_jit_compile(compiled, PCRE2_JIT_COMPLETE) == 0;
  p.code_ = std::shared_ptr<pcre2_code>(compiled, pcre2_code_free);
  return p;
}

void Pattern::find_all(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const {
  out.clear();
  if (s.empty()) return;
  if (!code_) {
    if (literal_.empty()) {  // the regex "": an empty match at every character boundary
      for (size_t at = 0; at < s.size(); at += utf8_length(s[at])) out.emplace_back(at, at);
      out.emplace_back(s.size(), s.size());
      return;
    }
    for (size_t at = s.find(literal_); at != std::string_view::npos;
         at = s.find(literal_, at + literal_.size()))
      out.emplace_back(at, at + literal_.size());
    return;
  }
  thread_local std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> data(
      pcre2_match_data_create(1, nullptr), pcre2_match_data_free);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  size_t at = 0, last_end = std::string_view::npos;
  while (at <= s.size()) {
    const int rc = jit_ ? pcre2_jit_match(code_.get(), subject, s.size(), at, PCRE2_NO_UTF_CHECK,
                                          data.get(), nullptr)
                        : pcre2_match(code_.get(), subject, s.size(), at, PCRE2_NO_UTF_CHECK,
                                      data.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof message);
      fail("regex match failed: {}", reinterpret_cast<const char*>(message));
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data.get());
    const size_t begin = ovector[0], end = ovector[1];
    if (begin == end && end == last_end) {  // no empty match right after the last match
      if (at >= s.size()) break;
      at += utf8_length(s[at]);
      continue;
    }
    out.emplace_back(begin, end);
    at = last_end = end;
  }
}

}  // namespace ls::data::hf
