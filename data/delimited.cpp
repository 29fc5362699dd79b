// RFC 4180 CSV/TSV parsing (see delimited.h).
#include "data/delimited.h"

#include "core/base/error.h"

namespace ls::data {

std::vector<DelimitedRow> parse_delimited(const TextFile& file, char delimiter, bool quoting) {
  const std::string_view text = file.contents();
  const size_t n = text.size();
  std::vector<DelimitedRow> rows;
  DelimitedRow row;
  std::string field;
  int64_t line = 1;
  size_t i = 0;

  auto end_row = [&] {
    // A line with nothing on it is not a row of one empty field.
    const bool blank = row.fields.size() == 1 && row.fields[0].empty();
    if (!blank) rows.push_back(std::move(row));
    row = DelimitedRow{};
  };

  while (i < n) {
    if (row.fields.empty() && field.empty()) row.line = line;
    if (quoting && text[i] == '"') {
      const int64_t open_line = line;
      ++i;
      bool closed = false;
      while (i < n) {
        const char c = text[i];
        if (c == '"') {
          if (i + 1 < n && text[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          closed = true;
          break;
        }
        if (c == '\n') ++line;
        field.push_back(c);
        ++i;
      }
      if (!closed)
        fail(
            "{}: unbalanced quote: the quoted field opened here never closes (if quotes in "
            "this file are literal, set data.csv_quoting: false)",
            file.where(open_line));
      // CRLF, or a CR ending the file: the CR is the line ending's, not the field's.
      if (i < n && text[i] == '\r' && (i + 1 == n || text[i + 1] == '\n')) ++i;
      if (i < n && text[i] != delimiter && text[i] != '\n')
        fail(
            "{}: unexpected '{}' after a closing quote (quote the whole field and double the "
            "quotes inside it, or set data.csv_quoting: false if quotes are literal)",
            file.where(line), text[i]);
    } else {
      const size_t start = i;
      while (i < n && text[i] != delimiter && text[i] != '\n') ++i;
      std::string_view raw = text.substr(start, i - start);
      if (i < n && text[i] == '\n' && !raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
      if (i == n && !raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
      field.append(raw);
    }
    // Here i is at a delimiter, a newline or the end.
    row.fields.push_back(std::move(field));
    field.clear();
    if (i < n && text[i] == delimiter) {
      ++i;
      if (i == n) row.fields.emplace_back();  // trailing delimiter: one last empty field
      continue;
    }
    if (i < n) {  // newline
      ++i;
      ++line;
    }
    end_row();
  }
  if (!row.fields.empty()) end_row();  // the file ended right after a delimiter
  return rows;
}

}  // namespace ls::data
