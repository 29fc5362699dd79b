// Tokenizer: picks the backend by the file and adds BOS/EOS and word alignment on top of it (see
// tokenizer.h).
#include "data/tokenizer/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/base/error.h"  // header-only: UserError, fail()
#include "data/tokenizer/backend.h"

namespace ls::data {
namespace {

// A tokenizer.json by name or by content (a JSON object); anything else goes to sentencepiece.
bool is_tokenizer_json(const std::string& path) {
  if (std::filesystem::path(path).extension() == ".json") return true;
  std::ifstream in(path, std::ios::binary);
  char c = 0;
  while (in.get(c))
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return c == '{';
  return false;
}

// The ids encode() gives for a text whose own ids are `body`: the post-processor's special
// tokens around it, the leading ones only with add_bos, EOS appended with add_eos (once: a
// post-processor that already ends with EOS keeps its own).
std::vector<int> with_specials(const TokenizerBackend& backend, const TokenizerOptions& options,
                               const std::vector<int>& body) {
  const std::vector<int> prefix = options.add_bos ? backend.prefix_ids() : std::vector<int>{};
  std::vector<int> suffix = backend.suffix_ids();
  if (options.add_eos && (suffix.empty() || suffix.back() != backend.eos_id()))
    suffix.push_back(backend.eos_id());
  std::vector<int> ids;
  ids.reserve(prefix.size() + body.size() + suffix.size());
  ids.insert(ids.end(), prefix.begin(), prefix.end());
  ids.insert(ids.end(), body.begin(), body.end());
  ids.insert(ids.end(), suffix.begin(), suffix.end());
  return ids;
}

}  // namespace

Tokenizer::Tokenizer(const std::string& model_path, TokenizerOptions options)
    : path_(model_path), options_(options) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(model_path, ec))
    fail("{}: tokenizer model not found", model_path);
  if (is_tokenizer_json(model_path)) {
#ifdef LS_HF_TOKENIZER
    backend_ = make_hf_backend(model_path);
#else
    fail(
        "{}: built without tokenizer.json support (needs PCRE2 and utf8proc; tools/setup.sh "
        "installs them)",
        model_path);
#endif
  } else {
    backend_ = make_sentencepiece_backend(model_path);
  }
  if (options_.add_eos && backend_->eos_id() < 0)
    fail("{}: EOS was asked for but the tokenizer has no EOS token", model_path);
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

std::vector<int> Tokenizer::encode_plain(std::string_view text) const {
  return backend_->encode_plain(text);
}

std::vector<int> Tokenizer::encode(std::string_view text) const {
  return with_specials(*backend_, options_, encode_plain(text));
}

WordEncoding Tokenizer::encode_words(const std::vector<std::string>& words) const {
  std::string sentence;
  std::vector<size_t> word_begins;  // byte where word k's share of the sentence begins
  word_begins.reserve(words.size());
  for (size_t k = 0; k < words.size(); ++k) {
    if (k) sentence.push_back(' ');
    word_begins.push_back(k ? sentence.size() - 1 : 0);  // the separating space is the word's
    sentence.append(words[k]);
  }
  std::vector<int> body;
  std::vector<size_t> begins;
  backend_->encode_with_offsets(sentence, body, begins);

  WordEncoding out;
  out.ids = with_specials(*backend_, options_, body);
  out.word_ids.assign(out.ids.size(), -1);  // -1: the special tokens around the sentence
  const size_t first = options_.add_bos ? backend_->prefix_ids().size() : 0;
  for (size_t i = 0; i < body.size(); ++i) {
    const auto after = std::upper_bound(word_begins.begin(), word_begins.end(), begins[i]);
    out.word_ids[first + i] = static_cast<int>(after - word_begins.begin()) - 1;
  }
  return out;
}

std::vector<std::string> Tokenizer::pieces(std::string_view text) const {
  return backend_->pieces(text);
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  return backend_->decode(ids);
}

std::vector<int> Tokenizer::suffix_ids() const {
  return backend_->suffix_ids();
}

int Tokenizer::vocab_size() const {
  return backend_->vocab_size();
}
int Tokenizer::bos_id() const {
  return backend_->bos_id();
}
int Tokenizer::eos_id() const {
  return backend_->eos_id();
}
int Tokenizer::pad_id() const {
  return backend_->pad_id();
}
int Tokenizer::unk_id() const {
  return backend_->unk_id();
}
std::string Tokenizer::id_to_piece(int id) const {
  return backend_->id_to_piece(id);
}
bool Tokenizer::is_text_token(int id) const {
  return backend_->is_text_token(id);
}

int Tokenizer::default_pad_id(bool add_eos) const {
  const int eos = eos_id();
  auto usable = [&](int id) { return id >= 0 && id < vocab_size() && !(add_eos && id == eos); };
  if (usable(pad_id())) return pad_id();
  for (const char* name : {"<|finetune_right_pad_id|>", "<|pad|>", "<pad>", "[PAD]"})
    if (const int id = backend_->token_id(name); usable(id) && !is_text_token(id)) return id;
  for (int id = 0; id < vocab_size(); ++id)
    if (usable(id) && !is_text_token(id)) return id;
  return -1;
}

}  // namespace ls::data
