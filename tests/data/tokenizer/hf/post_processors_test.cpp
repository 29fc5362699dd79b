// Post-processors: the special ids a TemplateProcessing's single template puts around the text.
#include "data/tokenizer/hf/post_processors.h"

#include <gtest/gtest.h>

namespace ls::data::hf {
namespace {

using Ids = std::vector<int>;

TEST(PostProcessor, TokensBeforeTheSequenceLeadAndTokensAfterItFollow) {
  PostProcessor p;  // "<s> $A </s>" with <s> = 1, </s> = 2
  p.add_template({{false, {1}}, {true, {}}, {false, {2}}});
  EXPECT_EQ(p.prefix_ids(), Ids{1});
  EXPECT_EQ(p.suffix_ids(), Ids{2});
}

TEST(PostProcessor, ATemplateWithoutTheSequencePutsItsTokensFirst) {
  PostProcessor p;
  p.add_template({{false, {5, 6}}});
  EXPECT_EQ(p.prefix_ids(), (Ids{5, 6}));
  EXPECT_TRUE(p.suffix_ids().empty());
}

TEST(PostProcessor, ASequenceAddsEachTemplatesTokensInOrder) {
  PostProcessor p;  // Sequence[ByteLevel (nothing), "<bos> $A", "$A <eot>"]
  p.add_template({{false, {128000}}, {true, {}}});
  p.add_template({{true, {}}, {false, {128009}}});
  EXPECT_EQ(p.prefix_ids(), Ids{128000});
  EXPECT_EQ(p.suffix_ids(), Ids{128009});
}

TEST(PostProcessor, NoTemplateAddsNothing) {
  const PostProcessor p;
  EXPECT_TRUE(p.prefix_ids().empty());
  EXPECT_TRUE(p.suffix_ids().empty());
}

}  // namespace
}  // namespace ls::data::hf
