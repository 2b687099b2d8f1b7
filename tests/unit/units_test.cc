// parse_bytes / parse_percent / parse_duration_ns (common/units.cc): the
// edges the fuzzers (fuzz/) probe, kept as plain unit tests.
#include <gtest/gtest.h>

#include <cmath>

#include "vgpu/units.h"

namespace {

TEST(Units, PercentAcceptsTheRange) {
  ASSERT_TRUE(vgpu::parse_percent("30%"));
  EXPECT_DOUBLE_EQ(*vgpu::parse_percent("30%"), 30.0);
  EXPECT_DOUBLE_EQ(*vgpu::parse_percent(" 12.5 % "), 12.5);
  EXPECT_DOUBLE_EQ(*vgpu::parse_percent("100"), 100.0);
  EXPECT_DOUBLE_EQ(*vgpu::parse_percent("0%"), 0.0);
}

// NaN passes every "< 0 || > 100" check: found by fuzz_config
// (fuzz/regressions/fuzz_config/request-nan-percent.yaml).
TEST(Units, PercentRejectsNotANumberAndInfinity) {
  for (const char* s : {"nan", "nan%", "NAN%", "-nan", "inf%", "infinity", "-inf", "101%", "-1%", "", "%", "1e3"})
    EXPECT_FALSE(vgpu::parse_percent(s)) << "'" << s << "' was accepted";
}

TEST(Units, BytesAndDurations) {
  EXPECT_EQ(*vgpu::parse_bytes("4Gi"), 4ull << 30);
  EXPECT_EQ(*vgpu::parse_bytes("512m"), 512ull << 20);
  EXPECT_FALSE(vgpu::parse_bytes("nan"));
  EXPECT_FALSE(vgpu::parse_bytes("16777216Ti"));  // 2^64: too large
  EXPECT_EQ(*vgpu::parse_duration_ns("10ms"), 10'000'000u);
  EXPECT_FALSE(vgpu::parse_duration_ns("nan"));
  EXPECT_FALSE(vgpu::parse_duration_ns("inf s"));
}

}  // namespace
