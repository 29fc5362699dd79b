// CSV and TSV rows with RFC 4180 quoting: a field that starts with a double quote runs to the
// matching quote and may hold delimiters, newlines and doubled quotes ("" is one "). Rows carry
// the line they start on so readers can name `file:line`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/text_file.h"

namespace ls::data {

struct DelimitedRow {
  int64_t line = 0;  // 1-based line the row starts on
  std::vector<std::string> fields;
};

// Splits `file` into rows. Blank lines between rows are skipped. With `quoting` off every quote is
// literal (for TSV files that are not quoted, like GLUE's). Throws UserError naming file:line for
// a quote that never closes or text between a closing quote and the next delimiter.
std::vector<DelimitedRow> parse_delimited(const TextFile& file, char delimiter, bool quoting);

}  // namespace ls::data
