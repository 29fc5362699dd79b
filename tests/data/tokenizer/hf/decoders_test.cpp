// Decoders: the text each makes of token strings, as `tokenizers`' decoders' decode() gives it.
#include "data/tokenizer/hf/decoders.h"

#include <gtest/gtest.h>

namespace ls::data::hf {
namespace {

using Tokens = std::vector<std::string>;

std::string decoded(const Decoder& decoder, Tokens tokens) {
  decoder.decode_chain(tokens);
  std::string out;
  for (const std::string& t : tokens) out += t;
  return out;
}

const std::string kMeta = "\u2581";

TEST(ByteLevelDecoder, MapsGpt2CharactersBackToBytesAndKeepsOtherTokens) {
  // "Ġ" is a space and "<|end|>" stands for itself; a lone byte E2 ("â") is not UTF-8 and
  // becomes U+FFFD, as Rust's from_utf8_lossy makes it.
  EXPECT_EQ(decoded(*byte_level_decoder(), {"\u0120hello", "\u0120wor", "ld", "<|end|>"}),
            " hello world<|end|>");
  const std::string bad = decoded(*byte_level_decoder(), {"\u00e2"});  // a lone E2
  EXPECT_EQ(bad, "\xEF\xBF\xBD");
}

TEST(MetaspaceDecoder, TurnsTheReplacementIntoSpacesDroppingTheFirstWhenPrepended) {
  EXPECT_EQ(decoded(*metaspace_decoder(kMeta, true), {kMeta + "Hey", kMeta + "friend", kMeta}),
            "Hey friend ");
  EXPECT_EQ(decoded(*metaspace_decoder(kMeta, false), {kMeta + "Hey", kMeta + "friend"}),
            " Hey friend");
}

TEST(ByteFallbackDecoder, DecodesByteRunsAndReplacesInvalidOnesPerToken) {
  EXPECT_EQ(decoded(*byte_fallback_decoder(),
                    {"<0xE2>", "<0x96>", "<0x81>", "a", "<0xE2>", "<0x96>", "b", "<0x41>"}),
            "\u2581a\xEF\xBF\xBD\xEF\xBF\xBD"
            "bA");
}

TEST(FuseStripReplaceDecoders, DoWhatTokenizersDoes) {
  Tokens tokens{"a", "b", "c"};
  fuse_decoder()->decode_chain(tokens);
  EXPECT_EQ(tokens, Tokens{"abc"});
  tokens = {"  a", " b ", "c"};
  strip_decoder(" ", 1, 0)->decode_chain(tokens);
  EXPECT_EQ(tokens, (Tokens{" a", "b ", "c"}));
  EXPECT_EQ(decoded(*replace_decoder(kMeta, " "), {kMeta + "a" + kMeta + "b", "c" + kMeta}),
            " a bc ");
}

TEST(SequenceDecoder, LlamaTwosChainDecodesSentencepieceTokens) {
  std::vector<std::unique_ptr<Decoder>> steps;
  steps.push_back(replace_decoder(kMeta, " "));
  steps.push_back(byte_fallback_decoder());
  steps.push_back(fuse_decoder());
  steps.push_back(strip_decoder(" ", 1, 0));
  EXPECT_EQ(decoded(*sequence_decoder(std::move(steps)),
                    {kMeta + "Hi", "<0xE2>", "<0x82>", "<0xAC>", kMeta + "there"}),
            "Hi\u20ac there");
}

}  // namespace
}  // namespace ls::data::hf
