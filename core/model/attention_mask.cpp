// Attention policies and masks (see attention_mask.h).
#include "core/model/attention_mask.h"

#include <ATen/ATen.h>

#include <charconv>

#include "core/base/error.h"

namespace ls {
namespace {

int64_t parse_layer(std::string_view text, std::string_view spec, std::string_view where) {
  int64_t value = -1;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 0)
    fail(
        "{}: '{}' is not a valid layer range (expected causal, bidirectional, bidirectional:K- "
        "or bidirectional:K-L)",
        where, spec);
  return value;
}

}  // namespace

std::string AttentionPolicy::describe() const {
  std::string text;
  if (bidirectional_begin >= bidirectional_end)
    text = "causal";
  else if (bidirectional_begin == 0 && bidirectional_end == std::numeric_limits<int64_t>::max())
    text = "bidirectional";
  else if (bidirectional_end == std::numeric_limits<int64_t>::max())
    text = fmt::format("bidirectional:{}-", bidirectional_begin);
  else
    text = fmt::format("bidirectional:{}-{}", bidirectional_begin, bidirectional_end - 1);
  return attend_to_padding ? text + " (attending to padding)" : text;
}

AttentionPolicy parse_attention_policy(std::string_view spec, std::string_view where) {
  if (spec == "causal") return AttentionPolicy::causal();
  if (spec == "bidirectional") return AttentionPolicy::bidirectional();
  constexpr std::string_view prefix = "bidirectional:";
  const auto dash = spec.find('-');
  if (spec.substr(0, prefix.size()) != prefix || dash == std::string_view::npos)
    fail(
        "{}: '{}' is not an attention policy (expected causal, bidirectional, "
        "bidirectional:K- or bidirectional:K-L)",
        where, spec);
  const auto first = spec.substr(prefix.size(), dash - prefix.size());
  const auto last = spec.substr(dash + 1);
  AttentionPolicy policy = AttentionPolicy::bidirectional_from(parse_layer(first, spec, where));
  if (!last.empty()) {
    const auto end = parse_layer(last, spec, where) + 1;
    if (end <= policy.bidirectional_begin) fail("{}: '{}' is an empty layer range", where, spec);
    policy.bidirectional_end = end;
  }
  return policy;
}

AttentionMasks build_attention_masks(const at::Tensor& attention_mask, bool attend_to_padding) {
  AttentionMasks masks;
  // One host sync per forward (the embedding's id check costs one too); it buys the flash kernel.
  if (attention_mask.numel() == 0 || attention_mask.all().item<bool>()) {
    masks.implicit_causal = true;
    return masks;  // bidirectional layers: no mask at all
  }
  const auto length = attention_mask.size(1);
  const auto options = attention_mask.options().dtype(at::kBool);
  const auto self = at::eye(length, options);
  const auto causal = at::ones({length, length}, options).tril();
  const auto keys = attention_mask.to(at::kBool).view({-1, 1, 1, length});
  // Causal layers always mask padding keys (left padding would otherwise leak into every token);
  // attend_to_padding unmasks them in the bidirectional layers only, as the original code did.
  masks.causal = (keys & causal) | self;
  if (!attend_to_padding) masks.bidirectional = keys | self;
  return masks;
}

}  // namespace ls
