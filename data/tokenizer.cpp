// Tokenizer over the sentencepiece library (see tokenizer.h).
#include "data/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <filesystem>

#include "core/error.h"  // header-only: UserError, fail()

namespace ls::data {

Tokenizer::Tokenizer(const std::string& model_path, TokenizerOptions options)
    : path_(model_path), options_(options),
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

int Tokenizer::vocab_size() const { return processor_->GetPieceSize(); }
int Tokenizer::bos_id() const { return processor_->bos_id(); }
int Tokenizer::eos_id() const { return processor_->eos_id(); }
int Tokenizer::pad_id() const { return processor_->pad_id(); }
int Tokenizer::unk_id() const { return processor_->unk_id(); }
std::string Tokenizer::id_to_piece(int id) const { return processor_->IdToPiece(id); }

void train_sentencepiece(const std::string& flags) {
  auto status = sentencepiece::SentencePieceTrainer::Train(flags);
  if (!status.ok()) fail("sentencepiece training failed: {}", status.ToString());
}

}  // namespace ls::data
