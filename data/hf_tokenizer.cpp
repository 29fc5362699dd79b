// The tokenizer.json backend of data::Tokenizer: HF `tokenizers`' pipeline for BPE models, step
// by step as that library runs it, so ids are equal to its `encode(text).ids`:
//   added tokens matched in the raw text -> normalizer -> added tokens matched in the normalized
//   text -> pre-tokenizer (regex Split, ByteLevel, Metaspace, Digits) -> BPE by merge rank ->
//   post-processor (TemplateProcessing: BOS or nothing).
// Byte-level models (LLaMA-3, Qwen2, Mistral-Nemo) run BPE on the text's bytes (the vocabulary is
// mapped back from GPT-2's byte-to-character alphabet once, at load); sentencepiece-style ones
// (LLaMA-2/Mistral as HF converts them) on characters, with byte fallback. Regexes are PCRE2
// (UTF + UCP), NFC is utf8proc. Anything else is refused naming the JSON key. docs/TOKENIZERS.md.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <unordered_map>

#include "core/base/error.h"  // header-only: UserError, fail()
#include "data/text_file.h"
#include "data/tokenizer_backend.h"

namespace ls::data {
namespace {

using json = nlohmann::json;

// ---- UTF-8 and character classes -----------------------------------------------------------

size_t utf8_length(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

char32_t decode_utf8(std::string_view s, size_t i) {
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
bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// regex's \w: letters, marks, decimal digits, connector punctuation, joiners.
bool is_word_char(char32_t c) {
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

// GPT-2's byte <-> character table (the ByteLevel alphabet): printable bytes stand for
// themselves, the others for U+0100 onwards.
struct ByteAlphabet {
  std::array<char32_t, 256> byte_to_char{};
  std::unordered_map<char32_t, unsigned char> char_to_byte;
  ByteAlphabet() {
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
      byte_to_char[b] = printable ? char32_t(b) : next++;
      char_to_byte[byte_to_char[b]] = static_cast<unsigned char>(b);
    }
  }
  // The bytes a vocabulary string stands for; nullopt when a character is outside the alphabet.
  std::optional<std::string> to_bytes(std::string_view s) const {
    std::string out;
    for (size_t i = 0; i < s.size(); i += utf8_length(s[i])) {
      auto it = char_to_byte.find(decode_utf8(s, i));
      if (it == char_to_byte.end()) return std::nullopt;
      out.push_back(static_cast<char>(it->second));
    }
    return out;
  }
};

const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet table;
  return table;
}

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringMap = std::unordered_map<std::string, int, StringHash, std::equal_to<>>;

// ---- Text with its origin ----------------------------------------------------------------------

// A stretch of text on its way through the pipeline. `orig` (kept only when word offsets are
// asked for) gives, per byte of `text`, the input byte it came from; inserted characters take
// the byte of the character they precede.
struct Piece {
  std::string text;
  size_t orig_begin = 0;  // input byte where the piece begins (Metaspace's "first" needs it)
  std::vector<uint32_t> orig;
  int added_id = -1;  // an added token, matched whole: no normalizer, pre-tokenizer or model
};

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

// Rebuilds a piece from (source range, replacement) edits in order; bytes outside the edited
// ranges are kept. Replacement bytes take the origin of the range's first byte.
struct Edit {
  size_t begin, end;
  std::string with;
};
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

// ---- Patterns: literal strings or PCRE2 regexes ------------------------------------------------

// Oniguruma's \s (what tokenizers compiles patterns with) is Unicode White_Space, which PCRE2's
// UCP \s lacks U+0085 of: add it, in classes and out.
std::string onig_compatible(const std::string& pattern) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[++i];
      if (e == 's')
        out += in_class ? "\\s\\x{85}" : "[\\s\\x{85}]";
      else if (e == 'S' && !in_class)
        out += "[^\\s\\x{85}]";
      else
        out += {c, e};
      continue;
    }
    out.push_back(c);
    if (!in_class && c == '[') {
      in_class = true;
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out.push_back(pattern[++i]);
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out.push_back(pattern[++i]);
    } else if (in_class && c == '[' && i + 1 < pattern.size() && pattern[i + 1] == ':') {
      const size_t close = pattern.find(":]", i + 2);
      if (close != std::string::npos) {
        out.append(pattern, i + 1, close + 2 - (i + 1));
        i = close + 1;
      }
    } else if (in_class && c == ']') {
      in_class = false;
    }
  }
  return out;
}

class Pattern {
 public:
  static Pattern literal(std::string text) {
    Pattern p;
    p.literal_ = std::move(text);
    return p;
  }
  // Throws UserError (naming `where`) when PCRE2 rejects the regex.
  static Pattern regex(const std::string& source, const std::string& where) {
    Pattern p;
    const std::string translated = onig_compatible(source);
    int code = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code* compiled =
        pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                      PCRE2_UTF | PCRE2_UCP, &code, &offset, nullptr);
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

  // Non-overlapping matches, left to right, as (begin, end) byte ranges; empty matches skipped.
  void find_all(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const {
    out.clear();
    if (!code_) {
      if (literal_.empty()) return;
      for (size_t at = s.find(literal_); at != std::string_view::npos;
           at = s.find(literal_, at + literal_.size()))
        out.emplace_back(at, at + literal_.size());
      return;
    }
    thread_local std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> data(
        pcre2_match_data_create(1, nullptr), pcre2_match_data_free);
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
    size_t at = 0;
    while (at <= s.size()) {
      // The text was checked to be UTF-8 once, on entry (Encoder::run).
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
      if (end > begin) {
        out.emplace_back(begin, end);
        at = end;
      } else {
        if (begin >= s.size()) break;
        at = begin + utf8_length(s[begin]);
      }
    }
  }

 private:
  std::string literal_;
  std::shared_ptr<pcre2_code> code_;
  bool jit_ = false;
};

// ---- JSON access with errors naming the key ----------------------------------------------------

class JsonReader {
 public:
  explicit JsonReader(std::string path) : path_(std::move(path)) {}
  const std::string& path() const { return path_; }

