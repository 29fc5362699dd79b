// ls_tokenize: UTF-8 lines on stdin -> one JSON array of token ids per line on stdout.
// The tokenizer is a sentencepiece tokenizer.model or a HF tokenizer.json
// (data/tokenizer/tokenizer.h). BOS as the file has it (sentencepiece: BOS first; tokenizer.json:
// what its post-processor adds), no EOS, unless --no-bos / --eos say otherwise. --words prints the
// NER word alignment.
#include <iostream>
#include <string>

#include "core/base/error.h"
#include "data/text_file.h"
#include "data/tokenizer/tokenizer.h"
#include "launch/cli.h"

namespace {

void append_json_array(std::string& out, const std::vector<int>& values) {
  out.push_back('[');
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out.append(", ");
    out.append(std::to_string(values[i]));
  }
  out.push_back(']');
}

std::vector<std::string> split_words(const std::string& line) {
  std::vector<std::string> words;
  size_t at = 0;
  for (size_t space = line.find(' '); space != std::string::npos; space = line.find(' ', at)) {
    words.push_back(line.substr(at, space - at));
    at = space + 1;
  }
  words.push_back(line.substr(at));
  return words;
}

int tokenize_main(int argc, char** argv) {
  CLI::App app{
      "Tokenize UTF-8 lines from stdin with a sentencepiece tokenizer.model or a HF "
      "tokenizer.json; one JSON id array per line."};
  std::string model;
  bool no_bos = false, eos = false, words = false;
  app.add_option("--tokenizer", model,
                 "sentencepiece tokenizer.model, or HF tokenizer.json (a .json name or a file "
                 "starting with '{'; ids as the tokenizers library's encode(text))")
      ->required();
  app.add_flag("--no-bos", no_bos,
               "do not prepend the BOS id (tokenizer.json: the special tokens its "
               "post-processor puts before the text)");
  app.add_flag("--eos", eos, "append the EOS id");
  app.add_flag("--words", words,
               "each line is words separated by single spaces: print {\"ids\": [...], "
               "\"word_ids\": [...]} as the trainer aligns NER tags (-1: BOS/EOS)");
  if (!ls::cli::parse(app, argc, argv)) return 0;
  ls::data::Tokenizer tokenizer(model, {.add_bos = !no_bos, .add_eos = eos});
  std::ios::sync_with_stdio(false);
  std::string line, out;
  long line_number = 0;
  while (std::getline(std::cin, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (size_t bad = ls::data::find_invalid_utf8(line); bad != std::string::npos)
      ls::fail("stdin:{}: invalid UTF-8 at byte {} of the line", line_number, bad + 1);
    ls::data::WordEncoding encoded;
    try {
      if (words)
        encoded = tokenizer.encode_words(split_words(line));
      else
        encoded.ids = tokenizer.encode(line);
    } catch (const ls::UserError& e) {
      ls::fail("stdin:{}: {}", line_number, e.what());
    }
    out.clear();
    if (words) {
      out.append("{\"ids\": ");
      append_json_array(out, encoded.ids);
      out.append(", \"word_ids\": ");
      append_json_array(out, encoded.word_ids);
      out.append("}");
    } else {
      append_json_array(out, encoded.ids);
    }
    out.append("\n");
    std::cout << out;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ls::run_main("ls_tokenize", tokenize_main, argc, argv);
}
