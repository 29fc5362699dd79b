// The BPE model (bpe.h).
#include "data/tokenizer/hf/bpe.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <queue>

namespace ls::data::hf {
namespace {

uint64_t pair_key(int left, int right) {
  return (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
}

}  // namespace

Bpe::Bpe(StringMap vocab, BpeOptions options) : options_(options), vocab_(std::move(vocab)) {
  for (const auto& [piece, id] : vocab_) {
    if (static_cast<size_t>(id) >= pieces_.size()) pieces_.resize(id + 1);
    pieces_[id] = piece;
  }
  byte_ids_.fill(-1);
  fallback_ids_.fill(-1);
  if (options_.byte_level) {
    for (const auto& [piece, id] : vocab_)
      if (auto bytes = byte_alphabet().to_bytes(piece)) {
        if (bytes->size() == 1) byte_ids_[static_cast<unsigned char>((*bytes)[0])] = id;
        byte_vocab_.emplace(std::move(*bytes), id);
      }
  }
  if (options_.byte_fallback)
    for (int b = 0; b < 256; ++b)
      if (auto it = vocab_.find(fmt::format("<0x{:02X}>", b)); it != vocab_.end())
        fallback_ids_[b] = it->second;
}

bool Bpe::add_merge(std::string_view left, std::string_view right) {
  const int rank = merges_added_++;
  std::string joined;
  joined.reserve(left.size() + right.size());
  joined.append(left).append(right);
  auto a = vocab_.find(left), b = vocab_.find(right), merged = vocab_.find(joined);
  if (a == vocab_.end() || b == vocab_.end() || merged == vocab_.end()) return false;
  merges_.insert_or_assign(pair_key(a->second, b->second), std::make_pair(rank, merged->second));
  return true;
}

void Bpe::tokenize(std::string_view word, std::vector<Symbol>& out) const {
  out.clear();
  if (word.empty()) return;
  if (options_.ignore_merges) {
    const StringMap& whole = options_.byte_level ? byte_vocab_ : vocab_;
    if (auto it = whole.find(word); it != whole.end()) {
      out.push_back({it->second, 0});
      return;
    }
  }
  if (word.size() > kMaxCachedWord) return merge_word(word, out);
  CacheShard& shard = cache_[std::hash<std::string_view>{}(word) % kShards];
  {
    std::lock_guard lock(shard.mutex);
    if (auto it = shard.words.find(word); it != shard.words.end()) {
      out = it->second;
      return;
    }
  }
  merge_word(word, out);
  std::lock_guard lock(shard.mutex);
  if (shard.words.size() >= kShardCapacity) shard.words.clear();
  shard.words.emplace(std::string(word), out);
}

// Unknown characters become byte-fallback tokens or <unk> (fused with fuse_unk).
void Bpe::initial_symbols(std::string_view word, std::vector<Symbol>& out) const {
  std::optional<Symbol> unk;
  for (size_t at = 0; at < word.size();) {
    const size_t len = options_.byte_level ? 1 : utf8_length(word[at]);
    const std::string_view unit = word.substr(at, len);
    const uint32_t begin = static_cast<uint32_t>(at);
    at += len;
    if (const int id = unit_id(unit); id >= 0) {
      if (unk) out.push_back(*unk), unk.reset();
      out.push_back({id, begin});
      continue;
    }
    if (options_.byte_fallback && std::all_of(unit.begin(), unit.end(), [&](char b) {
          return fallback_ids_[static_cast<unsigned char>(b)] >= 0;
        })) {
      for (size_t k = 0; k < unit.size(); ++k)
        out.push_back(
            {fallback_ids_[static_cast<unsigned char>(unit[k])], static_cast<uint32_t>(begin + k)});
      continue;
    }
    if (options_.unk_id < 0) continue;  // no <unk>: tokenizers drops the character
    if (unk && !options_.fuse_unk) out.push_back(*unk);
    if (!unk || !options_.fuse_unk) unk = Symbol{options_.unk_id, begin};
  }
  if (unk) out.push_back(*unk);
}

// tokenizers' BPE::merge_word: the lowest-ranked merge, leftmost first, until none applies. Both
// ways give the same tokens; the scan is faster on short words (measured: 4-64 bytes,
// about 1.3-2x), the heap from about 100 symbols on, and it keeps a long word from taking quadratic
// time.
void Bpe::merge_word(std::string_view word, std::vector<Symbol>& out, MergeMethod method) const {
  out.clear();
  initial_symbols(word, out);
  if (method == MergeMethod::kScan || (method == MergeMethod::kAuto && out.size() < kHeapFrom))
    merge_by_scan(out);
  else
    merge_by_heap(out);
}

// As tokenizers' Word::merge_all: the symbols form a linked list and every pair that has a merge
// waits in a heap ordered by (rank, position); an entry whose pair has changed since it was pushed
// is skipped when it comes up. O(n log n) in the word's length.
void Bpe::merge_by_heap(std::vector<Symbol>& out) const {
  const size_t n = out.size();
  if (n < 2) return;
  struct Merge {
    int rank;
    uint32_t pos;  // the left symbol; positions order symbols left to right
    int new_id;
    bool operator>(const Merge& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<uint32_t> next(n), prev(n);
  std::vector<char> removed(n, 0);
  for (size_t i = 0; i < n; ++i) {
    next[i] = static_cast<uint32_t>(i + 1);  // n: none
    prev[i] = static_cast<uint32_t>(i) - 1;  // UINT32_MAX: none
  }
  constexpr uint32_t kNoPrev = std::numeric_limits<uint32_t>::max();
  auto merge_at = [&](uint32_t left, uint32_t right) -> const std::pair<int, int>* {
    auto it = merges_.find(pair_key(out[left].id, out[right].id));
    return it == merges_.end() ? nullptr : &it->second;
  };
  std::vector<Merge> heap_storage;
  heap_storage.reserve(n);
  std::priority_queue<Merge, std::vector<Merge>, std::greater<>> queue(std::greater<>{},
                                                                       std::move(heap_storage));
  for (uint32_t i = 0; i + 1 < n; ++i)
    if (const auto* m = merge_at(i, i + 1)) queue.push({m->first, i, m->second});
  while (!queue.empty()) {
    const Merge top = queue.top();
    queue.pop();
    if (removed[top.pos] || next[top.pos] >= n) continue;
    const uint32_t right = next[top.pos];
    // Stale: the pair at this position is no longer the one pushed (a pair's merged id names it:
    // its left symbol starts here and the merged string ends where the pair does).
    const auto* current = merge_at(top.pos, right);
    if (!current || current->second != top.new_id) continue;
    out[top.pos].id = top.new_id;
    removed[right] = 1;
    next[top.pos] = next[right];
    if (next[right] < n) prev[next[right]] = top.pos;
    if (const uint32_t before = prev[top.pos]; before != kNoPrev)
      if (const auto* m = merge_at(before, top.pos)) queue.push({m->first, before, m->second});
    if (next[top.pos] < n)
      if (const auto* m = merge_at(top.pos, next[top.pos]))
        queue.push({m->first, top.pos, m->second});
  }
  size_t kept = 0;
  for (uint32_t i = 0; i < n; i = next[i]) out[kept++] = out[i];
  out.resize(kept);
}

// Each step looks at every pair for the lowest rank: O(n^2), simple, the reference for the heap.
void Bpe::merge_by_scan(std::vector<Symbol>& out) const {
  constexpr int kNone = std::numeric_limits<int>::max();
  std::vector<int> rank(out.size() > 1 ? out.size() - 1 : 0), merged(rank.size());
  auto pair_at = [&](size_t i) {
    auto it = merges_.find(pair_key(out[i].id, out[i + 1].id));
    rank[i] = it == merges_.end() ? kNone : it->second.first;
    merged[i] = it == merges_.end() ? -1 : it->second.second;
  };
  for (size_t i = 0; i < rank.size(); ++i) pair_at(i);
  while (!rank.empty()) {
    const size_t best = std::min_element(rank.begin(), rank.end()) - rank.begin();
    if (rank[best] == kNone) break;
    out[best].id = merged[best];
    out.erase(out.begin() + static_cast<ptrdiff_t>(best) + 1);
    rank.erase(rank.begin() + static_cast<ptrdiff_t>(best));
    merged.erase(merged.begin() + static_cast<ptrdiff_t>(best));
    if (best > 0) pair_at(best - 1);
    if (best < rank.size()) pair_at(best);
  }
}

}  // namespace ls::data::hf