  [[noreturn]] void unsupported(const std::string& key, const std::string& value,
                                const std::string& supported) const {
    fail("{}: {} \"{}\" is not supported (tokenizer.json reader: {})", path_, key, value,
         supported);
  }
  const json& at(const json& j, const std::string& parent, const char* name) const {
    if (!j.is_object() || !j.contains(name)) fail("{}: {}.{} is missing", path_, parent, name);
    return j.at(name);
  }
  std::string string(const json& j, const std::string& parent, const char* name) const {
    const json& v = at(j, parent, name);
    if (!v.is_string()) fail("{}: {}.{} should be a string", path_, parent, name);
    return v.get<std::string>();
  }
  template <typename T>
  T value(const json& j, const char* name, T fallback, const std::string& parent) const {
    if (!j.contains(name) || j.at(name).is_null()) return fallback;
    try {
      return j.at(name).get<T>();
    } catch (const json::exception&) {
      fail("{}: {}.{} has the wrong type", path_, parent, name);
    }
  }
  std::string type(const json& j, const std::string& key) const { return string(j, key, "type"); }

 private:
  std::string path_;
};

// ---- Normalizers -------------------------------------------------------------------------------

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void apply(Piece& p) const = 0;
};

// NFC/NFD/NFKC/NFKD by utf8proc. With origins kept, text is normalized in stretches between
// spaces (nothing composes across a space, so the text is the same) and each stretch's bytes
// take the origin of its first byte.
class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(int options) : options_(options) {}
  void apply(Piece& p) const override {
    if (std::all_of(p.text.begin(), p.text.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
      return;  // ASCII is in every normal form
    std::string text = normalize(p.text);
    if (!p.orig.empty()) {
      std::vector<uint32_t> orig;
      orig.reserve(text.size());
      for (size_t at = 0; at < p.text.size();) {
        size_t end = p.text[at] == ' ' ? at + 1 : p.text.find(' ', at);
        if (end == std::string::npos) end = p.text.size();
        orig.insert(orig.end(), normalize(p.text.substr(at, end - at)).size(), p.orig[at]);
        at = end;
      }
      if (orig.size() != text.size()) orig.assign(text.size(), p.orig.front());
      p.orig = std::move(orig);
    }
    p.text = std::move(text);
  }

 private:
  std::string normalize(const std::string& s) const {
    utf8proc_uint8_t* out = nullptr;
    const utf8proc_ssize_t n =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                     static_cast<utf8proc_ssize_t>(s.size()), &out,
                     static_cast<utf8proc_option_t>(UTF8PROC_STABLE | options_));
    if (n < 0) fail("unicode normalization failed: {}", utf8proc_errmsg(n));
    std::string result(reinterpret_cast<char*>(out), static_cast<size_t>(n));
    std::free(out);
    return result;
  }
  int options_;
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void apply(Piece& p) const override {
    if (!p.text.empty()) prepend(p, prefix_);
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void apply(Piece& p) const override {
    std::vector<std::pair<size_t, size_t>> matches;
    pattern_.find_all(p.text, matches);
    std::vector<Edit> edits;
    edits.reserve(matches.size());
    for (auto [begin, end] : matches) edits.push_back({begin, end, content_});
    apply_edits(p, edits);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void apply(Piece& p) const override {
    size_t begin = 0, end = p.text.size();
    while (left_ && begin < end && is_white_space(decode_utf8(p.text, begin)))
      begin += utf8_length(p.text[begin]);
    while (right_ && end > begin) {
      size_t last = end - 1;
      while (last > begin && (static_cast<unsigned char>(p.text[last]) & 0xC0) == 0x80) --last;
      if (!is_white_space(decode_utf8(p.text, last))) break;
      end = last;
    }
    if (begin != 0 || end != p.text.size()) {
      Piece kept = slice(p, begin, end);
      if (p.orig.empty()) kept.orig_begin = p.orig_begin;
      p = std::move(kept);
    }
  }

 private:
  bool left_, right_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
      : steps_(std::move(steps)) {}
  void apply(Piece& p) const override {
    for (const auto& step : steps_) step->apply(p);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

Pattern read_pattern(const JsonReader& r, const json& j, const std::string& key) {
  const json& pattern = r.at(j, key, "pattern");
  if (pattern.contains("String"))
    return Pattern::literal(r.string(pattern, key + ".pattern", "String"));
  if (pattern.contains("Regex"))
    return Pattern::regex(r.string(pattern, key + ".pattern", "Regex"),
                          r.path() + ": " + key + ".pattern");
  fail("{}: {}.pattern should hold \"String\" or \"Regex\"", r.path(), key);
}

std::unique_ptr<Normalizer> read_normalizer(const JsonReader& r, const json& j,
                                            const std::string& key) {
  if (j.is_null()) return nullptr;
  const std::string type = r.type(j, key);
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(UTF8PROC_COMPOSE);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(UTF8PROC_DECOMPOSE);
  if (type == "NFKC")
    return std::make_unique<UnicodeNormalizer>(UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
  if (type == "NFKD")
    return std::make_unique<UnicodeNormalizer>(UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(r.string(j, key, "prepend"));
  if (type == "Replace")
    return std::make_unique<ReplaceNormalizer>(read_pattern(r, j, key),
                                               r.string(j, key, "content"));
  if (type == "Strip")
    return std::make_unique<StripNormalizer>(r.value(j, "strip_left", true, key),
                                             r.value(j, "strip_right", true, key));
  if (type == "Sequence") {
    const json& list = r.at(j, key, "normalizers");
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (size_t i = 0; i < list.size(); ++i)
      if (auto step = read_normalizer(r, list[i], fmt::format("{}.normalizers[{}]", key, i)))
        steps.push_back(std::move(step));
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  r.unsupported(key + ".type", type, "NFC, NFD, NFKC, NFKD, Prepend, Replace, Strip, Sequence");
}

// ---- Pre-tokenizers ----------------------------------------------------------------------------

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// Cuts a piece at a pattern's matches the way tokenizers' NormalizedString::split does.
void split_piece(const Piece& p, const Pattern& pattern, SplitBehavior behavior, bool invert,
                 std::vector<Piece>& out) {
  std::vector<std::pair<size_t, size_t>> found;
  pattern.find_all(p.text, found);
  struct Part {
    size_t begin, end;
    bool match;
  };
  std::vector<Part> parts;
  parts.reserve(2 * found.size() + 1);
  size_t prev = 0;
  for (auto [begin, end] : found) {
    if (begin != prev) parts.push_back({prev, begin, invert});
    parts.push_back({begin, end, !invert});
    prev = end;
  }
  if (prev != p.text.size()) parts.push_back({prev, p.text.size(), invert});

  std::vector<std::pair<size_t, size_t>> kept;
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const Part& part : parts)
        if (!part.match) kept.emplace_back(part.begin, part.end);
      break;
    case SplitBehavior::kIsolated:
      for (const Part& part : parts) kept.emplace_back(part.begin, part.end);
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const Part& part : parts) {
        if (part.match && !previous_match && !kept.empty())
          kept.back().second = part.end;
        else
          kept.emplace_back(part.begin, part.end);
        previous_match = part.match;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (size_t k = parts.size(); k-- > 0;) {
        const Part& part = parts[k];
        if (part.match && !previous_match && !kept.empty())
          kept.back().first = part.begin;
        else
          kept.emplace_back(part.begin, part.end);
        previous_match = part.match;
      }
      std::reverse(kept.begin(), kept.end());
      break;
    case SplitBehavior::kContiguous:
      for (size_t k = 0; k < parts.size(); ++k) {
        if (k > 0 && parts[k].match == previous_match)
          kept.back().second = parts[k].end;
        else
          kept.emplace_back(parts[k].begin, parts[k].end);
        previous_match = parts[k].match;
      }
      break;
  }
  for (auto [begin, end] : kept)
    if (end > begin) out.push_back(slice(p, begin, end));
}

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void split(const Piece& p, std::vector<Piece>& out) const = 0;
};

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void split(const Piece& p, std::vector<Piece>& out) const override {
    split_piece(p, pattern_, behavior_, invert_, out);
  }

 private:
  Pattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

// ByteLevel: an optional leading space and GPT-2's split; its byte-to-character mapping is the
// model's business here (byte-level BPE runs on bytes).
class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {
    if (use_regex)
      gpt2_ = Pattern::regex(
          R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)",
          "ByteLevel");
  }
  void split(const Piece& p, std::vector<Piece>& out) const override {
    Piece piece = p;
    if (add_prefix_space_ && piece.text.front() != ' ') prepend(piece, " ");
    if (use_regex_)
      split_piece(piece, gpt2_, SplitBehavior::kIsolated, false, out);
    else
      out.push_back(std::move(piece));
  }

 private:
  bool add_prefix_space_, use_regex_;
  Pattern gpt2_;
};

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  enum class Prepend { kAlways, kFirst, kNever };
  MetaspacePreTokenizer(std::string replacement, Prepend scheme, bool split)
      : replacement_(std::move(replacement)),
        scheme_(scheme),
        split_(split),
        separator_(Pattern::literal(replacement_)),
        space_(Pattern::literal(" ")) {}
  void split(const Piece& p, std::vector<Piece>& out) const override {
    Piece piece = p;
    std::vector<std::pair<size_t, size_t>> spaces;
    space_.find_all(piece.text, spaces);
    std::vector<Edit> edits;
    for (auto [begin, end] : spaces) edits.push_back({begin, end, replacement_});
    apply_edits(piece, edits);
    const bool starts = piece.text.starts_with(replacement_);
    if (!starts &&
        (scheme_ == Prepend::kAlways || (scheme_ == Prepend::kFirst && p.orig_begin == 0)))
      prepend(piece, replacement_);
    if (split_)
      split_piece(piece, separator_, SplitBehavior::kMergedWithNext, false, out);
    else
      out.push_back(std::move(piece));
  }

 private:
  std::string replacement_;
  Prepend scheme_;
  bool split_;
  Pattern separator_, space_;
};

// A parsed pre-tokenizer: its steps in order, and whether the model sees bytes (a ByteLevel step,
// which must come last since later steps would see its characters).
struct PreTokenizerChain {
  std::vector<std::unique_ptr<PreTokenizer>> steps;
  bool byte_level = false;
};

SplitBehavior read_behavior(const JsonReader& r, const json& j, const std::string& key) {
  const std::string name = r.string(j, key, "behavior");
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  r.unsupported(key + ".behavior", name,
                "Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous");
}

void read_pre_tokenizer(const JsonReader& r, const json& j, const std::string& key,
                        PreTokenizerChain& chain) {
  if (j.is_null()) return;
  if (chain.byte_level)
    fail(
        "{}: {} comes after a ByteLevel pre-tokenizer (tokenizer.json reader: ByteLevel must be "
        "the last step)",
        r.path(), key);
  const std::string type = r.type(j, key);
  if (type == "Sequence") {
    const json& list = r.at(j, key, "pretokenizers");
    for (size_t i = 0; i < list.size(); ++i)
      read_pre_tokenizer(r, list[i], fmt::format("{}.pretokenizers[{}]", key, i), chain);
  } else if (type == "Split") {
    chain.steps.push_back(std::make_unique<SplitPreTokenizer>(
        read_pattern(r, j, key), read_behavior(r, j, key), r.value(j, "invert", false, key)));
  } else if (type == "ByteLevel") {
    chain.steps.push_back(std::make_unique<ByteLevelPreTokenizer>(
        r.value(j, "add_prefix_space", true, key), r.value(j, "use_regex", true, key)));
    chain.byte_level = true;
  } else if (type == "Metaspace") {
    const std::string replacement = r.string(j, key, "replacement");
    auto scheme = MetaspacePreTokenizer::Prepend::kAlways;
    if (j.contains("prepend_scheme")) {
      const std::string name = r.string(j, key, "prepend_scheme");
      if (name == "first")
        scheme = MetaspacePreTokenizer::Prepend::kFirst;
      else if (name == "never")
        scheme = MetaspacePreTokenizer::Prepend::kNever;
      else if (name != "always")
        r.unsupported(key + ".prepend_scheme", name, "always, first, never");
    } else if (!r.value(j, "add_prefix_space", true, key)) {
      scheme = MetaspacePreTokenizer::Prepend::kNever;
    }
    chain.steps.push_back(std::make_unique<MetaspacePreTokenizer>(replacement, scheme,
                                                                  r.value(j, "split", true, key)));
  } else if (type == "Digits") {
    // Rust's char::is_numeric is \p{N}; runs of digits stay together unless individual_digits.
    const bool individual = r.value(j, "individual_digits", false, key);
    chain.steps.push_back(std::make_unique<SplitPreTokenizer>(
        Pattern::regex("\\p{N}", key),
        individual ? SplitBehavior::kIsolated : SplitBehavior::kContiguous, false));
  } else {
    r.unsupported(key + ".type", type, "Split, ByteLevel, Metaspace, Digits, Sequence");
  }
}

// ---- Added tokens ------------------------------------------------------------------------------

struct AddedToken {
  std::string content;
  int id = -1;
  bool special = false, normalized = true, lstrip = false, rstrip = false, single_word = false;
};

// Finds added tokens in a text as tokenizers' AddedVocabulary does: leftmost-longest,
// non-overlapping matches of the contents, then the single_word / lstrip / rstrip rules.
class AddedTokenMatcher {
 public:
  void add(std::string pattern, const AddedToken* token) {
    if (pattern.empty()) return;
    const auto first = static_cast<unsigned char>(pattern[0]);
    entries_.push_back({std::move(pattern), token});
    auto& bucket = by_first_byte_[first];
    bucket.push_back(entries_.size() - 1);
    std::stable_sort(bucket.begin(), bucket.end(), [&](size_t a, size_t b) {
      return entries_[a].pattern.size() > entries_[b].pattern.size();
    });
  }
  bool empty() const { return entries_.empty(); }

  // Splits `p` into added-token pieces and the text between them (empty pieces dropped).
  void split(const Piece& p, std::vector<Piece>& out) const {
    if (entries_.empty()) {
      if (!p.text.empty()) out.push_back(p);
      return;
    }
    const std::string& s = p.text;
    size_t start_offset = 0;
    for (size_t at = 0; at < s.size();) {
      const Entry* found = nullptr;
      for (size_t index : by_first_byte_[static_cast<unsigned char>(s[at])]) {
        const Entry& e = entries_[index];
        if (s.compare(at, e.pattern.size(), e.pattern) == 0) {
          found = &e;
          break;
        }
      }
      if (!found) {
        ++at;
        continue;
      }
      size_t start = at, stop = at + found->pattern.size();
      at = stop;
      const AddedToken& token = *found->token;
      if (token.single_word) {
        const bool start_space = start == 0 || !ends_with_word_char(s, start);
        const bool stop_space = stop == s.size() || !is_word_char(decode_utf8(s, stop));
        if (!start_space || !stop_space) continue;
      }
      if (token.lstrip) start = std::max(start_of_trailing_space(s, start), start_offset);
      if (token.rstrip)
        while (stop < s.size() && is_white_space(decode_utf8(s, stop)))
          stop += utf8_length(s[stop]);
      if (start_offset < start) out.push_back(slice(p, start_offset, start));
      Piece piece = slice(p, start, stop);
      piece.added_id = token.id;
      out.push_back(std::move(piece));
      start_offset = stop;
    }
    if (start_offset < s.size()) out.push_back(slice(p, start_offset, s.size()));
  }

 private:
  struct Entry {
    std::string pattern;
    const AddedToken* token;
  };
  static size_t previous_char(const std::string& s, size_t end) {
    size_t i = end - 1;
    while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
    return i;
  }
  static bool ends_with_word_char(const std::string& s, size_t end) {
    return is_word_char(decode_utf8(s, previous_char(s, end)));
  }
  static size_t start_of_trailing_space(const std::string& s, size_t end) {
    while (end > 0) {
      const size_t i = previous_char(s, end);
      if (!is_white_space(decode_utf8(s, i))) break;
      end = i;
    }
    return end;
  }
  std::vector<Entry> entries_;
  std::array<std::vector<size_t>, 256> by_first_byte_;
};

// ---- BPE ---------------------------------------------------------------------------------------

// One token of a word: its id and the byte of the word where it begins.
struct Symbol {
  int id;
  uint32_t begin;
};

class Bpe {
 public:
  Bpe(const JsonReader& r, const json& model, bool byte_level);

  // The tokens of one pre-tokenized word (tokenizers' BPE::tokenize; words seen before come from
  // a cache).
  void tokenize(std::string_view word, std::vector<Symbol>& out) const;

  int unk_id() const { return unk_id_; }
  int max_id() const { return static_cast<int>(pieces_.size()) - 1; }
  const StringMap& vocab() const { return vocab_; }
  const std::vector<std::string>& pieces() const { return pieces_; }

 private:
  void merge_word(std::string_view word, std::vector<Symbol>& out) const;
  int unit_id(std::string_view unit) const {
    if (byte_level_) return byte_ids_[static_cast<unsigned char>(unit[0])];
    auto it = vocab_.find(unit);
    return it == vocab_.end() ? -1 : it->second;
  }

  bool byte_level_;
  StringMap vocab_;                      // the file's strings
  StringMap byte_vocab_;                 // byte-level: the bytes each string stands for
  std::vector<std::string> pieces_;      // id -> the file's string
  std::array<int, 256> byte_ids_{};      // byte-level: id of each single byte
  std::array<int, 256> fallback_ids_{};  // byte_fallback: id of "<0xXX>"
  std::unordered_map<uint64_t, std::pair<int, int>> merges_;  // (left, right) -> (rank, new id)
  int unk_id_ = -1;
  bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;

  // Words to their tokens, in shards so threads building a dataset rarely wait for each other.
  struct CacheShard {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<Symbol>, StringHash, std::equal_to<>> words;
  };
  static constexpr size_t kShards = 16, kShardCapacity = 1 << 14, kMaxCachedWord = 256;
  mutable std::array<CacheShard, kShards> cache_;
};

Bpe::Bpe(const JsonReader& r, const json& model, bool byte_level) : byte_level_(byte_level) {
  const std::string type = model.contains("type") ? r.type(model, "model") : "BPE";
  if (type != "BPE") r.unsupported("model.type", type, "BPE only");
  if (!r.value<std::string>(model, "continuing_subword_prefix", "", "model").empty())
    fail("{}: model.continuing_subword_prefix is not supported (tokenizer.json reader)", r.path());
  if (!r.value<std::string>(model, "end_of_word_suffix", "", "model").empty())
    fail("{}: model.end_of_word_suffix is not supported (tokenizer.json reader)", r.path());
  if (r.value(model, "dropout", 0.0, "model") > 0.0)
    fail("{}: model.dropout is set: BPE dropout makes encoding random, not for training data",
         r.path());
  fuse_unk_ = r.value(model, "fuse_unk", false, "model");
  byte_fallback_ = r.value(model, "byte_fallback", false, "model");
  ignore_merges_ = r.value(model, "ignore_merges", false, "model");

  const json& vocab = r.at(model, "model", "vocab");
  if (!vocab.is_object()) fail("{}: model.vocab should be an object", r.path());
  vocab_.reserve(vocab.size());
  for (const auto& [piece, id_json] : vocab.items()) {
    const int id = id_json.get<int>();
    if (id < 0) fail("{}: model.vocab: \"{}\" has a negative id", r.path(), piece);
    vocab_.emplace(piece, id);
    if (static_cast<size_t>(id) >= pieces_.size()) pieces_.resize(id + 1);
    pieces_[id] = piece;
  }
  byte_ids_.fill(-1);
  fallback_ids_.fill(-1);
  if (byte_level_) {
    for (const auto& [piece, id] : vocab_)
      if (auto bytes = byte_alphabet().to_bytes(piece)) {
        if (bytes->size() == 1) byte_ids_[static_cast<unsigned char>((*bytes)[0])] = id;
        byte_vocab_.emplace(std::move(*bytes), id);
      }
  }
  if (byte_fallback_)
    for (int b = 0; b < 256; ++b)
      if (auto it = vocab_.find(fmt::format("<0x{:02X}>", b)); it != vocab_.end())
        fallback_ids_[b] = it->second;
  const std::string unk = r.value<std::string>(model, "unk_token", "", "model");
  if (!unk.empty()) {
    auto it = vocab_.find(unk);
    if (it == vocab_.end()) fail("{}: model.unk_token \"{}\" is not in model.vocab", r.path(), unk);
    unk_id_ = it->second;
  }

  const json& merges = r.at(model, "model", "merges");
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const json& m = merges[rank];
    std::string left, right;
    if (m.is_string()) {
      const std::string line = m.get<std::string>();
      const size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos)
        fail("{}: model.merges[{}] \"{}\" is not two tokens", r.path(), rank, line);
      left = line.substr(0, space);
      right = line.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      fail("{}: model.merges[{}] is not a pair of tokens", r.path(), rank);
    }
    auto a = vocab_.find(left), b = vocab_.find(right), merged = vocab_.find(left + right);
    if (a == vocab_.end() || b == vocab_.end() || merged == vocab_.end())
      fail("{}: model.merges[{}] \"{} {}\" uses a token missing from model.vocab", r.path(), rank,
           left, right);
    const uint64_t key = (uint64_t(uint32_t(a->second)) << 32) | uint32_t(b->second);
    merges_.emplace(key, std::make_pair(static_cast<int>(rank), merged->second));
  }
}

