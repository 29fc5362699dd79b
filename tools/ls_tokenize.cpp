// ls_tokenize: UTF-8 lines on stdin -> one JSON array of token ids per line on stdout.
// The tokenizer is LLaMA's convention: BOS first, no EOS, unless --no-bos / --eos say otherwise.
#include <CLI/CLI.hpp>
#include <iostream>
#include <string>

#include "core/base/error.h"
#include "data/text_file.h"
#include "data/tokenizer.h"

namespace {

int tokenize_main(int argc, char** argv) {
  CLI::App app{
      "Tokenize UTF-8 lines from stdin with a sentencepiece model; one JSON id array per line."};
  std::string model;
  bool no_bos = false, eos = false;
  app.add_option("--tokenizer", model, "sentencepiece tokenizer.model")->required();
  app.add_flag("--no-bos", no_bos, "do not prepend the BOS id");
  app.add_flag("--eos", eos, "append the EOS id");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  ls::data::Tokenizer tokenizer(model, {.add_bos = !no_bos, .add_eos = eos});
  std::ios::sync_with_stdio(false);
  std::string line, out;
  long line_number = 0;
  while (std::getline(std::cin, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (size_t bad = ls::data::find_invalid_utf8(line); bad != std::string::npos)
      ls::fail("stdin:{}: invalid UTF-8 at byte {} of the line", line_number, bad + 1);
    std::vector<int> ids;
    try {
      ids = tokenizer.encode(line);
    } catch (const ls::UserError& e) {
      ls::fail("stdin:{}: {}", line_number, e.what());
    }
    out.clear();
    out.push_back('[');
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) out.append(", ");
      out.append(std::to_string(ids[i]));
    }
    out.append("]\n");
    std::cout << out;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return ls::run_main("ls_tokenize", tokenize_main, argc, argv);
}
