// CRC-32 checksums: one reflected, table-driven CRC-32 parameterised by its polynomial, and the
// two variants the run's files need: CRC-32 (PNG chunks, core/report/plot.cpp) and CRC-32C
// (TFRecord framing of TensorBoard events, core/report/tensorboard.cpp). Header-only, no libtorch.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace ls {

// Reflected (bit-reversed) polynomials.
inline constexpr uint32_t kCrc32Polynomial = 0xedb88320u;   // CRC-32 (ISO-HDLC): PNG, zlib, gzip
inline constexpr uint32_t kCrc32cPolynomial = 0x82f63b78u;  // CRC-32C (Castagnoli): TFRecord

// The remainder of every byte value, one table per polynomial, built at compile time.
template <uint32_t Polynomial>
inline constexpr std::array<uint32_t, 256> kCrc32Table = [] {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? Polynomial ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}();

// Initial value and final xor all ones, as both CRC-32 and CRC-32C define them.
template <uint32_t Polynomial>
constexpr uint32_t reflected_crc32(std::string_view bytes) {
  uint32_t crc = 0xffffffffu;
  for (const char b : bytes)
    crc = kCrc32Table<Polynomial>[(crc ^ static_cast<unsigned char>(b)) & 0xff] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

constexpr uint32_t crc32(std::string_view bytes) {
  return reflected_crc32<kCrc32Polynomial>(bytes);
}
constexpr uint32_t crc32c(std::string_view bytes) {
  return reflected_crc32<kCrc32cPolynomial>(bytes);
}

}  // namespace ls