void Bpe::tokenize(std::string_view word, std::vector<Symbol>& out) const {
  out.clear();
  if (word.empty()) return;
  if (ignore_merges_) {
    const StringMap& whole = byte_level_ ? byte_vocab_ : vocab_;
    if (auto it = whole.find(word); it != whole.end()) {
      out.push_back({it->second, 0});
      return;
    }
  }
  if (word.size() > kMaxCachedWord) return merge_word(word, out);
  CacheShard& shard = cache_[std::hash<std::string_view>{}(word) % kShards];
  {
    std::lock_guard lock(shard.mutex);
    if (auto it = shard.words.find(word); it != shard.words.end()) {
      out = it->second;
      return;
    }
  }
  merge_word(word, out);
  std::lock_guard lock(shard.mutex);
  if (shard.words.size() >= kShardCapacity) shard.words.clear();
  shard.words.emplace(std::string(word), out);
}

// tokenizers' BPE::merge_word: the word's characters (bytes, for byte-level) as tokens, unknown
// ones as byte-fallback tokens or <unk> (fused with fuse_unk), then the lowest-ranked merge,
// leftmost first, until none applies.
void Bpe::merge_word(std::string_view word, std::vector<Symbol>& out) const {
  std::optional<Symbol> unk;
  for (size_t at = 0; at < word.size();) {
    const size_t len = byte_level_ ? 1 : utf8_length(word[at]);
    const std::string_view unit = word.substr(at, len);
    const uint32_t begin = static_cast<uint32_t>(at);
    at += len;
    if (const int id = unit_id(unit); id >= 0) {
      if (unk) out.push_back(*unk), unk.reset();
      out.push_back({id, begin});
      continue;
    }
    if (byte_fallback_ && std::all_of(unit.begin(), unit.end(), [&](char b) {
          return fallback_ids_[static_cast<unsigned char>(b)] >= 0;
        })) {
      for (size_t k = 0; k < unit.size(); ++k)
        out.push_back(
            {fallback_ids_[static_cast<unsigned char>(unit[k])], static_cast<uint32_t>(begin + k)});
      continue;
    }
    if (unk_id_ < 0) continue;  // no <unk>: tokenizers drops the character
    if (unk && !fuse_unk_) out.push_back(*unk);
    if (!unk || !fuse_unk_) unk = Symbol{unk_id_, begin};
  }
  if (unk) out.push_back(*unk);

  constexpr int kNone = std::numeric_limits<int>::max();
  std::vector<int> rank(out.size() > 1 ? out.size() - 1 : 0), merged(rank.size());
  auto pair_at = [&](size_t i) {
    auto it = merges_.find((uint64_t(uint32_t(out[i].id)) << 32) | uint32_t(out[i + 1].id));
    rank[i] = it == merges_.end() ? kNone : it->second.first;
    merged[i] = it == merges_.end() ? -1 : it->second.second;
  };
  for (size_t i = 0; i < rank.size(); ++i) pair_at(i);
  while (!rank.empty()) {
    const size_t best = std::min_element(rank.begin(), rank.end()) - rank.begin();
    if (rank[best] == kNone) break;
    out[best].id = merged[best];
    out.erase(out.begin() + static_cast<ptrdiff_t>(best) + 1);
    rank.erase(rank.begin() + static_cast<ptrdiff_t>(best));
    merged.erase(merged.begin() + static_cast<ptrdiff_t>(best));
    if (best > 0) pair_at(best - 1);
    if (best < rank.size()) pair_at(best);
  }
}

