// RunState's identity: the training split's fingerprint changes with any id or label.
#include "core/train/run_state.h"

#include <gtest/gtest.h>

namespace {

ls::data::Dataset two_examples() {
  ls::data::Dataset dataset;
  ls::data::Example a, b;
  a.input_ids = {1, 5, 7}, a.label = 0, a.labeled = true;
  b.input_ids = {1, 9}, b.label = 1, b.labeled = true;
  dataset.examples = {a, b};
  return dataset;
}

}  // namespace

TEST(DatasetFingerprint, EqualSplitsAgreeAndAnyChangedIdLabelOrOrderDiffers) {
  const std::string reference = ls::dataset_fingerprint(two_examples());
  EXPECT_EQ(ls::dataset_fingerprint(two_examples()), reference);
  EXPECT_EQ(reference.size(), 16u);
  auto changed_id = two_examples();
  changed_id.examples[1].input_ids[1] = 10;
  EXPECT_NE(ls::dataset_fingerprint(changed_id), reference);
  auto changed_label = two_examples();
  changed_label.examples[0].label = 1;
  EXPECT_NE(ls::dataset_fingerprint(changed_label), reference);
  auto truncated = two_examples();
  truncated.examples[0].input_ids.pop_back();
  EXPECT_NE(ls::dataset_fingerprint(truncated), reference);
  auto swapped = two_examples();
  std::swap(swapped.examples[0], swapped.examples[1]);
  EXPECT_NE(ls::dataset_fingerprint(swapped), reference);
  auto fewer = two_examples();
  fewer.examples.pop_back();
  EXPECT_NE(ls::dataset_fingerprint(fewer), reference);
}
