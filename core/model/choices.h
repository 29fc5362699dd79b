// The model's choices a config names: sequence pooling and activation checkpointing, with their
// name tables (core/base/enum_names.h). Torch-free, so the config (core/run/config.h) can hold
// them typed; head.h and llama.h use them.
#pragma once

#include "core/base/enum_names.h"

namespace ls {

// Sequence pooling: `last` = the last real token (HF's LlamaForSequenceClassification); `mean`
// and `max` pool the per-token logits over real tokens (the original LS-unLLaMA code pools the
// logits too, but over padding as well).
enum class Pooling { kLast, kMean, kMax };

template <>
struct EnumNames<Pooling> {
  static constexpr std::string_view what = "pooling";
  static constexpr EnumName<Pooling> table[] = {
      {Pooling::kLast, "last"}, {Pooling::kMean, "mean"}, {Pooling::kMax, "max"}};
};

// What a decoder layer keeps for backward. kNone: everything autograd saves. kSelective: GEMM
// and attention outputs, with norms, RoPE and SwiGLU recomputed in backward. kFull: only the
// layer's input; the whole layer runs again in backward.
enum class ActivationCheckpointing { kNone, kSelective, kFull };

template <>
struct EnumNames<ActivationCheckpointing> {
  static constexpr std::string_view what = "activation checkpointing mode";
  static constexpr EnumName<ActivationCheckpointing> table[] = {
      {ActivationCheckpointing::kNone, "none"},
      {ActivationCheckpointing::kSelective, "selective"},
      {ActivationCheckpointing::kFull, "full"}};
};

}  // namespace ls