// ---- Decoders ----------------------------------------------------------------------------------

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

// Invalid UTF-8 bytes become U+FFFD, as Rust's String::from_utf8_lossy does.
std::string utf8_lossy(const std::string& bytes) {
  std::string out;
  for (size_t at = 0; at < bytes.size();) {
    const size_t len = utf8_length(bytes[at]);
    if (at + len <= bytes.size() &&
        find_invalid_utf8(std::string_view(bytes).substr(at, len)) == std::string::npos) {
      out.append(bytes, at, len);
      at += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++at;
    }
  }
  return out;
}

// tokenizers' decoders, each a step from token strings to token strings.
using DecodeStep = std::function<void(std::vector<std::string>&)>;

void read_decoder(const JsonReader& r, const json& j, const std::string& key,
                  std::vector<DecodeStep>& steps) {
  if (j.is_null()) return;
  const std::string type = r.type(j, key);
  if (type == "Sequence") {
    const json& list = r.at(j, key, "decoders");
    for (size_t i = 0; i < list.size(); ++i)
      read_decoder(r, list[i], fmt::format("{}.decoders[{}]", key, i), steps);
  } else if (type == "ByteLevel") {
    // A token with a character outside the alphabet (an added token's text) stays as written.
    steps.push_back([](std::vector<std::string>& tokens) {
      std::string bytes;
      for (const std::string& t : tokens) bytes += byte_alphabet().to_bytes(t).value_or(t);
      tokens = {utf8_lossy(bytes)};
    });
  } else if (type == "Replace") {
    const json& pattern = r.at(j, key, "pattern");
    if (!pattern.contains("String"))
      r.unsupported(key + ".pattern", pattern.dump(), "String patterns");
    std::string from = r.string(pattern, key + ".pattern", "String");
    std::string to = r.string(j, key, "content");
    steps.push_back([from, to](std::vector<std::string>& tokens) {
      for (std::string& t : tokens) t = replace_all(std::move(t), from, to);
    });
  } else if (type == "ByteFallback") {
    steps.push_back([](std::vector<std::string>& tokens) {
      std::vector<std::string> out;
      std::string bytes;
      size_t pending = 0;
      auto flush = [&] {
        if (!pending) return;
        if (find_invalid_utf8(bytes) == std::string::npos) {
          out.push_back(bytes);
        } else {
          for (size_t k = 0; k < pending; ++k) out.push_back("\xEF\xBF\xBD");
        }
        bytes.clear();
        pending = 0;
      };
      for (const std::string& t : tokens) {
        if (t.size() == 6 && t.starts_with("<0x") && t.back() == '>' &&
            std::isxdigit(static_cast<unsigned char>(t[3])) &&
            std::isxdigit(static_cast<unsigned char>(t[4]))) {
          bytes.push_back(static_cast<char>(std::stoi(t.substr(3, 2), nullptr, 16)));
          ++pending;
        } else {
          flush();
          out.push_back(t);
        }
      }
      flush();
      tokens = std::move(out);
    });
  } else if (type == "Fuse") {
    steps.push_back([](std::vector<std::string>& tokens) {
      std::string all;
      for (const std::string& t : tokens) all += t;
      tokens = {all};
    });
  } else if (type == "Strip") {
    const std::string content = r.string(j, key, "content");
    const size_t start = r.value<size_t>(j, "start", 0, key);
    const size_t stop = r.value<size_t>(j, "stop", 0, key);
    steps.push_back([content, start, stop](std::vector<std::string>& tokens) {
      for (std::string& t : tokens) {
        for (size_t k = 0; k < start && t.starts_with(content); ++k) t.erase(0, content.size());
        for (size_t k = 0; k < stop && t.ends_with(content); ++k)
          t.erase(t.size() - content.size());
      }
    });
  } else if (type == "Metaspace") {
    const std::string replacement = r.string(j, key, "replacement");
    bool strip_first = r.value(j, "add_prefix_space", true, key);
    if (j.contains("prepend_scheme")) strip_first = r.string(j, key, "prepend_scheme") != "never";
    steps.push_back([replacement, strip_first](std::vector<std::string>& tokens) {
      for (size_t i = 0; i < tokens.size(); ++i)
        tokens[i] =
            replace_all(std::move(tokens[i]), replacement, i == 0 && strip_first ? "" : " ");
    });
  } else {
    r.unsupported(key + ".type", type,
                  "ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence");
  }
}

