// Parsing of the human units used in every configuration surface:
// byte sizes ("512Mi", "4Gi", "1048576", HAMi-style "4g"/"512m") and
// percentages ("30%"). Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "vgpu/result.h"

namespace vgpu {

// Parses a byte size. Accepted suffixes: none (bytes), Ki/Mi/Gi/Ti (binary),
// K/M/G/T and k/m/g/t (also binary: HAMi-core and kubectl users mean MiB by
// "m" for memory), and an optional trailing "B"/"b". Whitespace around the
// value is ignored. Fails on anything else, on overflow, and on an empty string.
Result<uint64_t> parse_bytes(std::string_view text);

// Parses a percentage "0%".."100%" (the % sign is optional). Fractions such as
// "12.5%" are accepted. Returns the value in [0, 100].
Result<double> parse_percent(std::string_view text);

// Parses a duration: "10ms", "500us", "2s", "1000000ns", plain number = ns.
Result<uint64_t> parse_duration_ns(std::string_view text);

// Formats a byte count the way the tools print it: "80Gi", "1.5Gi", "512Mi", "17".
std::string format_bytes(uint64_t bytes);

}  // namespace vgpu
