// Tokenizer: a sentencepiece `tokenizer.model` with LLaMA semantics (BOS first, no EOS unless
// asked). Ids are exactly the sentencepiece library's: it does the encoding.
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

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace ls::data {

// Ids of a sentence given as words, with the word each id came from (-1: BOS/EOS).
struct WordEncoding {
  std::vector<int> ids;
  std::vector<int> word_ids;
};

struct TokenizerOptions {
  bool add_bos = true;
  bool add_eos = false;
};

class Tokenizer {
 public:
  // Throws UserError naming the file when it is missing or not a sentencepiece model.
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
  // byte offset sentencepiece reports for its piece; a piece that begins on the space before a
  // word belongs to that word. A word that gets no piece of its own (an empty word) has no id.
  WordEncoding encode_words(const std::vector<std::string>& words) const;
  std::string decode(const std::vector<int>& ids) const;

  int vocab_size() const;
  int bos_id() const;
  int eos_id() const;
  // LLaMA's tokenizer has no pad piece (-1): callers pad with a configured id.
  int pad_id() const;
  int unk_id() const;
  std::string id_to_piece(int id) const;
  const std::string& path() const { return path_; }
  const TokenizerOptions& options() const { return options_; }

 private:
  std::string path_;
  TokenizerOptions options_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

// Trains a sentencepiece model (trainer flags as the spm_train program takes them), e.g. the
// quickstart's tokenizer and the tests' models. Throws UserError with the trainer's message.
void train_sentencepiece(const std::string& flags);

}  // namespace ls::data