// ---- The backend -------------------------------------------------------------------------------

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot read the tokenizer file", path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// A token named by tokenizer_config.json: a string or {"content": ...}; "" when absent or null.
std::string config_token(const json& config, const char* name) {
  if (!config.is_object() || !config.contains(name)) return "";
  const json& v = config.at(name);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v.at("content").is_string())
    return v.at("content").get<std::string>();
  return "";
}

class HfBackend final : public TokenizerBackend {
 public:
  explicit HfBackend(const std::string& path);

  std::vector<int> encode_plain(std::string_view text) const override {
    std::vector<int> ids;
    run(text, false, ids, nullptr);
    return ids;
  }
  void encode_with_offsets(std::string_view text, std::vector<int>& ids,
                           std::vector<size_t>& begins) const override {
    ids.clear();
    begins.clear();
    run(text, true, ids, &begins);
  }
  std::vector<std::string> pieces(std::string_view text) const override {
    std::vector<std::string> out;
    for (int id : encode_plain(text)) out.push_back(id_to_piece(id));
    return out;
  }
  std::string decode(const std::vector<int>& ids) const override;

  std::vector<int> prefix_ids() const override { return prefix_; }
  std::vector<int> suffix_ids() const override { return suffix_; }
  int vocab_size() const override { return vocab_size_; }
  int bos_id() const override { return bos_id_; }
  int eos_id() const override { return eos_id_; }
  int pad_id() const override { return pad_id_; }
  int unk_id() const override { return model_->unk_id(); }
  std::string id_to_piece(int id) const override {
    if (auto it = added_by_id_.find(id); it != added_by_id_.end()) return it->second->content;
    const auto& pieces = model_->pieces();
    if (id < 0 || static_cast<size_t>(id) >= pieces.size()) return "";
    return pieces[id];
  }

