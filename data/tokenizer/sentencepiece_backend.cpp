// The sentencepiece backend of data::Tokenizer: a `tokenizer.model`, encoded by the sentencepiece
// library itself, so ids are exactly the library's.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cctype>
#include <fstream>

#include "core/base/error.h"  // header-only: UserError, fail()
#include "data/tokenizer/backend.h"
#include "data/tokenizer/tokenizer.h"

namespace ls::data {
namespace {

// tiktoken's format: one "<base64 token> <rank>" per line.
bool looks_like_tiktoken(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return false;
  const size_t space = line.find(' ');
  if (space == std::string::npos || space == 0 || space + 1 >= line.size()) return false;
  for (size_t i = 0; i < space; ++i) {
    const unsigned char c = static_cast<unsigned char>(line[i]);
    if (!std::isalnum(c) && c != '+' && c != '/' && c != '=') return false;
  }
  for (size_t i = space + 1; i < line.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(line[i]))) return false;
  return true;
}

class SentencePieceBackend final : public TokenizerBackend {
 public:
  explicit SentencePieceBackend(const std::string& path) : path_(path) {
    auto status = processor_.Load(path);
    if (!status.ok() && looks_like_tiktoken(path))
      fail(
          "{}: a tiktoken BPE file (as LLaMA-3's original/tokenizer.model), not a sentencepiece "
          "model: use the model's tokenizer.json",
          path);
    if (!status.ok()) fail("{}: not a sentencepiece model ({})", path, status.ToString());
    // Byte fallback pieces (<0x00> ... <0xFF>) are there exactly when the model falls back.
    const int byte0 = processor_.PieceToId("<0x00>");
    byte_fallback_ = processor_.IdToPiece(byte0) == "<0x00>" && processor_.IsByte(byte0);
  }

  std::vector<int> encode_plain(std::string_view text) const override {
    std::vector<int> ids;
    auto status = processor_.Encode(text, &ids);
    if (!status.ok()) fail("{}: cannot encode text: {}", path_, status.ToString());
    return ids;
  }

  void encode_with_offsets(std::string_view text, std::vector<int>& ids,
                           std::vector<size_t>& begins) const override {
    sentencepiece::ImmutableSentencePieceText encoded;
    auto status = processor_.Encode(text, encoded.mutable_proto());
    if (!status.ok()) fail("{}: cannot encode text: {}", path_, status.ToString());
    const size_t n = encoded.pieces_size();
    ids.resize(n);
    begins.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const auto piece = encoded.pieces(static_cast<int>(i));
      ids[i] = static_cast<int>(piece.id());
      begins[i] = piece.begin();
    }
  }

  std::vector<std::string> pieces(std::string_view text) const override {
    std::vector<std::string> out;
    auto status = processor_.Encode(text, &out);
    if (!status.ok()) fail("{}: cannot encode text: {}", path_, status.ToString());
    return out;
  }

  std::string decode(const std::vector<int>& ids) const override {
    std::string text;
    auto status = processor_.Decode(ids, &text);
    if (!status.ok()) fail("{}: cannot decode ids: {}", path_, status.ToString());
    return text;
  }

  std::vector<int> prefix_ids() const override { return {processor_.bos_id()}; }
  std::vector<int> suffix_ids() const override { return {}; }
  int vocab_size() const override { return processor_.GetPieceSize(); }
  int bos_id() const override { return processor_.bos_id(); }
  int eos_id() const override { return processor_.eos_id(); }
  int pad_id() const override { return processor_.pad_id(); }
  int unk_id() const override { return processor_.unk_id(); }
  std::string id_to_piece(int id) const override { return processor_.IdToPiece(id); }
  bool is_text_token(int id) const override {
    if (processor_.IsControl(id) || processor_.IsUnused(id)) return false;
    // With byte fallback, a character outside the vocabulary becomes bytes, never <unk>.
    return !(processor_.IsUnknown(id) && byte_fallback_);
  }
  int token_id(const std::string& piece) const override {
    const int id = processor_.PieceToId(piece);
    return processor_.IdToPiece(id) == piece ? id : -1;
  }

 private:
  std::string path_;
  sentencepiece::SentencePieceProcessor processor_;
  bool byte_fallback_ = false;
};

}  // namespace

std::unique_ptr<TokenizerBackend> make_sentencepiece_backend(const std::string& path) {
  return std::make_unique<SentencePieceBackend>(path);
}

void train_sentencepiece(const std::string& flags) {
  auto status = sentencepiece::SentencePieceTrainer::Train(flags);
  if (!status.ok()) fail("sentencepiece training failed: {}", status.ToString());
}

}  // namespace ls::data
