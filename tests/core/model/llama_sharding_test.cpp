// The tensor-parallel plan of a LLaMA layer: which heads and FFN columns each tp rank owns, and
// its validation (errors name the config key); the projection shapes by name.
#include "core/model/llama_sharding.h"

#include <gtest/gtest.h>

#include "core/base/error.h"

namespace ls {
namespace {

LayerShape shape(int64_t hidden, int64_t heads, int64_t kv, int64_t ffn) {
  LayerShape s;
  s.hidden_size = hidden;
  s.num_attention_heads = heads;
  s.num_key_value_heads = kv;
  s.intermediate_size = ffn;
  return s;
}

void expect_user_error(const LayerShape& s, int tp, const std::string& fragment) {
  try {
    TensorParallelPlan plan(s, tp);
    FAIL() << "tp " << tp << " accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(TensorParallelPlan, LlamaShapesSplitHeadsAndFfn) {
  // LLaMA-2-7B: 32 heads (MHA), FFN 11008, tp 8.
  TensorParallelPlan plan7b(shape(4096, 32, 32, 11008), 8);
  EXPECT_FALSE(plan7b.kv_replicated());
  EXPECT_EQ(plan7b.q_heads(3), (ShardRange{12, 4}));
  EXPECT_EQ(plan7b.kv_heads(3), (ShardRange{12, 4}));
  EXPECT_EQ(plan7b.q_rows()[3], (ShardRange{12 * 128, 4 * 128}));
  EXPECT_EQ(plan7b.ffn_rows()[7], (ShardRange{7 * 1376, 1376}));
  // LLaMA-2-70B: 64 heads, 8 kv heads (GQA): tp 8 splits the kv heads one per rank.
  TensorParallelPlan plan70b(shape(8192, 64, 8, 28672), 8);
  EXPECT_FALSE(plan70b.kv_replicated());
  EXPECT_EQ(plan70b.kv_rows()[5], (ShardRange{5 * 128, 128}));
}

TEST(TensorParallelPlan, KvHeadsAreReplicatedWhenTpExceedsThem) {
  // 8 q heads in 2 kv groups of 4, tp 4: ranks 0,1 read kv head 0; ranks 2,3 read kv head 1.
  TensorParallelPlan plan(shape(64, 8, 2, 32), 4);
  EXPECT_TRUE(plan.kv_replicated());
  const int64_t head_dim = 8;
  std::vector<ShardRange> expected = {
      {0, head_dim}, {0, head_dim}, {head_dim, head_dim}, {head_dim, head_dim}};
  EXPECT_EQ(plan.kv_rows(), expected);
  for (int r = 0; r < 4; ++r) {
    // Every q head a rank holds belongs to the kv head it holds.
    const ShardRange q = plan.q_heads(r);
    EXPECT_EQ(q.begin / 4, plan.kv_heads(r).begin);
    EXPECT_EQ((q.begin + q.size - 1) / 4, plan.kv_heads(r).begin);
  }
}

TEST(TensorParallelPlan, ShapesThatDoNotSplitAreUserErrorsNamingTheKey) {
  expect_user_error(shape(4096, 32, 32, 11008), 3, "does not divide the 32 attention heads");
  expect_user_error(shape(64, 8, 8, 100), 8,
                    "does not divide the FFN size 100 (intermediate_size)");
  expect_user_error(shape(96, 12, 4, 48), 6, "key/value heads (num_key_value_heads)");
  expect_user_error(shape(64, 8, 3, 32), 1, "num_key_value_heads");
  expect_user_error(shape(64, 8, 8, 32), 0, "parallel.tp must be at least 1");
}

TEST(LlamaSharding, ProjectionShapesByName) {
  const LayerShape s = shape(64, 8, 2, 96);  // head_dim 8: q 64 wide, kv 16
  EXPECT_EQ(llama_projection_shape(s, "q_proj").out_features, 64);
  EXPECT_EQ(llama_projection_shape(s, "k_proj").out_features, 16);
  EXPECT_EQ(llama_projection_shape(s, "o_proj").in_features, 64);
  EXPECT_EQ(llama_projection_shape(s, "down_proj").in_features, 96);
  for (const auto& name : llama_projection_names()) EXPECT_TRUE(is_llama_projection(name));
  EXPECT_FALSE(is_llama_projection("score"));
  EXPECT_THROW(llama_projection_shape(s, "lm_head"), UserError);
}

}  // namespace
}  // namespace ls
