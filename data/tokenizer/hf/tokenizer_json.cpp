// The tokenizer.json backend of data::Tokenizer: reads HF `tokenizers`' file, builds each stage
// from its JSON (normalizer, pre-tokenizer, BPE model, added tokens, post-processor, decoder),
// strings them into a Pipeline (pipeline.h), and finds BOS/EOS/PAD, so ids are equal to
// `tokenizers`' `encode(text).ids`. Anything the stages do not implement is refused naming the
// JSON key. docs/TOKENIZERS.md.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "core/base/error.h"  // header-only: UserError, fail()
#include "data/tokenizer/backend.h"
#include "data/tokenizer/hf/pipeline.h"

namespace ls::data::hf {
namespace {

using json = nlohmann::json;

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

Pattern read_pattern(const JsonReader& r, const json& j, const std::string& key) {
  const json& pattern = r.at(j, key, "pattern");
  if (pattern.contains("String"))
    return Pattern::literal(r.string(pattern, key + ".pattern", "String"));
  if (pattern.contains("Regex"))
    return Pattern::regex(r.string(pattern, key + ".pattern", "Regex"),
                          r.path() + ": " + key + ".pattern");
  fail("{}: {}.pattern should hold \"String\" or \"Regex\"", r.path(), key);
}

// ---- The stages --------------------------------------------------------------------------------

std::unique_ptr<Normalizer> read_normalizer(const JsonReader& r, const json& j,
                                            const std::string& key) {
  if (j.is_null()) return nullptr;
  const std::string type = r.type(j, key);
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(UnicodeForm::kNfc);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(UnicodeForm::kNfd);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(UnicodeForm::kNfkc);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(UnicodeForm::kNfkd);
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

// Metaspace's prepend_scheme (always when absent), as `tokenizers` reads it: add_prefix_space
// false goes only with "never", and tokenizers refuses to load the file otherwise.
MetaspacePreTokenizer::Prepend read_prepend_scheme(const JsonReader& r, const json& j,
                                                   const std::string& key) {
  using Prepend = MetaspacePreTokenizer::Prepend;
  std::string name = "always";
  if (j.contains("prepend_scheme")) name = r.string(j, key, "prepend_scheme");
  if (!r.value(j, "add_prefix_space", true, key) && name != "never")
    fail(
        "{}: {}.add_prefix_space is false but {}.prepend_scheme is \"{}\" (tokenizers refuses "
        "this file: add_prefix_space false goes with prepend_scheme \"never\")",
        r.path(), key, key, name);
  if (name == "always") return Prepend::kAlways;
  if (name == "first") return Prepend::kFirst;
  if (name == "never") return Prepend::kNever;
  r.unsupported(key + ".prepend_scheme", name, "always, first, never");
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
    const auto scheme = read_prepend_scheme(r, j, key);
    chain.needs_origins |= scheme == MetaspacePreTokenizer::Prepend::kFirst;
    chain.steps.push_back(std::make_unique<MetaspacePreTokenizer>(replacement, scheme,
                                                                  r.value(j, "split", true, key)));
  } else if (type == "Digits") {
    chain.steps.push_back(digits_pre_tokenizer(r.value(j, "individual_digits", false, key)));
  } else {
    r.unsupported(key + ".type", type, "Split, ByteLevel, Metaspace, Digits, Sequence");
  }
}

std::unique_ptr<Bpe> read_model(const JsonReader& r, const json& model, bool byte_level) {
  const std::string type = model.contains("type") ? r.type(model, "model") : "BPE";
  if (type != "BPE") r.unsupported("model.type", type, "BPE only");
  if (!r.value<std::string>(model, "continuing_subword_prefix", "", "model").empty())
    fail("{}: model.continuing_subword_prefix is not supported (tokenizer.json reader)", r.path());
  if (!r.value<std::string>(model, "end_of_word_suffix", "", "model").empty())
    fail("{}: model.end_of_word_suffix is not supported (tokenizer.json reader)", r.path());
  if (r.value(model, "dropout", 0.0, "model") > 0.0)
    fail("{}: model.dropout is set: BPE dropout makes encoding random, not for training data",
         r.path());
  BpeOptions options;
  options.byte_level = byte_level;
  options.fuse_unk = r.value(model, "fuse_unk", false, "model");
  options.byte_fallback = r.value(model, "byte_fallback", false, "model");
  options.ignore_merges = r.value(model, "ignore_merges", false, "model");

  const json& vocab_json = r.at(model, "model", "vocab");
  if (!vocab_json.is_object()) fail("{}: model.vocab should be an object", r.path());
  StringMap vocab;
  vocab.reserve(vocab_json.size());
  for (const auto& [piece, id_json] : vocab_json.items()) {
    const int id = id_json.get<int>();
    if (id < 0) fail("{}: model.vocab: \"{}\" has a negative id", r.path(), piece);
    vocab.emplace(piece, id);
  }
  const std::string unk = r.value<std::string>(model, "unk_token", "", "model");
  if (!unk.empty()) {
    auto it = vocab.find(unk);
    if (it == vocab.end()) fail("{}: model.unk_token \"{}\" is not in model.vocab", r.path(), unk);
    options.unk_id = it->second;
  }
  auto bpe = std::make_unique<Bpe>(std::move(vocab), options);

  const json& merges = r.at(model, "model", "merges");
  bpe->reserve_merges(merges.size());
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
    if (!bpe->add_merge(left, right))
      fail("{}: model.merges[{}] \"{} {}\" uses a token missing from model.vocab", r.path(), rank,
           left, right);
  }
  return bpe;
}

std::unique_ptr<Decoder> read_decoder(const JsonReader& r, const json& j, const std::string& key) {
  const std::string type = r.type(j, key);
  if (type == "Sequence") {
    const json& list = r.at(j, key, "decoders");
    std::vector<std::unique_ptr<Decoder>> steps;
    for (size_t i = 0; i < list.size(); ++i)
      if (!list[i].is_null())
        steps.push_back(read_decoder(r, list[i], fmt::format("{}.decoders[{}]", key, i)));
    return sequence_decoder(std::move(steps));
  }
  if (type == "ByteLevel") return byte_level_decoder();
  if (type == "Replace") {
    const json& pattern = r.at(j, key, "pattern");
    if (!pattern.contains("String"))
      r.unsupported(key + ".pattern", pattern.dump(), "String patterns");
    std::string from = r.string(pattern, key + ".pattern", "String");
    return replace_decoder(std::move(from), r.string(j, key, "content"));
  }
  if (type == "ByteFallback") return byte_fallback_decoder();
  if (type == "Fuse") return fuse_decoder();
  if (type == "Strip") {
    std::string content = r.string(j, key, "content");
    const size_t start = r.value<size_t>(j, "start", 0, key);
    const size_t stop = r.value<size_t>(j, "stop", 0, key);
    return strip_decoder(std::move(content), start, stop);
  }
  if (type == "Metaspace") {
    std::string replacement = r.string(j, key, "replacement");
    const bool strip_first =
        read_prepend_scheme(r, j, key) != MetaspacePreTokenizer::Prepend::kNever;
    return metaspace_decoder(std::move(replacement), strip_first);
  }
  r.unsupported(key + ".type", type,
                "ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence");
}

// Ids as `tokenizers` gives them when it loads the file (AddedVocabulary::add_tokens), not the
// file's `id`: a content in the model's vocabulary keeps that id; any other takes the model's
// vocabulary size, or one past the largest added id when that is already past it. Empty contents
// are skipped, as there. A content added twice is refused (tokenizers merges the two entries'
// flags in ways not worth copying; no real file has one).
std::vector<AddedToken> read_added_tokens(const JsonReader& r, const json& added,
                                          const Bpe& model) {
  std::vector<AddedToken> tokens;
  tokens.reserve(added.size());
  std::unordered_map<std::string, size_t> index_of;
  const int model_size = static_cast<int>(model.vocab().size());
  int max_id = -1;
  for (size_t i = 0; i < added.size(); ++i) {
    const std::string key = fmt::format("added_tokens[{}]", i);
    AddedToken t;
    t.content = r.string(added[i], key, "content");
    if (t.content.empty()) continue;
    if (auto [it, fresh] = index_of.emplace(t.content, i); !fresh)
      fail(
          "{}: {}.content \"{}\" repeats added_tokens[{}] (tokenizer.json reader: each added "
          "token once)",
          r.path(), key, t.content, it->second);
    if (auto in_vocab = model.vocab().find(t.content); in_vocab != model.vocab().end())
      t.id = in_vocab->second;
    else
      t.id = max_id < 0 ? model_size
                        : (max_id >= model_size || model_size == 0 ? max_id + 1 : model_size);
    max_id = std::max(max_id, t.id);
    t.special = r.value(added[i], "special", false, key);
    t.normalized = r.value(added[i], "normalized", !t.special, key);
    t.lstrip = r.value(added[i], "lstrip", false, key);
    t.rstrip = r.value(added[i], "rstrip", false, key);
    t.single_word = r.value(added[i], "single_word", false, key);
    tokens.push_back(std::move(t));
  }
  return tokens;
}

void read_post_processor(const JsonReader& r, const json& j, const std::string& key,
                         PostProcessor& out) {
  if (j.is_null()) return;
  const std::string type = r.type(j, key);
  if (type == "Sequence") {
    const json& list = r.at(j, key, "processors");
    for (size_t i = 0; i < list.size(); ++i)
      read_post_processor(r, list[i], fmt::format("{}.processors[{}]", key, i), out);
  } else if (type == "ByteLevel") {
    // Offsets only (trim_offsets); the ids stay.
  } else if (type == "TemplateProcessing") {
    const json& single = r.at(j, key, "single");
    const json& specials = r.at(j, key, "special_tokens");
    std::vector<TemplateItem> items;
    for (size_t i = 0; i < single.size(); ++i) {
      const std::string item = fmt::format("{}.single[{}]", key, i);
      if (single[i].contains("Sequence")) {
        if (r.string(single[i]["Sequence"], item + ".Sequence", "id") != "A")
          fail("{}: {}.Sequence.id should be \"A\" in a single-sequence template", r.path(), item);
        items.push_back({true, {}});
        continue;
      }
      const std::string name = r.string(r.at(single[i], item, "SpecialToken"), item, "id");
      if (!specials.contains(name))
        fail("{}: {}.special_tokens has no \"{}\"", r.path(), key, name);
      TemplateItem special;
      for (int id : r.at(specials.at(name), key + ".special_tokens." + name, "ids"))
        special.ids.push_back(id);
      items.push_back(std::move(special));
    }
    out.add_template(items);
  } else {
    r.unsupported(key + ".type", type, "TemplateProcessing, ByteLevel, Sequence");
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

std::unique_ptr<Pipeline> read_pipeline(const std::string& path) {
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
  auto normalizer = read_normalizer(r, section("normalizer"), "normalizer");
  PreTokenizerChain pre_tokenizer;
  read_pre_tokenizer(r, section("pre_tokenizer"), "pre_tokenizer", pre_tokenizer);
  auto model = read_model(r, r.at(root, "tokenizer", "model"), pre_tokenizer.byte_level);
  std::unique_ptr<Decoder> decoder;
  if (!section("decoder").is_null()) decoder = read_decoder(r, section("decoder"), "decoder");
  auto added = read_added_tokens(r, section("added_tokens"), *model);
  PostProcessor post_processor;
  read_post_processor(r, section("post_processor"), "post_processor", post_processor);
  return std::make_unique<Pipeline>(path, std::move(normalizer), std::move(pre_tokenizer),
                                    std::move(model), std::move(added), std::move(post_processor),
                                    std::move(decoder));
}

class HfBackend final : public TokenizerBackend {
 public:
  explicit HfBackend(const std::string& path);

  std::vector<int> encode_plain(std::string_view text) const override {
    std::vector<int> ids;
    pipeline_->encode(text, ids, nullptr);
    return ids;
  }
  void encode_with_offsets(std::string_view text, std::vector<int>& ids,
                           std::vector<size_t>& begins) const override {
    ids.clear();
    begins.clear();
    pipeline_->encode(text, ids, &begins);
  }
  std::vector<std::string> pieces(std::string_view text) const override {
    std::vector<std::string> out;
    for (int id : encode_plain(text)) out.push_back(id_to_piece(id));
    return out;
  }
  std::string decode(const std::vector<int>& ids) const override { return pipeline_->decode(ids); }

  std::vector<int> prefix_ids() const override { return pipeline_->post_processor().prefix_ids(); }
  std::vector<int> suffix_ids() const override { return pipeline_->post_processor().suffix_ids(); }
  int vocab_size() const override { return vocab_size_; }
  int bos_id() const override { return bos_id_; }
  int eos_id() const override { return eos_id_; }
  int pad_id() const override { return pad_id_; }
  int unk_id() const override { return pipeline_->model().unk_id(); }
  std::string id_to_piece(int id) const override { return pipeline_->id_to_piece(id); }
  bool is_text_token(int id) const override {
    if (const AddedToken* added = pipeline_->added_tokens().find(id)) return !added->special;
    return !(id == pipeline_->model().unk_id() && pipeline_->model().byte_fallback());
  }
  int token_id(const std::string& piece) const override { return pipeline_->token_id(piece); }

 private:
  std::unique_ptr<const Pipeline> pipeline_;
  int vocab_size_ = 0, bos_id_ = -1, eos_id_ = -1, pad_id_ = -1;
};

HfBackend::HfBackend(const std::string& path) : pipeline_(read_pipeline(path)) {
  vocab_size_ = pipeline_->vocab_size();
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
  const std::vector<int>& prefix = pipeline_->post_processor().prefix_ids();
  const std::vector<int>& suffix = pipeline_->post_processor().suffix_ids();
  bos_id_ = pipeline_->token_id(config_token(config, "bos_token"));
  if (bos_id_ < 0 && !prefix.empty()) bos_id_ = prefix.front();
  eos_id_ = pipeline_->token_id(config_token(config, "eos_token"));
  if (eos_id_ < 0 && !suffix.empty()) eos_id_ = suffix.back();
  for (const char* name : {"<|end_of_text|>", "<|endoftext|>", "</s>", "<eos>", "<|eot_id|>"})
    if (eos_id_ < 0) eos_id_ = pipeline_->token_id(name);
  pad_id_ = pipeline_->token_id(config_token(config, "pad_token"));
}

}  // namespace
}  // namespace ls::data::hf

namespace ls::data {

std::unique_ptr<TokenizerBackend> make_hf_backend(const std::string& path) {
  return std::make_unique<hf::HfBackend>(path);
}

}  // namespace ls::data
