// TensorBoard event writer (see tensorboard.h).
#include "core/report/tensorboard.h"

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>

#include "core/base/crc32.h"
#include "core/base/error.h"

namespace ls {
namespace {

// Protocol-buffer wire encoding, just the pieces an Event with a scalar Summary uses.
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_tag(std::string& out, int field, int wire_type) {
  put_varint(out, (field << 3) | wire_type);
}
template <class T>
void put_fixed(std::string& out, T v) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));  // little-endian hosts, as the format is
  out.append(bytes, sizeof(T));
}
void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_tag(out, field, 2);
  put_varint(out, bytes.size());
  out += bytes;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Event: wall_time = 1 (double), step = 2 (int64), file_version = 3 (string), summary = 5.
std::string event(long step, const std::string* file_version, const std::string* summary) {
  std::string out;
  put_tag(out, 1, 1);
  put_fixed<double>(out, now_seconds());
  put_tag(out, 2, 0);
  put_varint(out, static_cast<uint64_t>(step));
  if (file_version) put_bytes(out, 3, *file_version);
  if (summary) put_bytes(out, 5, *summary);
  return out;
}

uint32_t masked(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

}  // namespace

TensorBoardWriter::TensorBoardWriter(const std::string& dir) {
  char host[256] = "localhost";
  gethostname(host, sizeof(host) - 1);
  std::filesystem::create_directories(dir);
  path_ = fmt::format("{}/events.out.tfevents.{}.{}", dir, static_cast<long>(now_seconds()), host);
  out_.open(path_, std::ios::binary | std::ios::app);
  if (!out_) fail("{}: cannot create TensorBoard event file", path_);
  const std::string version = "brain.Event:2";
  write_record(event(0, &version, nullptr));
  flush();
}

void TensorBoardWriter::add_scalar(const std::string& tag, double value, long step) {
  // Summary { repeated Value value = 1; }  Value { string tag = 1; float simple_value = 2; }
  std::string value_msg;
  put_bytes(value_msg, 1, tag);
  put_tag(value_msg, 2, 5);
  put_fixed<float>(value_msg, static_cast<float>(value));
  std::string summary;
  put_bytes(summary, 1, value_msg);
  write_record(event(step, nullptr, &summary));
}

void TensorBoardWriter::write_record(const std::string& data) {
  std::string header;
  put_fixed<uint64_t>(header, data.size());
  std::string record = header;
  put_fixed<uint32_t>(record, masked(crc32c(header)));
  record += data;
  put_fixed<uint32_t>(record, masked(crc32c(data)));
  out_.write(record.data(), static_cast<std::streamsize>(record.size()));
}

void TensorBoardWriter::flush() {
  out_.flush();
}

}  // namespace ls
