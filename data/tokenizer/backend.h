// TokenizerBackend: what data::Tokenizer asks of a tokenizer file format. Tokenizer (tokenizer.h)
// owns the options (BOS/EOS) and the word alignment; a backend turns text into ids with the byte
// offset where each id's piece begins. Two backends: a sentencepiece `tokenizer.model`
// (sentencepiece_backend.cpp) and a HF `tokenizer.json` (hf/tokenizer_json.cpp, its stages in
// hf/).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ls::data {

class TokenizerBackend {
 public:
  virtual ~TokenizerBackend() = default;

  // Ids of the text alone (no BOS/EOS or other added-by-template tokens).
  virtual std::vector<int> encode_plain(std::string_view text) const = 0;
  // The same ids, and for each the byte in `text` where its piece begins.
  virtual void encode_with_offsets(std::string_view text, std::vector<int>& ids,
                                   std::vector<size_t>& begins) const = 0;
  virtual std::vector<std::string> pieces(std::string_view text) const = 0;
  virtual std::string decode(const std::vector<int>& ids) const = 0;

  // The special ids that encode(text) puts before and after the text's ids when BOS is on:
  // sentencepiece {BOS} and {}; tokenizer.json whatever its post-processor adds.
  virtual std::vector<int> prefix_ids() const = 0;
  virtual std::vector<int> suffix_ids() const = 0;

  virtual int vocab_size() const = 0;
  virtual int bos_id() const = 0;
  virtual int eos_id() const = 0;
  virtual int pad_id() const = 0;
  virtual int unk_id() const = 0;
  virtual std::string id_to_piece(int id) const = 0;
  // Whether encode_plain(text) yields `id` for some ordinary text: false for special and control
  // tokens, and for the unknown token of a vocabulary with byte fallback.
  virtual bool is_text_token(int id) const = 0;
  // The id of a vocabulary piece or added token, -1 when there is none.
  virtual int token_id(const std::string& piece) const = 0;
};

// Both throw UserError naming the file when it cannot be used.
std::unique_ptr<TokenizerBackend> make_sentencepiece_backend(const std::string& path);
// Defined only when built with tokenizer.json support (LS_HF_TOKENIZER).
std::unique_ptr<TokenizerBackend> make_hf_backend(const std::string& path);

}  // namespace ls::data
