#include "vgpu/units.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace vgpu {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Splits "12.5Gi" into the number "12.5" and the suffix "Gi".
void split_number(std::string_view s, std::string_view* number, std::string_view* suffix) {
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  *number = s.substr(0, i);
  *suffix = trim(s.substr(i));
}

// A finite decimal number. from_chars also reads "nan" and "inf"; NaN would
// slip through every range check after it (all comparisons are false).
bool parse_decimal(std::string_view s, double* out) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size() && std::isfinite(*out);
}

int shift_for(std::string_view suffix) {
  if (!suffix.empty() && (suffix.back() == 'B' || suffix.back() == 'b')) suffix.remove_suffix(1);
  if (suffix.size() == 2 && suffix[1] == 'i') suffix.remove_suffix(1);
  if (suffix.empty()) return 0;
  if (suffix.size() != 1) return -1;
  switch (std::tolower(static_cast<unsigned char>(suffix[0]))) {
    case 'k': return 10;
    case 'm': return 20;
    case 'g': return 30;
    case 't': return 40;
    default: return -1;
  }
}

}  // namespace

Result<uint64_t> parse_bytes(std::string_view text) {
  std::string_view s = trim(text), number, suffix;
  split_number(s, &number, &suffix);
  int shift = shift_for(suffix);
  double value = 0;
  if (number.empty() || shift < 0 || !parse_decimal(number, &value))
    return make_error("'" + std::string(text) + "' is not a size (examples: 512Mi, 4Gi, 1073741824)");
  double bytes = std::ldexp(value, shift);
  if (bytes >= 18446744073709551615.0)
    return make_error("'" + std::string(text) + "' is too large");
  if (bytes != std::floor(bytes))
    return make_error("'" + std::string(text) + "' is not a whole number of bytes");
  return static_cast<uint64_t>(bytes);
}

Result<double> parse_percent(std::string_view text) {
  std::string_view s = trim(text);
  if (!s.empty() && s.back() == '%') s = trim(s.substr(0, s.size() - 1));
  double value = 0;
  if (!parse_decimal(s, &value) || value < 0 || value > 100)
    return make_error("'" + std::string(text) + "' is not a percentage between 0% and 100%");
  return value;
}

Result<uint64_t> parse_duration_ns(std::string_view text) {
  std::string_view s = trim(text), number, suffix;
  split_number(s, &number, &suffix);
  double value = 0, scale = 0;
  if (suffix.empty() || suffix == "ns") scale = 1;
  else if (suffix == "us") scale = 1e3;
  else if (suffix == "ms") scale = 1e6;
  else if (suffix == "s") scale = 1e9;
  if (number.empty() || scale == 0 || !parse_decimal(number, &value) || value * scale > 1e18)
    return make_error("'" + std::string(text) + "' is not a duration (examples: 10ms, 500us, 2s)");
  return static_cast<uint64_t>(std::llround(value * scale));
}

std::string format_bytes(uint64_t bytes) {
  static const char* kSuffix[] = {"", "Ki", "Mi", "Gi", "Ti"};
  int i = 0;
  while (i < 4 && bytes >= (uint64_t{1} << (10 * (i + 1)))) ++i;
  uint64_t unit = uint64_t{1} << (10 * i);
  char buf[48];
  if (bytes % unit == 0)
    std::snprintf(buf, sizeof buf, "%llu%s", static_cast<unsigned long long>(bytes / unit), kSuffix[i]);
  else
    std::snprintf(buf, sizeof buf, "%.1f%s", static_cast<double>(bytes) / static_cast<double>(unit), kSuffix[i]);
  return buf;
}

}  // namespace vgpu
