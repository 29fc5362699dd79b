// The one CRC-32 (core/base/crc32.h) against the standard check values of its two variants: the
// checksum of the nine bytes "123456789" (CRC RevEng catalogue: CRC-32/ISO-HDLC, CRC-32/ISCSI).
#include "core/base/crc32.h"

#include <gtest/gtest.h>

#include <string>

namespace {

constexpr std::string_view kCheckInput = "123456789";

// Both are constant expressions, so the tables are built at compile time.
static_assert(ls::crc32(kCheckInput) == 0xCBF43926u);
static_assert(ls::crc32c(kCheckInput) == 0xE3069283u);

TEST(Crc32, StandardCheckValuesOfCrc32AndCrc32c) {
  EXPECT_EQ(ls::crc32(kCheckInput), 0xCBF43926u);
  EXPECT_EQ(ls::crc32c(kCheckInput), 0xE3069283u);
  EXPECT_EQ(ls::reflected_crc32<ls::kCrc32Polynomial>(kCheckInput), ls::crc32(kCheckInput));
  EXPECT_EQ(ls::reflected_crc32<ls::kCrc32cPolynomial>(kCheckInput), ls::crc32c(kCheckInput));
}

TEST(Crc32, EmptyInputIsZeroAndBytesAboveSevenBitsCount) {
  EXPECT_EQ(ls::crc32(""), 0u);
  EXPECT_EQ(ls::crc32c(""), 0u);
  // The PNG IEND chunk's CRC (over its type, no data) is fixed by the format.
  EXPECT_EQ(ls::crc32("IEND"), 0xAE426082u);
  // CRC-32C of 32 bytes of 0xFF (RFC 3720, B.4).
  EXPECT_EQ(ls::crc32c(std::string(32, '\xff')), 0x62A8AB43u);
}

}  // namespace
