// Tokenizer: text to token ids for LLaMA-family models, from either tokenizer file a model ships:
//   - a sentencepiece `tokenizer.model` (LLaMA-1/2, Mistral): ids are exactly the sentencepiece
//     library's, which does the encoding; BOS first, no EOS unless asked.
//   - a HF `tokenizer.json` (LLaMA-3.x, Qwen2/2.5/3, Mistral-Nemo; LLaMA-2/Mistral as HF converts
//     them): byte-level or sentencepiece-style BPE, ids equal to the pip `tokenizers` library's;
//     encode() adds what the file's post-processor adds (BOS or nothing). docs/TOKENIZERS.md.
// The file picks the backend (backend.h): a `.json` name or a file starting with `{` is
// a tokenizer.json. BOS/EOS options mean the same for both.
//
// sentencepiece and libtorch share one process. Debian's libsentencepiece embeds and exports its
// own protobuf; a libtorch that exported its protobuf too would interpose it and crash before
// main(). The pip torch 2.11 wheel hides its protobuf (the only shared symbols are three
// identical byteswap templates); tests/smoke/test_library_isolation.py fails the build's tests
// if a future torch or sentencepiece brings a real overlap.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ls::data {

class TokenizerBackend;

// Ids of a sentence given as words, with the word each id came from (-1: BOS/EOS).
struct WordEncoding {
  std::vector<int> ids;
  std::vector<int> word_ids;
};

// add_bos: encode() puts the special tokens that lead a sequence (sentencepiece: BOS; a
// tokenizer.json: those its post-processor puts before the text, BOS or nothing); false drops
// them. add_eos: EOS is appended (a tokenizer.json's EOS: tokenizer_config.json beside it, else
// the post-processor's or a known end-of-text added token).
struct TokenizerOptions {
  bool add_bos = true;
  bool add_eos = false;
};

class Tokenizer {
 public:
  // Throws UserError naming the file when it is missing, not a tokenizer, or (tokenizer.json) uses
  // a model or step this reader does not implement (the error names the JSON key).
  explicit Tokenizer(const std::string& model_path, TokenizerOptions options = {});
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // Text to ids, BOS/EOS per the options. Text must be valid UTF-8.
  std::vector<int> encode(std::string_view text) const;
  // Text to ids without BOS/EOS (pieces of a larger sequence).
  std::vector<int> encode_plain(std::string_view text) const;
  std::vector<std::string> pieces(std::string_view text) const;
  // Words joined by single spaces and encoded as one sentence (BOS/EOS per the options), so the
  // ids are exactly encode(join(words, " ")): the sub-words of a word are the ones it gets inside
  // the sentence, with the space before every word but the first. Each id's word comes from the
  // byte offset where its piece begins in the sentence; a piece that begins on the space before a
  // word belongs to that word. A word that gets no piece of its own (an empty word) has no id.
  WordEncoding encode_words(const std::vector<std::string>& words) const;
  std::string decode(const std::vector<int>& ids) const;

  // The special ids the file itself puts after a text (a tokenizer.json post-processor's; none for
  // sentencepiece), before add_eos adds EOS when they do not end in it.
  std::vector<int> suffix_ids() const;

  int vocab_size() const;
  int bos_id() const;
  int eos_id() const;
  // -1 when the tokenizer has none (LLaMA-2's, LLaMA-3's: see default_pad_id).
  int pad_id() const;
  int unk_id() const;
  std::string id_to_piece(int id) const;
  // Whether some ordinary text encodes to `id` (backend.h): a pad id that is one would make HF's
  // classifiers, which pool at the last token that is not padding, pool before it.
  bool is_text_token(int id) const;
  // The id to pad with when data.pad_id is auto: the file's pad token (tokenizer_config.json's
  // pad_token, a sentencepiece pad piece), else a reserved pad token of the vocabulary
  // (<|finetune_right_pad_id|>, <|pad|>, <pad>, [PAD]), else the first token no text encodes to
  // (sentencepiece's <unk> with byte fallback, BOS). Never EOS when `add_eos` (every example
  // would end in padding). -1 when there is none.
  int default_pad_id(bool add_eos) const;
  const std::string& path() const { return path_; }
  const TokenizerOptions& options() const { return options_; }

 private:
  std::string path_;
  TokenizerOptions options_;
  std::unique_ptr<TokenizerBackend> backend_;
};

// Trains a sentencepiece model (trainer flags as the spm_train program takes them), e.g. the
// quickstart's tokenizer and the tests' models. Throws UserError with the trainer's message.
void train_sentencepiece(const std::string& flags);

}  // namespace ls::data