 private:
  void run(std::string_view text, bool track, std::vector<int>& ids,
           std::vector<size_t>* begins) const;
  int token_id(const std::string& content) const {
    if (content.empty()) return -1;
    for (const AddedToken& t : added_)
      if (t.content == content) return t.id;
    auto it = model_->vocab().find(content);
    return it == model_->vocab().end() ? -1 : it->second;
  }
  void read_post_processor(const JsonReader& r, const json& j, const std::string& key);

  std::string path_;
  std::unique_ptr<Normalizer> normalizer_;
  PreTokenizerChain pre_tokenizer_;
  std::unique_ptr<Bpe> model_;
  std::vector<AddedToken> added_;
  std::unordered_map<int, const AddedToken*> added_by_id_;
  AddedTokenMatcher raw_added_, normalized_added_;
  std::vector<DecodeStep> decoder_;
  bool has_decoder_ = false;
  std::vector<int> prefix_, suffix_;
  int vocab_size_ = 0, bos_id_ = -1, eos_id_ = -1, pad_id_ = -1;
};

HfBackend::HfBackend(const std::string& path) : path_(path) {
  json root;
  try {
    root = json::parse(read_file(path));
  } catch (const json::parse_error& e) {
    fail("{}: not a tokenizer.json ({})", path, e.what());
  }
  const JsonReader r(path);
  if (!root.is_object()) fail("{}: not a tokenizer.json (not a JSON object)", path);
  const json null;
  const auto section = [&](const char* name) -> const json& {
    return root.contains(name) ? root.at(name) : null;
  };
  normalizer_ = read_normalizer(r, section("normalizer"), "normalizer");
  read_pre_tokenizer(r, section("pre_tokenizer"), "pre_tokenizer", pre_tokenizer_);
  model_ = std::make_unique<Bpe>(r, r.at(root, "tokenizer", "model"), pre_tokenizer_.byte_level);
  read_decoder(r, section("decoder"), "decoder", decoder_);
  has_decoder_ = !section("decoder").is_null();

  const json& added = section("added_tokens");
  added_.reserve(added.size());
  for (size_t i = 0; i < added.size(); ++i) {
    const std::string key = fmt::format("added_tokens[{}]", i);
    AddedToken t;
    t.content = r.string(added[i], key, "content");
    t.id = r.value(added[i], "id", -1, key);
    if (t.id < 0) fail("{}: {}.id is missing", path, key);
    t.special = r.value(added[i], "special", false, key);
    t.normalized = r.value(added[i], "normalized", !t.special, key);
    t.lstrip = r.value(added[i], "lstrip", false, key);
    t.rstrip = r.value(added[i], "rstrip", false, key);
    t.single_word = r.value(added[i], "single_word", false, key);
    added_.push_back(std::move(t));
  }
  // tokenizers matches special tokens first, then the others, each in the file's order.
  for (bool special : {true, false})
    for (const AddedToken& t : added_) {
      if (t.special != special) continue;
      added_by_id_[t.id] = &t;
      if (!t.normalized) {
        raw_added_.add(t.content, &t);
      } else {
        Piece content{t.content, 0, {}, -1};
        if (normalizer_) normalizer_->apply(content);
        normalized_added_.add(content.text, &t);
      }
    }
  vocab_size_ = model_->max_id() + 1;
  for (const AddedToken& t : added_) vocab_size_ = std::max(vocab_size_, t.id + 1);

  read_post_processor(r, section("post_processor"), "post_processor");

  // BOS/EOS/PAD: tokenizer_config.json beside the file names them; else the post-processor's
  // tokens and the usual end-of-text names.
  json config;
  const auto config_path = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  if (std::filesystem::is_regular_file(config_path)) {
    try {
      config = json::parse(read_file(config_path.string()));
    } catch (const json::parse_error& e) {
      fail("{}: not JSON ({})", config_path.string(), e.what());
    }
  }
  bos_id_ = token_id(config_token(config, "bos_token"));
  if (bos_id_ < 0 && !prefix_.empty()) bos_id_ = prefix_.front();
  eos_id_ = token_id(config_token(config, "eos_token"));
  if (eos_id_ < 0 && !suffix_.empty()) eos_id_ = suffix_.back();
  for (const char* name : {"<|end_of_text|>", "<|endoftext|>", "</s>", "<eos>", "<|eot_id|>"})
    if (eos_id_ < 0) eos_id_ = token_id(name);
  pad_id_ = token_id(config_token(config, "pad_token"));
}

