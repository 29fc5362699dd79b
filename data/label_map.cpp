// LabelMap (see label_map.h).
#include "data/label_map.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/base/atomic_file.h"
#include "core/base/error.h"

namespace ls::data {

LabelMap::LabelMap(std::vector<std::string> names) : names_(std::move(names)) {
  if (names_.empty()) fail("label list is empty");
  for (size_t i = 0; i < names_.size(); ++i) {
    if (names_[i].empty()) fail("label {} is an empty name", i);
    if (!ids_.emplace(names_[i], static_cast<int>(i)).second)
      fail("label '{}' appears twice in the label list", names_[i]);
  }
}

LabelMap LabelMap::infer(const std::vector<RawLabel>& distinct_labels) {
  if (distinct_labels.empty()) fail("no labels to infer a label map from");
  std::vector<RawLabel> labels = distinct_labels;
  const bool all_integers =
      std::all_of(labels.begin(), labels.end(), [](const RawLabel& l) { return l.is_integer; });
  if (all_integers) {
    std::sort(labels.begin(), labels.end(),
              [](const RawLabel& a, const RawLabel& b) { return a.value < b.value; });
  } else {
    std::sort(labels.begin(), labels.end(), [](const RawLabel& a, const RawLabel& b) {
      if ((a.name == "O") != (b.name == "O")) return a.name == "O";
      return a.name < b.name;
    });
  }
  std::vector<std::string> names;
  for (const RawLabel& label : labels)
    if (names.empty() || names.back() != label.name) names.push_back(label.name);
  return LabelMap(std::move(names));
}

int LabelMap::id(const std::string& name) const {
  auto it = ids_.find(name);
  return it == ids_.end() ? -1 : it->second;
}

int LabelMap::id(const RawLabel& label) const {
  const int by_name = id(label.name);
  if (by_name >= 0 || !label.is_integer) return by_name;
  return label.value >= 0 && label.value < size() ? static_cast<int>(label.value) : -1;
}

std::vector<BioTag> LabelMap::bio_tags() const {
  std::vector<BioTag> tags;
  for (const std::string& name : names_) {
    if (name == "O") {
      tags.push_back({'O', ""});
    } else if (name.size() > 2 && (name[0] == 'B' || name[0] == 'I') && name[1] == '-') {
      tags.push_back({name[0], name.substr(2)});
    } else {
      return {};
    }
  }
  return tags;
}

void LabelMap::save(const std::string& path) const {
  write_file_atomic(path, nlohmann::json{{"labels", names_}}.dump(2) + "\n");
}

LabelMap LabelMap::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open label map", path);
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: malformed JSON: {}", path, e.what());
  }
  if (!doc.is_object() || !doc.contains("labels") || !doc["labels"].is_array())
    fail("{}: expected an object with a \"labels\" array of names", path);
  std::vector<std::string> names;
  for (const auto& name : doc["labels"]) {
    if (!name.is_string()) fail("{}: \"labels\" holds a non-string: {}", path, name.dump());
    names.push_back(name.get<std::string>());
  }
  try {
    return LabelMap(std::move(names));
  } catch (const UserError& e) {
    fail("{}: {}", path, e.what());
  }
}

}  // namespace ls::data
