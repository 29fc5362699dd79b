// The masks a batch gets: causal layers always hide padding keys; attend_to_padding unmasks them
// in bidirectional layers only; a batch without padding runs SDPA's implicit causal path.
#include "core/model/attention_mask.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace ls {
namespace {

TEST(AttentionMasks, CausalLayersHidePaddingKeysEvenWhenAttendingToPadding) {
  // One left-padded row: key 0 is padding.
  const auto mask = at::tensor({0, 1, 1, 1}, at::kLong).view({1, 4});
  for (const bool attend_to_padding : {false, true}) {
    const auto masks = build_attention_masks(mask, attend_to_padding);
    ASSERT_TRUE(masks.causal.has_value());
    EXPECT_FALSE(masks.implicit_causal);
    const auto causal = *masks.causal;  // [1, 1, 4, 4]
    for (int64_t query = 1; query < 4; ++query)
      EXPECT_FALSE(causal[0][0][query][0].item<bool>())
          << "query " << query << " sees the padding key (attend_to_padding " << attend_to_padding
          << ")";
    EXPECT_TRUE(causal[0][0][3][1].item<bool>());
    EXPECT_FALSE(causal[0][0][1][3].item<bool>());  // still causal
  }
}

TEST(AttentionMasks, AttendToPaddingUnmasksOnlyTheBidirectionalLayers) {
  const auto mask = at::tensor({1, 1, 0}, at::kLong).view({1, 3});
  const auto masked = build_attention_masks(mask, /*attend_to_padding=*/false);
  ASSERT_TRUE(masked.bidirectional.has_value());
  EXPECT_FALSE((*masked.bidirectional)[0][0][0][2].item<bool>());
  const auto unmasked = build_attention_masks(mask, /*attend_to_padding=*/true);
  EXPECT_FALSE(unmasked.bidirectional.has_value());  // attend to everything
  const auto policy = AttentionPolicy::bidirectional_from(1);
  EXPECT_TRUE(unmasked.for_layer(policy, 0).has_value());  // layer 0 is causal: masked
  EXPECT_FALSE(unmasked.for_layer(policy, 1).has_value());
}

TEST(AttentionMasks, NoPaddingMeansNoMaskAndImplicitCausal) {
  const auto masks = build_attention_masks(at::ones({2, 5}, at::kLong), false);
  EXPECT_TRUE(masks.implicit_causal);
  EXPECT_FALSE(masks.causal.has_value());
  EXPECT_FALSE(masks.bidirectional.has_value());
  EXPECT_TRUE(masks.is_causal(AttentionPolicy::causal(), 0));
  EXPECT_FALSE(masks.is_causal(AttentionPolicy::bidirectional(), 0));
}

}  // namespace
}  // namespace ls