void HfBackend::read_post_processor(const JsonReader& r, const json& j, const std::string& key) {
  if (j.is_null()) return;
  const std::string type = r.type(j, key);
  if (type == "Sequence") {
    const json& list = r.at(j, key, "processors");
    for (size_t i = 0; i < list.size(); ++i)
      read_post_processor(r, list[i], fmt::format("{}.processors[{}]", key, i));
  } else if (type == "ByteLevel") {
    // Offsets only (trim_offsets); the ids stay.
  } else if (type == "TemplateProcessing") {
    const json& single = r.at(j, key, "single");
    const json& specials = r.at(j, key, "special_tokens");
    bool after_text = false;
    for (size_t i = 0; i < single.size(); ++i) {
      const std::string item = fmt::format("{}.single[{}]", key, i);
      if (single[i].contains("Sequence")) {
        if (r.string(single[i]["Sequence"], item + ".Sequence", "id") != "A")
          fail("{}: {}.Sequence.id should be \"A\" in a single-sequence template", path_, item);
        after_text = true;
        continue;
      }
      const std::string name = r.string(r.at(single[i], item, "SpecialToken"), item, "id");
      if (!specials.contains(name)) fail("{}: {}.special_tokens has no \"{}\"", path_, key, name);
      for (int id : r.at(specials.at(name), key + ".special_tokens." + name, "ids"))
        (after_text ? suffix_ : prefix_).push_back(id);
    }
  } else {
    r.unsupported(key + ".type", type, "TemplateProcessing, ByteLevel, Sequence");
  }
}

