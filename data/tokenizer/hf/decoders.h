// Decoders: token strings back to text, as `tokenizers`' decoders/ (ByteLevel, Metaspace,
// Replace, ByteFallback, Fuse, Strip, Sequence). Each is one step of decode_chain: a list of token
// strings to a list of token strings; the pipeline concatenates the last list.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace ls::data::hf {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// GPT-2's characters back to bytes, all tokens as one UTF-8 string (invalid bytes become U+FFFD);
// a token with a character outside the alphabet (an added token's text) stays as written.
std::unique_ptr<Decoder> byte_level_decoder();
// Every `from` in each token replaced by `to`.
std::unique_ptr<Decoder> replace_decoder(std::string from, std::string to);
// Runs of `<0xXX>` tokens to the bytes they stand for; a run that is not UTF-8 becomes one
// U+FFFD per token.
std::unique_ptr<Decoder> byte_fallback_decoder();
// All tokens as one.
std::unique_ptr<Decoder> fuse_decoder();
// Up to `start` copies of `content` removed from each token's front, up to `stop` from its end.
std::unique_ptr<Decoder> strip_decoder(std::string content, size_t start, size_t stop);
// `replacement` back to spaces; the first token's dropped when the pre-tokenizer prepended it.
std::unique_ptr<Decoder> metaspace_decoder(std::string replacement, bool strip_first);
std::unique_ptr<Decoder> sequence_decoder(std::vector<std::unique_ptr<Decoder>> steps);

}  // namespace ls::data::hf
