// TensorBoard scalar event files (events.out.tfevents.*), written directly: each record is
// length, masked CRC-32C of the length, an Event protocol buffer, masked CRC-32C of the data.
// Only what scalars need is encoded (wall_time, step, file_version, Summary.Value simple_value).
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

namespace ls {

class TensorBoardWriter {
 public:
  // Creates DIR/events.out.tfevents.<seconds>.<host> and writes the file-version record.
  explicit TensorBoardWriter(const std::string& dir);
  void add_scalar(const std::string& tag, double value, long step);
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& event);
  std::string path_;
  std::ofstream out_;
};

}  // namespace ls