void HfBackend::run(std::string_view text, bool track, std::vector<int>& ids,
                    std::vector<size_t>* begins) const {
  if (size_t bad = find_invalid_utf8(text); bad != std::string::npos)
    fail("{}: cannot encode text: invalid UTF-8 at byte {}", path_, bad + 1);
  Piece whole{std::string(text), 0, {}, -1};
  if (track) {
    whole.orig.resize(text.size());
    for (size_t i = 0; i < text.size(); ++i) whole.orig[i] = static_cast<uint32_t>(i);
  }
  // 1. Added tokens that match the raw text; 2. the rest normalized, then the added tokens that
  // match normalized text.
  std::vector<Piece> raw_split, split;
  raw_added_.split(whole, raw_split);
  for (Piece& p : raw_split) {
    if (p.added_id >= 0) {
      split.push_back(std::move(p));
      continue;
    }
    if (normalizer_) normalizer_->apply(p);
    normalized_added_.split(p, split);
  }
  // 3. Pre-tokenizer, 4. model.
  std::vector<Piece> words, next;
  std::vector<Symbol> symbols;
  for (Piece& p : split) {
    if (p.added_id >= 0) {
      ids.push_back(p.added_id);
      if (begins) begins->push_back(p.orig_begin);
      continue;
    }
    words.clear();
    words.push_back(std::move(p));
    for (const auto& step : pre_tokenizer_.steps) {
      next.clear();
      for (const Piece& w : words) step->split(w, next);
      std::swap(words, next);
    }
    for (const Piece& w : words) {
      model_->tokenize(w.text, symbols);
      for (const Symbol& s : symbols) {
        ids.push_back(s.id);
        if (begins) begins->push_back(w.orig.empty() ? w.orig_begin : w.orig[s.begin]);
      }
    }
  }
}

std::string HfBackend::decode(const std::vector<int>& ids) const {
  // As tokenizers' decode(ids) (skip_special_tokens=True): special tokens are left out.
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int id : ids) {
    if (auto it = added_by_id_.find(id); it != added_by_id_.end()) {
      if (!it->second->special) tokens.push_back(it->second->content);
      continue;
    }
    if (id < 0 || id > model_->max_id()) fail("{}: cannot decode id {}", path_, id);
    tokens.push_back(model_->pieces()[id]);
  }
  if (!has_decoder_) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return out;
  }
  for (const DecodeStep& step : decoder_) step(tokens);
  std::string out;
  for (const std::string& t : tokens) out += t;
  return out;
}

}  // namespace

std::unique_ptr<TokenizerBackend> make_hf_backend(const std::string& path) {
  return std::make_unique<HfBackend>(path);
}

}  // namespace ls::data
