// Config: defaults, overrides, and every class of user error as one line naming file, line, key.
#include "core/run/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/base/error.h"
#include "core/eval/metric_table.h"
#include "tests/support/test_util.h"

namespace {

const char* kMinimal = "model: {path: /models/llama}\ndata: {train: train.jsonl}\n";

std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    ls::Config::parse(yaml, "cfg.yaml", overrides);
  } catch (const ls::UserError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Config, DefaultsAreThePaperRecipe) {
  auto c = ls::Config::parse(kMinimal, "cfg.yaml");
  EXPECT_EQ(c.lora.r, 12);
  EXPECT_EQ(c.lora.alpha, 32);
  EXPECT_DOUBLE_EQ(c.lora.dropout, 0.1);
  EXPECT_EQ(c.lora.targets, (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_DOUBLE_EQ(c.train.lr, 1e-4);
  EXPECT_DOUBLE_EQ(c.train.weight_decay, 0.01);
  EXPECT_EQ(c.train.batch_size, 8);
  EXPECT_EQ(c.data.max_length, 64);
  EXPECT_EQ(c.model.attention, ls::AttentionMode::kCausal);
  EXPECT_FALSE(c.model.attend_to_padding);
}

TEST(Config, ValuesAndOverridesApply) {
  auto c = ls::Config::parse(
      std::string(kMinimal) +
          "train: {lr: 2e-4, epochs: 3}\nlora: {targets: [q_proj, k_proj, v_proj]}\n",
      "cfg.yaml", {"train.lr=5e-5", "model.attention=bidirectional", "lora.targets=[v_proj]"});
  EXPECT_DOUBLE_EQ(c.train.lr, 5e-5);  // --set wins over the file
  EXPECT_EQ(c.train.epochs, 3);
  EXPECT_EQ(c.model.attention, ls::AttentionMode::kBidirectional);
  EXPECT_EQ(c.lora.targets, (std::vector<std::string>{"v_proj"}));
}

TEST(Config, ResolvedYamlRoundTrips) {
  auto c =
      ls::Config::parse(std::string(kMinimal) + "task: {type: token, labels: [O, B-PER, I-PER]}\n",
                        "cfg.yaml", {"data.pair_separator= | "});
  auto again = ls::Config::parse(c.to_yaml(), "config.yaml");
  EXPECT_EQ(again.to_yaml(), c.to_yaml());
  EXPECT_EQ(again.task.labels, c.task.labels);
  EXPECT_EQ(again.data.pair_separator, c.data.pair_separator);
}

TEST(Config, UnknownKeySuggestsTheNearestAndNamesTheLine) {
  auto e = error_of(std::string(kMinimal) + "train:\n  epochs: 2\n  learning_rate: 1e-4\n");
  EXPECT_NE(e.find("cfg.yaml:5"), std::string::npos) << e;
  EXPECT_NE(e.find("train.learning_rate"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'train.lr'"), std::string::npos) << e;
  e = error_of(std::string(kMinimal) + "trian: {epochs: 2}\n");
  EXPECT_NE(e.find("unknown section 'trian' (did you mean 'train'"), std::string::npos) << e;
  e = error_of(kMinimal, {"lora.rank=8"});
  EXPECT_NE(e.find("did you mean 'lora.r'"), std::string::npos) << e;
}

TEST(Config, WrongTypeNamesKeyExpectedAndFound) {
  auto e = error_of(std::string(kMinimal) + "train: {batch_size: eight}\n");
  EXPECT_NE(e.find("cfg.yaml:3: train.batch_size: expected integer, found 'eight'"),
            std::string::npos)
      << e;
  e = error_of(std::string(kMinimal) + "lora: {targets: q_proj}\n");
  EXPECT_NE(e.find("lora.targets: expected list of strings"), std::string::npos) << e;
  e = error_of(std::string(kMinimal) + "model: {attention: sideways}\n");
  EXPECT_NE(e.find("'sideways' is not one of: causal, bidirectional"), std::string::npos) << e;
}

TEST(Config, MissingRequiredAndImpossibleValuesAreRejected) {
  EXPECT_NE(error_of("data: {train: t.jsonl}\n").find("model.path: required"), std::string::npos);
  EXPECT_NE(error_of("model: {path: m}\n").find("data.train: required"), std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "train: {batch_size: 0}\n")
                .find("cfg.yaml:3: train.batch_size: must be >= 1"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "train: {batch_size: 8, micro_batch_size: 3}\n")
                .find("must divide"),
            std::string::npos);
  EXPECT_NE(error_of(kMinimal, {"lora.targets=[q_proj, lm_head]"})
                .find("'lm_head' is not a LLaMA linear"),
            std::string::npos);
  EXPECT_NE(error_of(kMinimal, {"train.eval_every=sometimes"}).find("train.eval_every"),
            std::string::npos);
  EXPECT_NE(error_of(kMinimal, {"parallel.tp=0"}).find("parallel.tp: must be >= 1"),
            std::string::npos);
}

TEST(Config, SyntaxErrorsAndMissingFilesNameTheFile) {
  auto e = error_of("model: {path: [unclosed\n");
  EXPECT_NE(e.find("cfg.yaml:"), std::string::npos) << e;
  EXPECT_NE(e.find("YAML syntax error"), std::string::npos) << e;
  try {
    ls::Config::load("/nonexistent/cfg.yaml");
    FAIL();
  } catch (const ls::UserError& err) {
    EXPECT_NE(std::string(err.what()).find("/nonexistent/cfg.yaml"), std::string::npos);
  }
}

// docs/CONFIG.md carries the key table between two marker lines, exactly as `ls_train
// --config-docs` prints it: after a schema change, paste the new output between the markers.
TEST(Config, DocsConfigCarriesTheGeneratedKeyTable) {
  std::ifstream doc(LS_SOURCE_DIR "/docs/CONFIG.md", std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(doc)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(text.empty()) << "cannot read docs/CONFIG.md";
  for (const auto& path : ls::config_key_paths())
    EXPECT_NE(text.find("`" + path + "`"), std::string::npos)
        << path << " is not documented in docs/CONFIG.md";
  const auto table = ls::test::generated_doc_section("docs/CONFIG.md", "config-docs");
  ASSERT_TRUE(table) << "docs/CONFIG.md lacks the config-docs marker lines";
  EXPECT_EQ(*table, ls::config_docs_markdown())
      << "docs/CONFIG.md's key table is stale: paste `ls_train --config-docs` between the markers";
}

TEST(Config, EveryShippedRecipeIsValid) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(LS_SOURCE_DIR "/configs")) {
    // sweep_*.yaml are sweep specs (launch/ls_sweep), not run configs:
    // tests/launch/test_shipped_scripts.py dry-runs them.
    if (entry.path().extension() != ".yaml" ||
        entry.path().filename().string().rfind("sweep_", 0) == 0)
      continue;
    EXPECT_NO_THROW(ls::Config::load(entry.path().string())) << entry.path();
    ++count;
  }
  EXPECT_GE(count, 4);
}

TEST(Config, RelativePathsResolveAgainstTheConfigFileAndOverridesAgainstTheWorkingDirectory) {
  auto c = ls::Config::load(LS_SOURCE_DIR "/configs/quickstart.yaml",
                            {"data.test=elsewhere/test.conll"});
  EXPECT_EQ(c.model.path, std::string(LS_SOURCE_DIR) + "/build/quickstart/model");
  EXPECT_EQ(c.data.test, (std::filesystem::current_path() / "elsewhere/test.conll").string());
}

TEST(Config, ProblemTypesClassWeightsAndTheirMetrics) {
  auto c = ls::Config::parse(
      std::string(kMinimal) + "task: {problem_type: multi_label, class_weights: auto}\n",
      "cfg.yaml");
  EXPECT_EQ(c.task.class_weights.mode, ls::ClassWeightsMode::kAuto);
  EXPECT_EQ(ls::selection_metric(c), "micro_f1");
  c = ls::Config::parse(kMinimal, "cfg.yaml",
                        {"task.class_weights=[1, 2.5]", "task.label_smoothing=0.1"});
  EXPECT_EQ(c.task.class_weights.values, (std::vector<double>{1.0, 2.5}));
  EXPECT_EQ(ls::selection_metric(c), "macro_f1");
  // The resolved config reads back the same (a run's config.yaml is what ls_predict loads).
  EXPECT_EQ(ls::Config::parse(c.to_yaml(), "resolved.yaml").task.class_weights,
            c.task.class_weights);
  c = ls::Config::parse(
      std::string(kMinimal) + "task: {problem_type: regression}\ntrain: {metric: mse}\n",
      "cfg.yaml");
  EXPECT_FALSE(ls::higher_is_better(ls::selection_metric(c)));
  EXPECT_TRUE(ls::higher_is_better("spearman"));

  EXPECT_NE(error_of(std::string(kMinimal) + "task: {type: token,\n  problem_type: regression}\n")
                .find("cfg.yaml:4: task.problem_type: regression needs task.type: sequence"),
            std::string::npos);
  EXPECT_NE(
      error_of(kMinimal, {"task.class_weights=balanced"})
          .find("task.class_weights: expected none, auto or a list of numbers, found 'balanced'"),
      std::string::npos);
  EXPECT_NE(
      error_of(kMinimal, {"task.class_weights=[1, -2]"}).find("task.class_weights: weight -2"),
      std::string::npos);
  EXPECT_NE(error_of(kMinimal, {"task.problem_type=regression", "train.metric=macro_f1"})
                .find("train.metric: 'macro_f1' is not a regression metric"),
            std::string::npos);
  EXPECT_NE(error_of(kMinimal, {"task.problem_type=multi_label", "task.label_smoothing=0.1"})
                .find("task.label_smoothing: only single_label"),
            std::string::npos);
}

TEST(Config, ChoiceKeysTakeTheirAllowedValuesFromTheEnumNameTables) {
  // One table per enum: the config documents and checks its printed names...
  EXPECT_EQ(ls::enum_choices<ls::ProblemType>(),
            (std::vector<std::string>{"single_label", "multi_label", "regression"}));
  EXPECT_NE(ls::config_docs_markdown().find("(single_label \\| multi_label \\| regression)"),
            std::string::npos);
  // ...while aliases (HF's spellings) parse elsewhere but are no config values.
  EXPECT_EQ(ls::parse_enum<ls::ProblemType>("multi_label_classification", "x"),
            ls::ProblemType::kMultiLabel);
  EXPECT_NE(error_of(kMinimal, {"task.problem_type=multi_label_classification"})
                .find("'multi_label_classification' is not one of: single_label, multi_label, "
                      "regression"),
            std::string::npos);
  EXPECT_EQ(ls::enum_name(ls::ProblemType::kMultiLabel), "multi_label");
  EXPECT_NE(error_of(kMinimal, {"task.pooling=first"})
                .find("task.pooling: 'first' is not one of: last, mean, max"),
            std::string::npos);
  try {
    ls::parse_enum<ls::Pooling>("first", "--pooling");
    FAIL() << "expected a UserError";
  } catch (const ls::UserError& e) {
    EXPECT_STREQ(e.what(), "--pooling: unknown pooling 'first' (expected last, mean or max)");
  }
}

TEST(Config, ModelDtypeIsAChoiceThatPrintsItsShortNameAndRefusesAliases) {
  EXPECT_EQ(ls::enum_choices<ls::DtypeChoice>(),
            (std::vector<std::string>{"auto", "f32", "bf16", "f16"}));
  const auto automatic = ls::Config::parse(kMinimal, "cfg.yaml");
  EXPECT_EQ(automatic.model.dtype, ls::DtypeChoice::kAuto);
  EXPECT_NE(automatic.to_yaml().find("dtype: auto\n"), std::string::npos) << automatic.to_yaml();
  for (const std::string name : {"f32", "bf16", "f16"}) {
    const auto c = ls::Config::parse(kMinimal, "cfg.yaml", {"model.dtype=" + name});
    EXPECT_NE(c.to_yaml().find("dtype: " + name + "\n"), std::string::npos) << c.to_yaml();
    EXPECT_EQ(ls::Config::parse(c.to_yaml(), "config.yaml").model.dtype, c.model.dtype);
  }
  // Aliases are spellings of the programs' --dtype (parse_dtype), not config values.
  EXPECT_EQ(ls::parse_dtype("bfloat16", "--dtype"), c10::kBFloat16);
  EXPECT_EQ(ls::parse_dtype("half", "--dtype"), c10::kHalf);
  EXPECT_EQ(ls::dtype_name(c10::kBFloat16), "bf16");
  EXPECT_NE(error_of(kMinimal, {"model.dtype=bfloat16"})
                .find("model.dtype: 'bfloat16' is not one of: auto, f32, bf16, f16"),
            std::string::npos);
  try {
    ls::parse_dtype("auto", "--dtype");
    FAIL() << "expected a UserError";
  } catch (const ls::UserError& e) {
    EXPECT_STREQ(e.what(), "--dtype: unknown dtype 'auto' (expected f32, bf16 or f16)");
  }
}

TEST(Config, SetAtNamesWhereEachExplicitKeyWasSetAndOnlyThose) {
  auto c =
      ls::Config::parse(std::string(kMinimal) + "lora:\n  r: 4\n", "cfg.yaml", {"lora.alpha=16"});
  EXPECT_EQ(c.set_at.at("lora.r"), "cfg.yaml:4");
  EXPECT_EQ(c.set_at.at("lora.alpha"), "--set lora.alpha");
  EXPECT_EQ(c.set_at.count("lora.dropout"), 0u);
  EXPECT_EQ(c.to_yaml().find("set_at"), std::string::npos);
}
