// BPE: the model of a tokenizer.json, as `tokenizers`' models/bpe/: a word's characters (bytes,
// for byte-level vocabularies) as tokens, then merges applied lowest rank first, leftmost on ties;
// ignore_merges (a word already in the vocabulary is one token), byte_fallback (`<0xXX>` tokens)
// and unk_token with fuse_unk. Words seen before come from a cache shared by threads.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "data/tokenizer/hf/unicode.h"

namespace ls::data::hf {

// One token of a word: its id and the byte of the word where it begins.
struct Symbol {
  int id;
  uint32_t begin;
};

struct BpeOptions {
  // The vocabulary is written in GPT-2's byte alphabet and words arrive as bytes (a ByteLevel
  // pre-tokenizer): the strings are mapped back to the bytes they stand for.
  bool byte_level = false;
  int unk_id = -1;  // -1: characters with no token (and no byte fallback) are dropped
  bool fuse_unk = false, byte_fallback = false, ignore_merges = false;
};

class Bpe {
 public:
  // `vocab`: the file's strings to ids (ids >= 0).
  Bpe(StringMap vocab, BpeOptions options);
  Bpe(const Bpe&) = delete;
  Bpe& operator=(const Bpe&) = delete;

  // The next merge, ranked after those added before. False (nothing added) when `left`, `right`
  // or their concatenation is not in the vocabulary. A pair seen before takes the new rank, as in
  // `tokenizers` (its merge map is built in order, later entries replacing earlier ones).
  bool add_merge(std::string_view left, std::string_view right);
  void reserve_merges(size_t count) { merges_.reserve(count); }

  // The tokens of one pre-tokenized word (tokenizers' BPE::tokenize).
  void tokenize(std::string_view word, std::vector<Symbol>& out) const;
  // How merge_word finds the next merge: a scan over all pairs (O(n^2), fast on short words), a
  // heap (O(n log n)), or kAuto: the scan below kHeapFrom symbols. The tokens are the same.
  enum class MergeMethod { kAuto, kScan, kHeap };
  static constexpr size_t kHeapFrom = 96;
  // The same without the cache or ignore_merges: the word's units merged (tokenizers'
  // merge_word).
  void merge_word(std::string_view word, std::vector<Symbol>& out,
                  MergeMethod method = MergeMethod::kAuto) const;

  int unk_id() const { return options_.unk_id; }
  bool byte_fallback() const { return options_.byte_fallback; }
  int max_id() const { return static_cast<int>(pieces_.size()) - 1; }
  const StringMap& vocab() const { return vocab_; }
  const std::vector<std::string>& pieces() const { return pieces_; }

 private:
  int unit_id(std::string_view unit) const {
    if (options_.byte_level) return byte_ids_[static_cast<unsigned char>(unit[0])];
    auto it = vocab_.find(unit);
    return it == vocab_.end() ? -1 : it->second;
  }
  // The word's characters (bytes) as tokens, before any merge.
  void initial_symbols(std::string_view word, std::vector<Symbol>& out) const;
  void merge_by_scan(std::vector<Symbol>& symbols) const;
  void merge_by_heap(std::vector<Symbol>& symbols) const;

  BpeOptions options_;
  StringMap vocab_;                      // the file's strings
  StringMap byte_vocab_;                 // byte-level: the bytes each string stands for
  std::vector<std::string> pieces_;      // id -> the file's string
  std::array<int, 256> byte_ids_{};      // byte-level: id of each single byte
  std::array<int, 256> fallback_ids_{};  // byte_fallback: id of "<0xXX>"
  std::unordered_map<uint64_t, std::pair<int, int>> merges_;  // (left, right) -> (rank, new id)
  int merges_added_ = 0;

  // Words to their tokens, in shards so threads building a dataset rarely wait for each other.
  struct CacheShard {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<Symbol>, StringHash, std::equal_to<>> words;
  };
  static constexpr size_t kShards = 16, kShardCapacity = 1 << 14, kMaxCachedWord = 256;
  mutable std::array<CacheShard, kShards> cache_;
};

}  // namespace ls::data::hf
