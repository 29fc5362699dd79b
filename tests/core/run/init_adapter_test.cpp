// lora.init_from: the adapter's LoRA settings become the config's; an explicit key with another
// value is refused naming it, and target_modules compare as a set, as PEFT treats them.
#include <gtest/gtest.h>

#include <fstream>

#include "core/base/error.h"
#include "core/run/config.h"
#include "core/run/run_setup.h"
#include "tests/support/test_util.h"

// A named namespace, not an anonymous one: the unity build compiles the suite as one file.
namespace init_adapter_test {

// A config whose lora.init_from is an adapter directory with these target_modules (r 8).
ls::Config config_from(const ls::test::ScratchDir& dir, const std::string& adapter_targets,
                       const std::vector<std::string>& overrides) {
  std::ofstream(dir / "adapter_config.json")
      << R"({"peft_type": "LORA", "r": 8, "lora_alpha": 16, "lora_dropout": 0.05, )"
      << R"("target_modules": )" << adapter_targets << "}";
  std::vector<std::string> all = {"lora.init_from=" + dir.path().string()};
  all.insert(all.end(), overrides.begin(), overrides.end());
  return ls::Config::parse("model: {path: /m}\ndata: {train: t.jsonl}\n", "cfg.yaml", all);
}

TEST(InitAdapter, UnsetKeysTakeTheAdaptersSettings) {
  ls::test::ScratchDir dir("init_adapter_unset");
  ls::Config config = config_from(dir, R"(["v_proj", "q_proj"])", {});
  ls::adopt_init_adapter(config);
  EXPECT_EQ(config.lora.r, 8);
  EXPECT_EQ(config.lora.alpha, 16);
  EXPECT_EQ(config.lora.targets, (std::vector<std::string>{"v_proj", "q_proj"}));
}

TEST(InitAdapter, TheSameTargetsInAnotherOrderAreTheAdaptersTargets) {
  ls::test::ScratchDir dir("init_adapter_order");
  ls::Config config = config_from(dir, R"(["gate_proj", "o_proj", "q_proj", "k_proj"])",
                                  {"lora.targets=[q_proj, k_proj, o_proj, gate_proj]"});
  EXPECT_NO_THROW(ls::adopt_init_adapter(config));
  EXPECT_EQ(config.lora.targets,
            (std::vector<std::string>{"gate_proj", "o_proj", "q_proj", "k_proj"}));
}

TEST(InitAdapter, OtherTargetsOrAnotherRankAreRefusedNamingTheKey) {
  ls::test::ScratchDir dir("init_adapter_conflict");
  for (const std::string set : {"lora.targets=[q_proj, k_proj]", "lora.r=4"}) {
    ls::Config config = config_from(dir, R"(["q_proj", "v_proj"])", {set});
    try {
      ls::adopt_init_adapter(config);
      ADD_FAILURE() << set << " was accepted";
    } catch (const ls::UserError& e) {
      EXPECT_NE(std::string(e.what()).find(set.substr(0, set.find('='))), std::string::npos)
          << e.what();
    }
  }
}

}  // namespace init_adapter_test
