// Enum <-> text, one table per enum: the spellings configs, files and command lines use.
//
// An enum with a text form specialises EnumNames next to its definition:
//   template <> struct EnumNames<Pooling> {
//     static constexpr std::string_view what = "pooling";  // "unknown pooling 'x'"
//     static constexpr EnumName<Pooling> table[] = {
//         {Pooling::kLast, "last"}, {Pooling::kMean, "mean"}, {Pooling::kMax, "max"}};
//   };
// The first entry of a value is its name; later entries of the same value are aliases, which
// parse (when asked to) but never print. From the table: parse_enum (UserError naming the key and
// the choices), try_parse_enum, enum_name, and enum_choices (what the config schema documents and
// checks against). Header-only, no libtorch: data/ uses it.
#pragma once

#include <fmt/format.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/error.h"

namespace ls {

template <class E>
struct EnumName {
  E value;
  std::string_view name;
};

template <class E>
struct EnumNames;  // specialised per enum: `what` and `table`, see above

template <class E>
concept NamedEnum = requires {
  EnumNames<E>::what;
  EnumNames<E>::table;
};

enum class Aliases { kAccept, kReject };

// Whether the table entry at `index` is the first (printed) one of its value.
template <NamedEnum E>
constexpr bool is_primary(size_t index) {
  for (size_t i = 0; i < index; ++i)
    if (EnumNames<E>::table[i].value == EnumNames<E>::table[index].value) return false;
  return true;
}

template <NamedEnum E>
std::optional<E> try_parse_enum(std::string_view text, Aliases aliases = Aliases::kAccept) {
  const auto& table = EnumNames<E>::table;
  for (size_t i = 0; i < std::size(table); ++i)
    if (table[i].name == text && (aliases == Aliases::kAccept || is_primary<E>(i)))
      return table[i].value;
  return std::nullopt;
}

template <NamedEnum E>
std::string_view enum_name(E value) {
  for (const auto& entry : EnumNames<E>::table)
    if (entry.value == value) return entry.name;
  LS_ASSERT(false, "{} {} has no name", EnumNames<E>::what, static_cast<int>(value));
  return {};
}

// The printed names, in table order (aliases left out).
template <NamedEnum E>
std::vector<std::string> enum_choices() {
  std::vector<std::string> names;
  for (size_t i = 0; i < std::size(EnumNames<E>::table); ++i)
    if (is_primary<E>(i)) names.emplace_back(EnumNames<E>::table[i].name);
  return names;
}

// "a, b or c".
inline std::string or_list(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i)
    out += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
  return out;
}

// UserError "WHERE: unknown WHAT 'TEXT' (expected a, b or c)" when `text` is no name of E.
template <NamedEnum E>
E parse_enum(std::string_view text, std::string_view where, Aliases aliases = Aliases::kAccept) {
  if (auto value = try_parse_enum<E>(text, aliases)) return *value;
  fail("{}{}unknown {} '{}' (expected {})", where, where.empty() ? "" : ": ", EnumNames<E>::what,
       text, or_list(enum_choices<E>()));
}

}  // namespace ls
