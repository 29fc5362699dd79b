// Floating-point types by the names configs, command lines and checkpoints use: f32, bf16, f16
// (aliases fp32/float32/float, bfloat16, fp16/float16/half), and `auto` where the caller decides.
#pragma once

#include <c10/core/ScalarType.h>

#include <string>
#include <string_view>

#include "core/base/enum_names.h"

namespace ls {

// model.dtype and the programs' --dtype. kAuto leaves the type to the caller (the trainer: bf16
// on a GPU, f32 on the CPU; ls_export: the base checkpoint's).
enum class DtypeChoice { kAuto, kF32, kBF16, kF16 };

template <>
struct EnumNames<DtypeChoice> {
  static constexpr std::string_view what = "dtype";
  static constexpr EnumName<DtypeChoice> table[] = {
      {DtypeChoice::kAuto, "auto"},
      {DtypeChoice::kF32, "f32"},
      {DtypeChoice::kBF16, "bf16"},
      {DtypeChoice::kF16, "f16"},
      // Aliases (checkpoints' and torch's spellings): they parse but never print.
      {DtypeChoice::kF32, "fp32"},
      {DtypeChoice::kF32, "float32"},
      {DtypeChoice::kF32, "float"},
      {DtypeChoice::kBF16, "bfloat16"},
      {DtypeChoice::kF16, "fp16"},
      {DtypeChoice::kF16, "float16"},
      {DtypeChoice::kF16, "half"},
  };
};

// The type `choice` names; `automatic` for kAuto.
c10::ScalarType resolve_dtype(DtypeChoice choice, c10::ScalarType automatic);
// Parses the name of a type (aliases accepted, `auto` not); `key` names where it came from in the
// error ("--dtype").
c10::ScalarType parse_dtype(std::string_view name, std::string_view key);
// f32, bf16 or f16; other types by c10's name.
std::string dtype_name(c10::ScalarType dtype);

}  // namespace ls
