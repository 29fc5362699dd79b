// Tokenizer over the sentencepiece library (see tokenizer.h).
#include "data/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <filesystem>

#include "core/base/error.h"  // header-only: UserError, fail()

namespace ls::data {

Tokenizer::Tokenizer(const std::string& model_path, TokenizerOptions options)
    : path_(model_path),
      options_(options),
      processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(model_path, ec))
    fail("{}: tokenizer model not found", model_path);
  auto status = processor_->Load(model_path);
  if (!status.ok()) fail("{}: not a sentencepiece model ({})", model_path, status.ToString());
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

std::vector<int> Tokenizer::encode_plain(std::string_view text) const {
  std::vector<int> ids;
  auto status = processor_->Encode(text, &ids);
  if (!status.ok()) fail("{}: cannot encode text: {}", path_, status.ToString());
  return ids;
}

std::vector<int> Tokenizer::encode(std::string_view text) const {
  std::vector<int> body = encode_plain(text);
  std::vector<int> ids;
  ids.reserve(body.size() + 2);
  if (options_.add_bos) ids.push_back(bos_id());
  ids.insert(ids.end(), body.begin(), body.end());
  if (options_.add_eos) ids.push_back(eos_id());
  return ids;
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
  sentencepiece::ImmutableSentencePieceText encoded;
  auto status = processor_->Encode(sentence, encoded.mutable_proto());
  if (!status.ok()) fail("{}: cannot encode text: {}", path_, status.ToString());

  WordEncoding out;
  const size_t n = encoded.pieces_size();
  out.ids.reserve(n + 2);
  out.word_ids.reserve(n + 2);
  if (options_.add_bos) {
    out.ids.push_back(bos_id());
    out.word_ids.push_back(-1);
  }
  for (size_t i = 0; i < n; ++i) {
    const auto piece = encoded.pieces(static_cast<int>(i));
    const auto after = std::upper_bound(word_begins.begin(), word_begins.end(), piece.begin());
    out.ids.push_back(static_cast<int>(piece.id()));
    out.word_ids.push_back(static_cast<int>(after - word_begins.begin()) - 1);
  }
  if (options_.add_eos) {
    out.ids.push_back(eos_id());
    out.word_ids.push_back(-1);
  }
  return out;
}

std::vector<std::string> Tokenizer::pieces(std::string_view text) const {
  std::vector<std::string> out;
  auto status = processor_->Encode(text, &out);
  if (!status.ok()) fail("{}: cannot encode text: {}", path_, status.ToString());
  return out;
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  std::string text;
  auto status = processor_->Decode(ids, &text);
  if (!status.ok()) fail("{}: cannot decode ids: {}", path_, status.ToString());
  return text;
}

int Tokenizer::vocab_size() const {
  return processor_->GetPieceSize();
}
int Tokenizer::bos_id() const {
  return processor_->bos_id();
}
int Tokenizer::eos_id() const {
  return processor_->eos_id();
}
int Tokenizer::pad_id() const {
  return processor_->pad_id();
}
int Tokenizer::unk_id() const {
  return processor_->unk_id();
}
std::string Tokenizer::id_to_piece(int id) const {
  return processor_->IdToPiece(id);
}

void train_sentencepiece(const std::string& flags) {
  auto status = sentencepiece::SentencePieceTrainer::Train(flags);
  if (!status.ok()) fail("sentencepiece training failed: {}", status.ToString());
}

}  // namespace ls::data
