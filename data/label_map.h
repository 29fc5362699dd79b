// LabelMap: label names <-> class ids, for sequence labels and NER tags alike. Given by the config
// or inferred from the training split in a stable order, and saved as `labels.json` in the run
// directory so prediction maps ids back to the same names.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/base/task.h"

namespace ls::data {

// A label as a data file holds it: a string, or an integer (HF datasets' ClassLabel ids).
struct RawLabel {
  std::string name;  // the string, or the integer in decimal
  bool is_integer = false;
  int64_t value = 0;  // the integer, when is_integer
};

// A tag of the BIO/IOB2 scheme: 'O', or 'B'/'I' with an entity type.
struct BioTag {
  char prefix = 'O';
  std::string type;
};

class LabelMap {
 public:
  LabelMap() = default;
  // Names in id order. Throws UserError on an empty list, an empty name or a duplicate.
  explicit LabelMap(std::vector<std::string> names);

  // The map a training split implies, from its distinct labels. Order, stable across runs and
  // independent of the file's order: integers ascending when every label is an integer (so HF
  // ClassLabel ids keep their value), otherwise "O" first when present, then byte order.
  static LabelMap infer(const std::vector<RawLabel>& distinct_labels);

  // Class id of a label, or -1 when the map lacks it. A string is looked up by name. An integer
  // is looked up by name first ("3" in an inferred or numeric map), otherwise taken as an index
  // into the names when in range (integer tags plus a label list, as HF datasets export them).
  int id(const RawLabel& label) const;
  int id(const std::string& name) const;

  int size() const { return static_cast<int>(names_.size()); }
  bool empty() const { return names_.empty(); }
  const std::string& name(int id) const { return names_.at(id); }
  const std::vector<std::string>& names() const { return names_; }

  // Every name parsed as a BIO tag, or an empty vector when some name is not one ("O", "B-x",
  // "I-x"); then no BIO checks apply (other schemes, plain classes).
  std::vector<BioTag> bio_tags() const;

  // labels.json: {"labels": [names in id order]}. save() writes a temporary file and renames it.
  void save(const std::string& path) const;
  static LabelMap load(const std::string& path);

  bool operator==(const LabelMap& other) const { return names_ == other.names_; }

 private:
  std::vector<std::string> names_;
  std::unordered_map<std::string, int> ids_;
};

}  // namespace ls::data
