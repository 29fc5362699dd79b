// Readers (JSONL, CSV/TSV, CoNLL, HF word lists, pre-tokenized), label maps, and every bad-input
// case: each is one UserError that names the file and line.
#include "data/reader.h"

#include <gtest/gtest.h>

#include "data/label_map.h"
#include "data/text_file.h"
#include "pipeline_test_util.h"

namespace ls::data {
namespace {

namespace fs = std::filesystem;
using testing::ScratchDir;
using testing::user_error;

RawDataset parse(const std::string& name, const std::string& text, TaskType task,
                 ReaderOptions options = {}) {
  return parse_raw_dataset(name, text, task, options);
}

std::string parse_error(const std::string& name, const std::string& text, TaskType task,
                        ReaderOptions options = {}) {
  return user_error([&] { parse(name, text, task, options); });
}

#define EXPECT_HAS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

// --- JSONL ---

// --- problem types: multi-label sets and regression targets ---

TEST(MultiLabelReader, ReadsJsonListsStringsAndSeparatedCsvCells) {
  ReaderOptions options;
  options.problem = ProblemType::kMultiLabel;
  const RawDataset jsonl = parse("train.jsonl",
                                 "{\"text\": \"a\", \"label\": [\"toxic\", \"insult\"]}\n"
                                 "{\"text\": \"b\", \"label\": []}\n"
                                 "{\"text\": \"c\", \"label\": \"toxic|threat\"}\n",
                                 TaskType::kSequence, options);
  ASSERT_EQ(jsonl.records.size(), 3u);
  ASSERT_EQ(jsonl.records[0].label_set.size(), 2u);
  EXPECT_EQ(jsonl.records[0].label_set[1].name, "insult");
  EXPECT_TRUE(jsonl.records[1].has_label);
  EXPECT_TRUE(jsonl.records[1].label_set.empty());
  EXPECT_EQ(jsonl.records[2].label_set.size(), 2u);
  options.label_separator = ";";
  const RawDataset csv =
      parse("train.csv", "text,label\nx,toxic; insult\ny,\n", TaskType::kSequence, options);
  ASSERT_EQ(csv.records.size(), 2u);
  ASSERT_EQ(csv.records[0].label_set.size(), 2u);
  EXPECT_EQ(csv.records[0].label_set[1].name, "insult");  // spaces around a label are trimmed
  EXPECT_TRUE(csv.records[1].label_set.empty());          // an empty cell: no labels
}

TEST(RegressionReader, ReadsNumbersAndRejectsTextNamingFileAndLine) {
  ReaderOptions options;
  options.problem = ProblemType::kRegression;
  const RawDataset raw = parse(
      "sts.jsonl", "{\"text\": \"a\", \"label\": 3.25}\n{\"text\": \"b\", \"label\": \"-1e-1\"}\n",
      TaskType::kSequence, options);
  EXPECT_DOUBLE_EQ(raw.records[0].target, 3.25);
  EXPECT_DOUBLE_EQ(raw.records[1].target, -0.1);
  EXPECT_HAS(
      parse_error("sts.jsonl",
                  "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": \"high\"}\n",
                  TaskType::kSequence, options),
      "sts.jsonl:2: field \"label\" must hold a number (regression target), found \"high\"");
  EXPECT_HAS(parse_error("sts.tsv", "text\tlabel\na\t2.5\nb\tn/a\n", TaskType::kSequence, options),
             "sts.tsv:3: regression target \"n/a\" in column \"label\" is not a number");
  EXPECT_HAS(parse_error("sts.csv", "text,label\na,nan\n", TaskType::kSequence, options),
             "sts.csv:2:");
}

TEST(ProblemTypes, TokenTasksAreSingleLabel) {
  ReaderOptions options;
  options.problem = ProblemType::kMultiLabel;
  EXPECT_HAS(parse_error("ner.conll", "EU B-ORG\n", TaskType::kToken, options),
             "task.problem_type multi_label is for sequence tasks");
  EXPECT_EQ(parse_enum<ProblemType>("multi_label_classification", "task.problem_type"),
            ProblemType::kMultiLabel);
  EXPECT_HAS(user_error([] { parse_enum<ProblemType>("multilabel", "task.problem_type"); }),
             "task.problem_type: unknown problem type");
}

TEST(JsonlReader, ReadsTextAndStringOrIntegerLabelsWithTheirLines) {
  const RawDataset raw = parse("train.jsonl",
                               "{\"text\": \"a fine film\", \"label\": \"positive\"}\n"
                               "\n"
                               "{\"text\": \"dull\", \"label\": 0, \"extra\": [1, 2]}\r\n",
                               TaskType::kSequence);
  EXPECT_EQ(raw.format, DataFormat::kJsonl);
  ASSERT_EQ(raw.records.size(), 2u);
  EXPECT_EQ(raw.records[0].text, "a fine film");
  EXPECT_EQ(raw.records[0].line, 1);
  EXPECT_EQ(raw.records[0].label.name, "positive");
  EXPECT_FALSE(raw.records[0].label.is_integer);
  EXPECT_EQ(raw.records[1].line, 3);  // the blank line is skipped, not renumbered
  EXPECT_TRUE(raw.records[1].label.is_integer);
  EXPECT_EQ(raw.records[1].label.value, 0);
  EXPECT_EQ(raw.records[1].label.name, "0");
}

TEST(JsonlReader, JoinsTextPairsWithTheConfiguredSeparator) {
  ReaderOptions options;
  options.text_fields = {"premise", "hypothesis"};
  options.pair_separator = " [SEP] ";
  const RawDataset raw =
      parse("mnli.jsonl",
            "{\"premise\": \"A man sleeps.\", \"hypothesis\": \"Nobody sleeps.\", "
            "\"label\": \"contradiction\"}\n",
            TaskType::kSequence, options);
  EXPECT_EQ(raw.records.at(0).text, "A man sleeps. [SEP] Nobody sleeps.");
}

TEST(JsonlReader, UnlabeledSplitsMayOmitTheLabel) {
  ReaderOptions options;
  options.labeled = false;
  const RawDataset raw =
      parse("test.jsonl", "{\"text\": \"no label here\"}\n", TaskType::kSequence, options);
  EXPECT_FALSE(raw.records.at(0).has_label);
}

TEST(JsonlReader, ReadsHfWordListsWithStringOrIntegerTags) {
  const RawDataset strings = parse(
      "ner.jsonl",
      "{\"id\": \"0\", \"tokens\": [\"EU\", \"rejects\", \"German\"], \"ner_tags\": [\"B-ORG\", "
      "\"O\", \"B-MISC\"]}\n",
      TaskType::kToken);
  ASSERT_EQ(strings.records.size(), 1u);
  EXPECT_EQ(strings.records[0].words, (std::vector<std::string>{"EU", "rejects", "German"}));
  ASSERT_EQ(strings.records[0].tags.size(), 3u);
  EXPECT_EQ(strings.records[0].tags[2].name, "B-MISC");

  const RawDataset integers =
      parse("ner.jsonl", "{\"tokens\": [\"Paris\"], \"ner_tags\": [5]}\n", TaskType::kToken);
  EXPECT_TRUE(integers.records[0].tags[0].is_integer);
  EXPECT_EQ(integers.records[0].tags[0].value, 5);
}

TEST(JsonlReader, DetectsPreTokenizedInput) {
  const RawDataset sequence =
      parse("ids.jsonl", "{\"input_ids\": [1, 17, 42], \"label\": 1}\n", TaskType::kSequence);
  EXPECT_EQ(sequence.format, DataFormat::kPretokenized);
  EXPECT_EQ(sequence.records[0].input_ids, (std::vector<int32_t>{1, 17, 42}));
  EXPECT_EQ(sequence.records[0].label.value, 1);

  const RawDataset token =
      parse("ids.jsonl", "{\"input_ids\": [1, 17, 42], \"ner_tags\": [-100, \"B-PER\", \"O\"]}\n",
            TaskType::kToken);
  EXPECT_EQ(token.format, DataFormat::kPretokenized);
  ASSERT_EQ(token.records[0].tags.size(), 3u);
  EXPECT_EQ(token.records[0].tags[0].value, -100);
}

// --- CSV / TSV ---

TEST(CsvReader, FollowsRfc4180Quoting) {
  const RawDataset raw = parse("reviews.csv",
                               "label,text\r\n"
                               "1,\"great, really great\"\r\n"
                               "0,\"she said \"\"meh\"\"\"\r\n"
                               "0,\"two\nlines\"\n"
                               "1,plain text\n",
                               TaskType::kSequence);
  ASSERT_EQ(raw.records.size(), 4u);
  EXPECT_EQ(raw.records[0].text, "great, really great");
  EXPECT_EQ(raw.records[1].text, "she said \"meh\"");
  EXPECT_EQ(raw.records[2].text, "two\nlines");
  EXPECT_EQ(raw.records[2].line, 4);
  EXPECT_EQ(raw.records[3].line, 6);  // the quoted newline counts as a line
  EXPECT_EQ(raw.records[3].text, "plain text");
  EXPECT_TRUE(raw.records[0].label.is_integer);  // CSV integers count as integer labels
  EXPECT_EQ(raw.records[0].label.value, 1);
}

// Excel and Windows write CRLF, often after a UTF-8 BOM: the last column must not keep the '\r'
// (labels would become "ham\r"), while a CR inside a quoted field is text.
TEST(CsvReader, CrlfLineEndingsLeaveNoCarriageReturnInTheLastColumn) {
  for (const std::string bom : {"", "\xEF\xBB\xBF"}) {
    const RawDataset raw = parse("sms.csv",
                                 bom +
                                     "text,label\r\n"
                                     "win a prize,spam\r\n"
                                     "\"see you\rat six\",ham\r\n"
                                     "\"quoted last\",\"ham\"\r\n"
                                     "no newline at the end,ham\r",
                                 TaskType::kSequence);
    ASSERT_EQ(raw.records.size(), 4u) << "BOM: " << !bom.empty();
    EXPECT_EQ(raw.records[0].label.name, "spam");
    EXPECT_EQ(raw.records[1].text, "see you\rat six");
    EXPECT_EQ(raw.records[1].label.name, "ham");
    EXPECT_EQ(raw.records[2].label.name, "ham");
    EXPECT_EQ(raw.records[3].label.name, "ham");
  }
  const RawDataset quoted_at_end =
      parse("sms.csv", "text,label\r\nhello,\"ham\"\r", TaskType::kSequence);
  EXPECT_EQ(quoted_at_end.records.at(0).label.name, "ham");
}

// For prediction: a .txt file is plain text, one example per line, for a sequence task (CoNLL
// for a token task); training refuses it, having no labels.
TEST(LinesReader, ATxtFileIsOneTextPerLineForSequenceTasksAndConllForTokenTasks) {
  ReaderOptions unlabeled;
  unlabeled.labeled = false;
  for (const char* name : {"reviews.txt", "REVIEWS.TXT"}) {
    const RawDataset raw =
        parse(name, "a fine film\r\n\n  dull  \n", TaskType::kSequence, unlabeled);
    EXPECT_EQ(raw.format, DataFormat::kLines) << name;
    ASSERT_EQ(raw.records.size(), 2u) << name;
    EXPECT_EQ(raw.records[0].text, "a fine film");
    EXPECT_EQ(raw.records[1].line, 3);
  }
  ReaderOptions lines = unlabeled;
  lines.format = DataFormat::kLines;
  const RawDataset words = parse("ner.txt", "jordan said hello\n", TaskType::kToken, lines);
  EXPECT_EQ(words.records.at(0).words, (std::vector<std::string>{"jordan", "said", "hello"}));
  EXPECT_EQ(parse("ner.txt", "jordan B-PER\n", TaskType::kToken).format, DataFormat::kConll);
  EXPECT_HAS(parse_error("train.txt", "a fine film\n", TaskType::kSequence),
             "a plain text file holds no labels");
}

TEST(CsvReader, ReadsTsvAndKeepsQuotesLiteralWithoutQuoting) {
  ReaderOptions options;
  options.text_fields = {"sentence"};
  const RawDataset quoted =
      parse("sst2.tsv", "sentence\tlabel\n\"a\ttab\"\t1\n", TaskType::kSequence, options);
  EXPECT_EQ(quoted.records.at(0).text, "a\ttab");

  options.csv_quoting = false;
  const RawDataset literal = parse("sst2.tsv", "sentence\tlabel\n\" the film \" is fine\t1\n",
                                   TaskType::kSequence, options);
  EXPECT_EQ(literal.records.at(0).text, "\" the film \" is fine");
}

TEST(CsvReader, JoinsTextPairColumns) {
  ReaderOptions options;
  options.text_fields = {"sentence1", "sentence2"};
  options.pair_separator.assign(1, '\n');  // (GCC 12 -Wrestrict misfires on = "\n")
  const RawDataset raw =
      parse("rte.csv", "sentence1,sentence2,label\nA,B,entailment\n", TaskType::kSequence, options);
  EXPECT_EQ(raw.records.at(0).text, "A\nB");
  EXPECT_EQ(raw.records.at(0).label.name, "entailment");
}

// --- CoNLL ---

TEST(ConllReader, ReadsCoNLL2003Sentences) {
  const std::string text =
      "-DOCSTART- -X- -X- O\n"
      "\n"
      "EU NNP B-NP B-ORG\n"
      "rejects VBZ B-VP O\n"
      "German JJ B-NP B-MISC\n"
      "\n"
      "\n"
      "Peter NNP B-NP B-PER\n"
      "Blackburn NNP I-NP I-PER\n"
      "-DOCSTART- -X- -X- O\n"
      "BRUSSELS\tNNP\tB-NP\tB-LOC\n";
  const RawDataset raw = parse("train.conll", text, TaskType::kToken);
  ASSERT_EQ(raw.records.size(), 3u);
  EXPECT_EQ(raw.records[0].words, (std::vector<std::string>{"EU", "rejects", "German"}));
  EXPECT_EQ(raw.records[0].line, 3);
  EXPECT_EQ(raw.records[0].tags[0].name, "B-ORG");
  EXPECT_EQ(raw.records[1].tags[1].name, "I-PER");
  EXPECT_EQ(raw.records[1].line, 8);
  EXPECT_EQ(raw.records[2].words, (std::vector<std::string>{"BRUSSELS"}));  // tabs split too

  ReaderOptions chunks;
  chunks.conll_tag_column = 2;
  const RawDataset chunked = parse("train.conll", text, TaskType::kToken, chunks);
  EXPECT_EQ(chunked.records[1].tags[1].name, "I-NP");
}

TEST(FormatResolution, PicksByExtensionOrConfig) {
  EXPECT_EQ(resolve_format("a/b.jsonl", DataFormat::kAuto), DataFormat::kJsonl);
  EXPECT_EQ(resolve_format("b.CSV", DataFormat::kAuto), DataFormat::kCsv);
  EXPECT_EQ(resolve_format("b.tsv", DataFormat::kAuto), DataFormat::kTsv);
  EXPECT_EQ(resolve_format("eng.train.txt", DataFormat::kAuto), DataFormat::kConll);
  EXPECT_EQ(resolve_format("data.bin", DataFormat::kCsv), DataFormat::kCsv);
  EXPECT_HAS(user_error([] { resolve_format("data.bin", DataFormat::kAuto); }), "data.format");
  EXPECT_EQ(parse_enum<DataFormat>("pretokenized", "data.format"), DataFormat::kPretokenized);
  EXPECT_HAS(user_error([] { parse_enum<DataFormat>("parquet", "data.format"); }), "parquet");
}

// --- bad input: one error naming file:line ---

TEST(BadInput, MalformedJsonNamesFileAndLine) {
  EXPECT_HAS(parse_error("train.jsonl",
                         "{\"text\": \"ok\", \"label\": 1}\n{\"text\": \"broken, \"label\": 1}\n",
                         TaskType::kSequence),
             "train.jsonl:2: malformed JSON");
  EXPECT_HAS(parse_error("train.jsonl", "[1, 2]\n", TaskType::kSequence),
             "train.jsonl:1: expected a JSON object");
}

TEST(BadInput, MissingOrMistypedFieldNamesTheField) {
  EXPECT_HAS(parse_error("train.jsonl", "{\"text\": \"a\", \"label\": 1}\n{\"label\": 1}\n",
                         TaskType::kSequence),
             "train.jsonl:2: missing field \"text\" (set data.text_field to");
  EXPECT_HAS(parse_error("train.jsonl", "{\"text\": \"a\"}\n", TaskType::kSequence),
             "train.jsonl:1: missing field \"label\" (set data.label_field to");
  EXPECT_HAS(parse_error("train.jsonl", "{\"text\": 3, \"label\": 1}\n", TaskType::kSequence),
             "train.jsonl:1: field \"text\" must be a string");
  EXPECT_HAS(parse_error("train.jsonl", "{\"text\": \"a\", \"label\": 0.5}\n", TaskType::kSequence),
             "train.jsonl:1: field \"label\" must hold a string or an integer");
  EXPECT_HAS(parse_error("ner.jsonl", "{\"tokens\": [\"a\", \"b\"], \"ner_tags\": [\"O\"]}\n",
                         TaskType::kToken),
             "ner.jsonl:1: 2 entries in \"tokens\" but 1 tags");
  EXPECT_HAS(
      parse_error("ids.jsonl", "{\"input_ids\": [1, -4], \"label\": 1}\n", TaskType::kSequence),
      "ids.jsonl:1: field \"input_ids\" holds -4");
}

TEST(BadInput, UnbalancedCsvQuoteNamesTheLineItOpensOn) {
  EXPECT_HAS(parse_error("train.csv", "text,label\nfine,1\n\"never closed,0\nmore,1\n",
                         TaskType::kSequence),
             "train.csv:3: unbalanced quote");
  EXPECT_HAS(parse_error("train.csv", "text,label\n\"quoted\"tail,1\n", TaskType::kSequence),
             "train.csv:2: unexpected 't' after a closing quote");
}

TEST(BadInput, CsvRowsMustMatchTheHeader) {
  EXPECT_HAS(parse_error("train.csv", "text,label\na,1\nb,1,extra\n", TaskType::kSequence),
             "train.csv:3: expected 2 fields as in the header, found 3");
  EXPECT_HAS(parse_error("train.csv", "sentence,label\na,1\n", TaskType::kSequence),
             "train.csv:1: no column \"text\" in the header (columns: sentence, label; set "
             "data.text_field");
  EXPECT_HAS(parse_error("train.csv", "\"\"\n", TaskType::kSequence), "train.csv: no header row");
  EXPECT_HAS(parse_error("train.csv", "text,label\n", TaskType::kSequence),
             "train.csv: no examples after the header");
  EXPECT_HAS(parse_error("train.csv", "text,label\na,1\n", TaskType::kToken), "token tasks read");
}

TEST(BadInput, ConllLineWithWrongColumnCount) {
  EXPECT_HAS(
      parse_error("train.conll", "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ O\n",
                  TaskType::kToken),
      "train.conll:4: expected 4 columns as on line 3, found 3");
  EXPECT_HAS(parse_error("words.conll", "EU\nrejects\n", TaskType::kToken),
             "words.conll:1: the tag column -1 does not exist");
  EXPECT_HAS(parse_error("train.conll", "-DOCSTART- -X- -X- O\n\n", TaskType::kToken),
             "train.conll: no examples");
  EXPECT_HAS(parse_error("train.conll", "EU B-ORG\n", TaskType::kSequence), "CoNLL files hold");
}

TEST(BadInput, InvalidUtf8NamesLineAndByte) {
  EXPECT_HAS(
      parse_error("train.jsonl",
                  "{\"text\": \"ok\", \"label\": 1}\n{\"text\": \"caf\xC3\", \"label\": 1}\n",
                  TaskType::kSequence),
      "train.jsonl:2: invalid UTF-8 at byte 14 of the line (byte 0xC3)");
}

TEST(BadInput, EmptyFile) {
  EXPECT_HAS(parse_error("train.jsonl", "", TaskType::kSequence), "train.jsonl: empty file");
  EXPECT_HAS(parse_error("train.jsonl", " \n\r\n\t\n", TaskType::kSequence),
             "train.jsonl: empty file");
}

TEST(BadInput, MissingFile) {
  ScratchDir dir;
  const std::string path = (dir.path() / "absent.jsonl").string();
  EXPECT_HAS(user_error([&] { read_raw_dataset(path, TaskType::kSequence, {}); }),
             path + ": cannot open");
}

TEST(BadInput, ReadsFromDiskWithTheSameChecks) {
  ScratchDir dir;
  const std::string path = dir.write("train.jsonl", "{\"text\": \"a\", \"label\": 1}\n{oops}\n");
  EXPECT_HAS(user_error([&] { read_raw_dataset(path, TaskType::kSequence, {}); }),
             path + ":2: malformed JSON");
  const std::string bom = dir.write("bom.jsonl", "\xEF\xBB\xBF{\"text\": \"a\", \"label\": 1}\n");
  EXPECT_EQ(read_raw_dataset(bom, TaskType::kSequence, {}).records.at(0).text, "a");
}

TEST(Utf8, RejectsWhatRfc3629Forbids) {
  EXPECT_EQ(find_invalid_utf8("plain ascii, long enough for the 8-byte path"), std::string::npos);
  EXPECT_EQ(find_invalid_utf8("caf\xC3\xA9 \xE4\xB8\xAD \xF0\x9F\x98\x80"), std::string::npos);
  EXPECT_EQ(find_invalid_utf8("ab\xC0\xAF"), 2u);         // overlong '/'
  EXPECT_EQ(find_invalid_utf8("\xED\xA0\x80"), 0u);       // UTF-16 surrogate
  EXPECT_EQ(find_invalid_utf8("x\xF4\x90\x80\x80"), 1u);  // above U+10FFFF
  EXPECT_EQ(find_invalid_utf8("xyz\xE4\xB8"), 3u);        // truncated at the end
  EXPECT_EQ(find_invalid_utf8("\x80"), 0u);               // lone continuation byte
}

// --- label maps ---

TEST(LabelMap, InfersAStableOrderIndependentOfTheFile) {
  const std::vector<RawLabel> seen = {{"positive"}, {"negative"}, {"neutral"}};
  const std::vector<RawLabel> reversed(seen.rbegin(), seen.rend());
  EXPECT_EQ(LabelMap::infer(seen).names(),
            (std::vector<std::string>{"negative", "neutral", "positive"}));
  EXPECT_EQ(LabelMap::infer(seen), LabelMap::infer(reversed));
}

TEST(LabelMap, InfersIntegersNumericallyAndNerWithOFirst) {
  EXPECT_EQ(LabelMap::infer({{"10", true, 10}, {"2", true, 2}, {"0", true, 0}}).names(),
            (std::vector<std::string>{"0", "2", "10"}));
  EXPECT_EQ(LabelMap::infer({{"I-PER"}, {"O"}, {"B-PER"}}).names(),
            (std::vector<std::string>{"O", "B-PER", "I-PER"}));
}

TEST(LabelMap, IntegersIndexAConfiguredListUnlessANameMatches) {
  const LabelMap names({"O", "B-PER", "I-PER"});
  EXPECT_EQ(names.id(RawLabel{"2", true, 2}), 2);  // HF ClassLabel id
  EXPECT_EQ(names.id(RawLabel{"3", true, 3}), -1);
  EXPECT_EQ(names.id(RawLabel{"B-PER"}), 1);
  EXPECT_EQ(names.id(RawLabel{"B-LOC"}), -1);
  const LabelMap numeric({"1", "0"});
  EXPECT_EQ(numeric.id(RawLabel{"0", true, 0}), 1);  // a name match wins
}

TEST(LabelMap, SavesAndLoadsLabelsJson) {
  ScratchDir dir;
  const LabelMap map({"O", "B-LOC", "I-LOC"});
  const std::string path = (dir.path() / "labels.json").string();
  map.save(path);
  EXPECT_EQ(LabelMap::load(path), map);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  const std::string bad = dir.write("bad.json", "{\"labels\": [\"a\", \"a\"]}");
  EXPECT_HAS(user_error([&] { LabelMap::load(bad); }), bad + ": label 'a' appears twice");
  const std::string broken = dir.write("broken.json", "{\"labels\": [");
  EXPECT_HAS(user_error([&] { LabelMap::load(broken); }), broken + ": malformed JSON");
}

TEST(LabelMap, RecognisesBioTagSets) {
  const auto tags = LabelMap({"O", "B-LOC", "I-LOC"}).bio_tags();
  ASSERT_EQ(tags.size(), 3u);
  EXPECT_EQ(tags[2].prefix, 'I');
  EXPECT_EQ(tags[2].type, "LOC");
  EXPECT_TRUE(LabelMap({"O", "S-LOC"}).bio_tags().empty());
  EXPECT_TRUE(LabelMap({"negative", "positive"}).bio_tags().empty());
}

}  // namespace
}  // namespace ls::data
